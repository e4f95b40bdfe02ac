// model.embed: per-token last-layer hidden states. Checked against llama_decode's logits through
// an independent JS product with the output matrix read from the GGUF (logits = W_out · h), and
// for invariance: texts packed together equal each text alone, and a prefix's rows equal the
// first rows of the longer text (causal attention, one sequence per text). Then its use as the
// eval stage's BERTScore encoder.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../src/index.js";
import { findTensor, readGguf, readTensorF32 } from "../src/gguf/reader.js";
import { referenceLogits } from "./support/dev.js";
import { tinyModelPath } from "./support/models.js";
import { presetConfig } from "../src/pipeline/config.js";
import { reasoningQuality } from "../src/pipeline/reasoning-quality.js";

let model: Model;
beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 2 });
});
afterAll(() => model?.dispose());

const texts = [
  "The user bought a phone case after a new phone.",
  "Hello",
  "Candidates: Sonix Wireless Headphones, Apex Phone Case, Zen Yoga Mat.",
];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

describe("model.embed", () => {
  it("gives [tokens × n_embd] per text whose product with the output matrix equals llama_decode's logits", async () => {
    const dim = model.info.embeddingSize;
    const vocab = model.info.vocabSize;
    const [emb] = await model.embed([texts[0]!]);
    const tokens = model.tokenize(texts[0]!);
    expect(emb!.length).toBe(tokens.length * dim);
    const file = readGguf(tinyModelPath());
    const w = readTensorF32(file, findTensor(file, "output.weight")); // [vocab][dim] row-major
    const trainer = model.createTrainer({ lora: { rank: 1 } }); // B = 0: the base model's logits
    const logits = await referenceLogits(trainer, tokens);
    trainer.dispose();
    let worst = 0;
    for (let p = 0; p < tokens.length; p++) {
      const h = emb!.subarray(p * dim, (p + 1) * dim);
      for (let v = 0; v < vocab; v += 97) {
        let dot = 0;
        for (let k = 0; k < dim; k++) dot += w[v * dim + k]! * h[k]!;
        worst = Math.max(worst, Math.abs(dot - logits[p * vocab + v]!));
      }
    }
    expect(worst).toBeLessThan(1e-4);
  });

  it("packs texts without mixing them: together equals one at a time, and a prefix equals the first rows", async () => {
    const together = await model.embed(texts);
    for (let i = 0; i < texts.length; i++) {
      const [alone] = await model.embed([texts[i]!]);
      expect(maxAbsDiff(together[i]!, alone!)).toBeLessThan(1e-5);
    }
    const dim = model.info.embeddingSize;
    const full = model.tokenize(texts[0]!);
    const [prefix] = await model.embed([full.slice(0, 5)]);
    expect(maxAbsDiff(prefix!, together[0]!.subarray(0, 5 * dim))).toBeLessThan(1e-5);
    // one text per wave (a tiny batch) gives the same numbers as one wave for all
    const small = await model.embed(texts, { batchTokens: 1 });
    for (let i = 0; i < texts.length; i++) expect(maxAbsDiff(small[i]!, together[i]!)).toBeLessThan(1e-5);
  });

  it("rejects out-of-range token ids with a clear error", async () => {
    await expect(model.embed([Int32Array.of(1, 10_000_000)])).rejects.toThrow(/vocabulary|out of range/);
  });
});

describe("as the eval stage's BERTScore encoder", () => {
  it("scores identical texts 1 and unrelated ones lower, with contextual vectors, rescaled over several pairs", async () => {
    const c = presetConfig("tiny", {
      model: { path: tinyModelPath() },
      eval: { bertscore: true, gptscore: false, meteor: false },
    });
    const { quality, dispose } = await reasoningQuality(c, []);
    const text = "the phone case fits the phone";
    const same = await quality.bertscore!([{ candidate: text, reference: text, context: "" }]);
    const other = await quality.bertscore!([
      { candidate: text, reference: "a yoga mat for running shoes", context: "" },
    ]);
    // Several pairs: rescaled against mismatched pairs, so matching pairs give 1 and pairs no
    // closer than the mismatched baseline give about 0 or less.
    const texts3 = [text, "a yoga mat for running shoes", "wireless earbuds with a charging case"];
    const matched = await quality.bertscore!(texts3.map((t) => ({ candidate: t, reference: t, context: "" })));
    const shifted = await quality.bertscore!(
      texts3.map((t, i) => ({ candidate: t, reference: texts3[(i + 2) % 3]!, context: "" })),
    );
    dispose();
    expect(same).toBeGreaterThan(0.999);
    expect(other).toBeLessThan(same - 0.01);
    expect(matched).toBeGreaterThan(0.999);
    expect(shifted).toBeLessThan(0.5);
    // Contextual: the same token gets different vectors in different texts (a static table would not).
    const dim = model.info.embeddingSize;
    const [a, b] = await model.embed(["the phone", "a yoga mat the phone"]);
    expect(maxAbsDiff(a!.subarray(dim, 2 * dim), b!.subarray(5 * dim, 6 * dim))).toBeGreaterThan(1e-3); // " the" at 1 and at 5
  });
});
