// Character offsets of a generated text → positions in the tokens that were generated. The
// engine's text is the detokenization of its tokens, so the text of the first k tokens is a
// prefix of it; a binary search over k finds where a character offset falls without ever
// re-tokenizing the text (a re-tokenization can differ from what the model sampled, and PPL and
// the constrained prefix must be about the sampled tokens).
import type { GeneratedText, Prompt, Tokenize } from "./generate.js";
import type { ParsedOutput } from "./parse.js";
import { REASONING_END, REASONING_START } from "../prompts/build.js";

export type Detokenize = (tokens: Int32Array) => string;

/** Smallest k with len(text of tokens[0:k]) >= pos (tokens.length when none). */
function firstReaching(tokens: Int32Array, detok: Detokenize, pos: number): number {
  let lo = 0,
    hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (detok(tokens.subarray(0, mid)).length >= pos) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Largest k with len(text of tokens[0:k]) <= pos. */
function lastWithin(tokens: Int32Array, detok: Detokenize, pos: number): number {
  let lo = 0,
    hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (detok(tokens.subarray(0, mid)).length <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The tokens [a, b) that carry the characters [from, to) of the text: every token that overlaps
 * the range, so a token like "▁Step" whose leading space was trimmed off still counts.
 */
export function tokenSpan(tokens: Int32Array, detok: Detokenize, from: number, to: number): [number, number] {
  if (to <= from) {
    const k = lastWithin(tokens, detok, from);
    return [k, k];
  }
  const a = lastWithin(tokens, detok, from);
  const b = Math.max(a, firstReaching(tokens, detok, to));
  return [a, b];
}

/** The tokens of a prompt (text prompts get BOS, as the engine tokenizes them) followed by `tail`. */
export function concatTokens(prompt: Prompt, tokenize: Tokenize, ...tail: Int32Array[]): Int32Array {
  const head = typeof prompt === "string" ? tokenize(prompt, { addBos: true }) : prompt;
  const out = new Int32Array(head.length + tail.reduce((a, t) => a + t.length, 0));
  out.set(head, 0);
  let off = head.length;
  for (const t of tail) {
    out.set(t, off);
    off += t.length;
  }
  return out;
}

/**
 * The tokens training puts between the last reasoning word and the title, `\n[reasoning_end]`,
 * as they appear inside the tokenized target (tokenized alone, SPM would prefix a space).
 */
export function endMarkerTokens(tokenize: Tokenize): Int32Array {
  const head = `${REASONING_START}\nStep 4 - Summary: it fits.`;
  const full = tokenize(`${head}\n${REASONING_END} Item`, { addBos: false });
  const a = tokenize(head, { addBos: false });
  const b = tokenize(`${head}\n${REASONING_END}`, { addBos: false });
  const isPrefix = (p: Int32Array) => p.length <= full.length && p.every((t, i) => t === full[i]);
  if (isPrefix(a) && isPrefix(b) && b.length > a.length) return full.slice(a.length, b.length);
  return Int32Array.from([...tokenize("\n", { addBos: false }), ...tokenize(REASONING_END, { addBos: false })]);
}

/** Tokenization both ways, as inference needs it. */
export interface TokenCodec {
  tokenize: Tokenize;
  detokenize: Detokenize;
}

/**
 * The tokens of one side's reasoning inside what was generated, and the tokens before it; null
 * when there is no reasoning.
 */
export function reasoningTokens(
  gen: GeneratedText,
  parsed: ParsedOutput,
  detok: Detokenize,
): { before: Int32Array; reasoning: Int32Array } | null {
  if (parsed.reasoning.length === 0) return null;
  const [a, b] = tokenSpan(gen.tokens, detok, parsed.reasoningStart, parsed.reasoningStart + parsed.reasoning.length);
  if (b <= a) return null;
  return { before: gen.tokens.subarray(0, a), reasoning: gen.tokens.subarray(a, b) };
}

/**
 * The input of the constrained answer, token-exact: the prompt, then the generated tokens
 * through `[reasoning_end]` when the model wrote the marker; otherwise the generated tokens of
 * the reasoning followed by `\n[reasoning_end]` as training tokenizes it.
 */
export function constrainedPrefix(
  prompt: Prompt,
  gen: GeneratedText,
  parsed: ParsedOutput,
  codec: TokenCodec,
): Int32Array {
  const e = gen.text.indexOf(REASONING_END);
  if (e >= 0) {
    const end = e + REASONING_END.length;
    const k = firstReaching(gen.tokens, codec.detokenize, end);
    if (codec.detokenize(gen.tokens.subarray(0, k)).length === end)
      return concatTokens(prompt, codec.tokenize, gen.tokens.subarray(0, k));
  }
  const reasoningEnd = parsed.reasoningStart + parsed.reasoning.length;
  const [, b] = tokenSpan(gen.tokens, codec.detokenize, parsed.reasoningStart, reasoningEnd);
  const kept = gen.tokens.subarray(0, b);
  let marker = endMarkerTokens(codec.tokenize);
  // BPE vocabularies merge ".\n": the reasoning's last token may already carry the newline, and
  // training then continues with the marker alone.
  if (codec.detokenize(kept).slice(reasoningEnd).includes("\n")) {
    let k = 0;
    while (k < marker.length && codec.detokenize(marker.subarray(0, k + 1)).trim() === "") k++;
    marker = marker.subarray(k);
  }
  return concatTokens(prompt, codec.tokenize, kept, marker);
}
