// Splitting a training sample into prompt / reasoning / recommendation tokens, and the prefixes
// inference builds from it, with three real tokenizers: llama.cpp's SentencePiece (llama-spm),
// Llama-3's BPE (llama-bpe, whose pre-tokenizer merges "]\n" and ".\n" into one piece, so the
// marker boundaries fall inside tokens and the trainer's fallback path runs) and Qwen2's BPE.
// Each segment is decoded back to text and compared with the text the roles say it holds.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { loadModel, type Model } from "../src/engine/index.js";
import { candidateRequests, tokenizeSample, trainedPrefix } from "../src/train/samples.js";
import { Segment } from "../src/engine/train-batch.js";
import { constrainedPrefix, endMarkerTokens } from "../src/infer/align.js";
import { parseOutput } from "../src/infer/parse.js";
import { llamaCppSourceDir } from "../src/util/paths.js";
import { addonMissing } from "./support/addon.js";

const missing = addonMissing("tokenizer split tests");

const VOCABS = ["llama-spm", "llama-bpe", "qwen2"] as const;
const prompt = 'Recommend one of these: "Apex Phone Case", "Zen Mat".\nAnalyse, then recommend.';
const reasoning = "Step 4 - Summary: the case fits the phone.";
const title = "Apex Phone Case";

