// The generator's token sampler (native/src/samplers.cpp) builds only the k best candidates of a
// row when its chain starts with top-k (or greedy), checking a grammar on the best tokens first.
// Reference: llama.cpp's own chain over the whole vocabulary (grammar first, then temperature,
// top-k, top-p, dist), run by the same sampler on the same rows and seed. Both must draw the same
// tokens, row after row (each token accepted into the grammar before the next row), on rows
// where the grammar passes most of the best tokens, few of them (the search widens), almost none
// (the whole vocabulary), with -inf logits, and with a temperature small enough to overflow.
// Rows have no equal logits except where greedy is tested: under sampling, equal logits may be
// ordered differently by the two paths (the same distribution, not the same draw).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devAddon } from "../src/engine/bindings.js";
import { loadModel, type Model } from "../src/engine/index.js";
import { archModelPath } from "./support/arch-models.js";
import { tinyModelPath } from "./support/models.js";
import { mulberry32 } from "./support/random.js";

type Options = Parameters<ReturnType<typeof devAddon>["sampleRows"]>[2];

function rows(n: number, vocab: number, seed: number, make: (rand: () => number, j: number) => number): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n * vocab);
  for (let r = 0; r < n; r++) for (let j = 0; j < vocab; j++) out[r * vocab + j] = make(rand, j);
  return out;
}

/** Roughly normal logits with sd 3 (a sum of uniforms): no two equal in practice. */
const gaussian = (rand: () => number) => (rand() + rand() + rand() + rand() - 2) * 5.2;