describe.skipIf(missing !== null).each(VOCABS)("sample roles with the %s tokenizer", (vocab) => {
  let model: Model;
  let tok: { tokenize: (t: string, o?: { addBos?: boolean }) => Int32Array; eosToken: number };
  const text = (t: ArrayLike<number>) => model.detokenize(Int32Array.from(t));
  // SentencePiece writes a word-initial space before the first piece of a text tokenized alone.
  const bare = (s: string) => s.replace(/^ /, "");

  beforeAll(async () => {
    model = await loadModel(join(llamaCppSourceDir(), "models", `ggml-vocab-${vocab}.gguf`), { vocabOnly: true });
    tok = { tokenize: (t, o) => model.tokenize(t, o), eosToken: model.info.eos >= 0 ? model.info.eos : 0 };
  });
  afterAll(() => model?.dispose());

  /** The text of each role's tokens after the prompt. */
  function roles(reasoningText: string) {
    const s = tokenizeSample(tok, { prompt, reasoning: reasoningText, recommendation: title });
    const p = model.tokenize(prompt, { addBos: true }).length;
    const body = Array.from(s.tokens.slice(p, -1)),
      seg = Array.from(s.segments.slice(p, -1));
    const of = (g: number) => body.filter((_, i) => seg[i] === g);
    expect(Array.from(s.tokens.slice(0, p))).toEqual(Array.from(model.tokenize(prompt, { addBos: true })));
    expect(s.tokens.at(-1)).toBe(tok.eosToken);
    // Roles are contiguous: prompt, then reasoning, then recommendation.
    expect(seg).toEqual([...seg].sort((a, b) => a - b));
    return {
      s,
      p,
      noLoss: bare(text(of(Segment.prompt))),
      rea: text(of(Segment.reasoning)),
      rec: bare(text(of(Segment.recommendation))),
    };
  }

  it("puts [reasoning_start] on the input side, the reasoning between the markers, the marker and title in y_rec", () => {
    const r = roles(reasoning);
    expect(r.noLoss).toBe("[reasoning_start]");
    expect(r.rea).toBe(`\n${reasoning}\n`);
    expect(r.rec).toBe(`[reasoning_end] ${title}`);
  });

  it("gives a behavior-only sample no reasoning tokens and `[reasoning_start]\\n` on its input side", () => {
    const r = roles("");
    expect(r.noLoss).toBe("[reasoning_start]\n");
    expect(r.rea).toBe("");
    expect(r.rec).toBe(`[reasoning_end] ${title}`);
  });

  it("infers from exactly the tokens before the first loss-carrying one", () => {
    for (const behaviorOnly of [false, true]) {
      const { s } = roles(behaviorOnly ? "" : reasoning);
      const firstLoss = Array.from(s.segments).findIndex((g) => g !== Segment.prompt);
      expect(Array.from(trainedPrefix(tok.tokenize, prompt, behaviorOnly)), String(behaviorOnly)).toEqual(
        Array.from(s.tokens.slice(0, firstLoss)),
      );
    }
  });

  it("scores validation candidates in exactly the tokens a behavior-only sample trains on", () => {
    // Epoch selection ranks each candidate by the likelihood of its title where training puts a
    // recommendation: the context and continuation must be the trained sample's tokens (without
    // EOS), not a tokenization of the target as one string (Llama-3's BPE merges "]\n" there).
    const titles = [title, "Zen Mat", "Zen Mat Pro"];
    const r = candidateRequests(tok.tokenize, prompt, titles);
    expect(r.continuations).toHaveLength(titles.length);
    titles.forEach((t, k) => {
      const s = tokenizeSample(tok, { prompt, reasoning: "", recommendation: t });
      const trained = Array.from(s.tokens.slice(0, -1));
      expect([...r.context, ...r.continuations[k]!], t).toEqual(trained);
      // Every scored token is a recommendation token of the trained sample.
      const firstScored = r.context.length;
      expect(
        Array.from(s.segments.slice(firstScored, -1)).every((g) => g === Segment.recommendation),
        t,
      ).toBe(true);
      expect(r.continuations[k]!.length, t).toBeGreaterThan(0);
    });
  });

  it("lays a plain (TALLRec) sample out as prompt, then the title and EOS as y_rec, and scores candidates there", () => {
    const s = tokenizeSample(tok, { prompt, reasoning: "", recommendation: title, layout: "plain" });
    const p = model.tokenize(prompt, { addBos: true });
    expect(Array.from(s.tokens)).toEqual([...p, ...model.tokenize(title, { addBos: false }), tok.eosToken]);
    expect(Array.from(s.segments)).toEqual([
      ...p.map(() => Segment.prompt),
      ...Array.from({ length: s.tokens.length - p.length }, () => Segment.recommendation),
    ]);
    expect(bare(text(s.tokens.slice(p.length, -1)))).toBe(title);
    const titles = [title, "Zen Mat", "Zen Mat Pro"];
    const r = candidateRequests(tok.tokenize, prompt, titles, "plain");
    titles.forEach((t, k) => {
      const trained = tokenizeSample(tok, { prompt, reasoning: "", recommendation: t, layout: "plain" });
      expect([...r.context, ...r.continuations[k]!], t).toEqual(Array.from(trained.tokens.slice(0, -1)));
    });
    expect(() =>
      tokenizeSample(tok, { prompt, reasoning: "Step 4 - Summary: no.", recommendation: title, layout: "plain" }),
    ).toThrow(/no reasoning/);
  });

  it("appends `\\n[reasoning_end]` to a cut-off reasoning as text that decodes to exactly that", () => {
    expect(text(endMarkerTokens(tok.tokenize))).toBe("\n[reasoning_end]");
  });

  it("continues a reasoning cut off before its end marker exactly as training laid the marker out", () => {
    // A model that wrote the trained reasoning tokens and stopped: the constrained prefix must be
    // the trained sample's tokens through `[reasoning_end]`.
    const { s, p } = roles(reasoning);
    const seg = Array.from(s.segments);
    const firstRec = seg.indexOf(Segment.recommendation);
    const generated = s.tokens.slice(seg.indexOf(Segment.reasoning), firstRec);
    const gen = { text: text(generated), tokens: generated, finishReason: "length" };
    const prefix = constrainedPrefix(
      s.tokens.slice(0, seg.indexOf(Segment.reasoning)),
      gen,
      parseOutput(gen.text, [title]),
      { tokenize: tok.tokenize, detokenize: (t) => model.detokenize(t) },
    );
    let k = 1;
    while (bare(text(s.tokens.slice(firstRec, firstRec + k))) !== "[reasoning_end]") k++;
    expect(Array.from(prefix)).toEqual(Array.from(s.tokens.slice(0, firstRec + k)));
    expect(p).toBeGreaterThan(0);
  });
});