describe.each([
  ["SentencePiece 32k", () => Promise.resolve(tinyModelPath())],
  ["Llama-3 BPE 128k", () => archModelPath("tiny-llama3")],
])("token sampler, fast path against the whole vocabulary (%s)", (_name, modelPath) => {
  let model: Model;
  let vocab = 0;
  beforeAll(async () => {
    model = await loadModel(await modelPath());
    vocab = model.info.vocabSize;
  });
  afterAll(() => model?.dispose());

  const both = (logits: Float32Array, o: Options) => {
    const fast = devAddon().sampleRows(model.handle(), logits, o);
    const whole = devAddon().sampleRows(model.handle(), logits, { ...o, wholeVocabulary: true });
    return { fast: Array.from(fast), whole: Array.from(whole) };
  };

  // The tokens whose text is lowercase letters with an optional leading space, by the model's own
  // detokenizer: what `[a-z ]` grammars admit.
  const lowercase = () => {
    const ok: number[] = [];
    for (let t = 0; t < vocab; t++) if (/^ ?[a-z]+$/.test(model.detokenize(Int32Array.of(t)))) ok.push(t);
    return new Set(ok);
  };

  it("draws the same tokens without a grammar (temperature, top-k, top-p, min-p)", () => {
    for (const [seed, o] of [
      [1, { temperature: 0.7, topK: 40, topP: 0.95 }],
      [2, { temperature: 1.3, topK: 8 }],
      [3, { temperature: 0.5, topK: 100, topP: 0.9, minP: 0.05 }],
    ] as const) {
      const { fast, whole } = both(rows(24, vocab, seed, gaussian), { ...o, seed });
      expect(fast).toEqual(whole);
      expect(new Set(fast).size).toBeGreaterThan(3); // really sampled, not one token
    }
  });

  it("greedy picks the lowest id among equal maxima, as llama.cpp's greedy does", () => {
    // Logits in steps of 1 over a range of 4: thousands of tokens share the maximum.
    const logits = rows(12, vocab, 4, (rand) => Math.floor(rand() * 4));
    const { fast, whole } = both(logits, { temperature: 0 });
    expect(fast).toEqual(whole);
    for (let r = 0; r < 12; r++) {
      const row = logits.subarray(r * vocab, (r + 1) * vocab);
      let best = 0;
      for (let j = 1; j < vocab; j++) if (row[j]! > row[best]!) best = j;
      expect(fast[r]).toBe(best);
    }
  });

  it("draws the same tokens under a grammar that passes most, few or almost none of the best tokens", () => {
    const letters = lowercase();
    expect(letters.size).toBeGreaterThan(200);
    // Boosting lowercase tokens sets the share of them among the best: most, about 1 in 30 (the
    // search widens past its first window), none but a handful of low-ranked ones (the whole row).
    const words = " the and of";
    for (const [boost, grammar, admits] of [
      [3, "root ::= [a-z ]+", (text: string) => /^[a-z ]*$/.test(text)],
      [-6, "root ::= [a-z ]+", (text: string) => /^[a-z ]*$/.test(text)],
      [
        0,
        'root ::= " the" " and" " of" [a-z ]*',
        (text: string) => words.startsWith(text) || (text.startsWith(words) && /^[a-z ]*$/.test(text)),
      ],
    ] as const) {
      const logits = rows(16, vocab, 5, (rand, j) => gaussian(rand) + (letters.has(j) ? boost : 0));
      for (const o of [{ temperature: 0.7, topK: 40, topP: 0.95, seed: 9 }, { temperature: 0 }]) {
        const { fast, whole } = both(logits, { ...o, grammar });
        expect(fast).toEqual(whole);
        // SentencePiece detokenizing drops the first piece's leading space.
        const text = model.detokenize(Int32Array.from(fast));
        expect(admits(text) || admits(` ${text}`)).toBe(true);
      }
    }
  });

  it("draws the same tokens in the middle of UTF-8 characters, where only continuation bytes pass", () => {
    // Tokens whose text alone is not valid UTF-8: the first bytes of a character, or its later
    // ones. Rows that favour them make the sampler stop mid-character (the grammar then passes
    // only tokens starting with a continuation byte, and EOG where the grammar may end), and rows
    // that do not favour them leave those few tokens far down the row.
    const partial = new Set<number>();
    for (let t = 0; t < vocab; t++) if (model.detokenize(Int32Array.of(t)) === "\uFFFD") partial.add(t);
    expect(partial.size).toBeGreaterThan(100);
    const eos = model.info.eos;
    const n = 48;
    const logits = rows(n, vocab, 11, (rand, j) => gaussian(rand) + (partial.has(j) ? 9 : 0));
    for (let r = 0; r < n; r++) {
      const row = logits.subarray(r * vocab, (r + 1) * vocab);
      if (r % 4 === 3) for (const t of partial) row[t]! -= 9; // plain rows
      if (r % 9 === 7) row[eos] = 40; // an end of text, mid-character or not
    }
    for (const grammar of ["root ::= [^\\x00]+", 'root ::= ("é" | "日本" | "ß" | [a-z ])+']) {
      for (const o of [
        { temperature: 0 },
        { temperature: 0.8, topK: 40, topP: 0.95, seed: 4 },
        { temperature: 0.9, topP: 0.9, seed: 5 }, // no top-k: the whole row is sampled
      ]) {
        const { fast, whole } = both(logits, { ...o, grammar });
        expect(fast).toEqual(whole);
        // Characters were really split across tokens: some sampled token is partial alone, and
        // the text holds characters beyond ASCII that are whole.
        expect(fast.some((t) => partial.has(t))).toBe(true);
        const text = model.detokenize(Int32Array.from(fast.filter((t) => t !== eos)));
        expect([...text].some((c) => c.codePointAt(0)! > 0x7f && c !== "\uFFFD")).toBe(true);
      }
    }
    // EOG mid-character: llama.cpp passes it only where a grammar stack ended before the partial
    // character (a token that adds no whole character drops the ended stacks). After "a" and a
    // first byte it does not; after one token " " + first byte under `" " | " ꙮ"` it does (where
    // the vocabulary has such a token: byte-level BPE).
    const lead = Array.from(model.tokenize("ꙮ", { addBos: false })).find((t) => partial.has(t))!;
    const a = model.tokenize("a", { addBos: false })[0]!;
    const spaceLead = model.tokenize(" ꙮ", { addBos: false })[0]!;
    const cases: [number[], string, (tokens: number[]) => boolean][] = [
      [[a, lead, eos], "root ::= [^\\x00]+", (t) => t[0] === a && t[1] === lead && t[2] !== eos],
    ];
    if (model.detokenize(Int32Array.of(spaceLead)) === " \uFFFD") {
      cases.push([[spaceLead, eos], 'root ::= " " | " ꙮ"', (t) => t[0] === spaceLead && t[1] === eos]);
    }
    for (const [favoured, grammar, expected] of cases) {
      const end = rows(favoured.length, vocab, 12, gaussian);
      favoured.forEach((t, r) => (end[r * vocab + t] = 60));
      for (const o of [{ temperature: 0 }, { temperature: 0.8, topK: 40, seed: 4 }]) {
        const { fast, whole } = both(end, { ...o, grammar });
        expect(expected(whole)).toBe(true);
        expect(fast).toEqual(whole);
      }
    }
  });

  it("falls back to the whole vocabulary where the fast path cannot be sure", () => {
    // Fewer finite logits than k: the whole row, -inf entries and all.
    const sparse = rows(6, vocab, 6, (rand) => (rand() < 0.0003 ? gaussian(rand) : -Infinity));
    const a = both(sparse, { temperature: 0.8, topK: 40, seed: 3 });
    expect(a.fast).toEqual(a.whole);
    // A temperature so small that |logit| / t overflows: the temperature sampler keeps the best.
    const b = both(rows(6, vocab, 7, gaussian), { temperature: 1e-38, topK: 40, seed: 3 });
    expect(b.fast).toEqual(b.whole);
  });

  it("refuses rows of the wrong size and non-finite logits with an error", () => {
    expect(() => devAddon().sampleRows(model.handle(), new Float32Array(vocab + 1), { temperature: 0 })).toThrow(
      /whole number of rows/,
    );
    const nan = new Float32Array(vocab);
    nan[3] = NaN;
    expect(() => devAddon().sampleRows(model.handle(), nan, { temperature: 0 })).toThrow(/finite or -inf/);
  });
});
