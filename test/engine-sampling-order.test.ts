// The sampler order of Hugging Face `generate`, which the paper's implementation used (METHOD §4):
// temperature first, then top-k / top-p on the tempered distribution. With a high temperature and
// a small top-p the two orders keep different nuclei: tempered first, the nucleus is wide; the
// other way round it is the few most likely tokens of the untempered distribution. The nuclei
// are computed here from the model's logits.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../src/engine/index.js";
import { scorerLogits } from "./support/dev.js";
import { tinyModelPath } from "./support/models.js";
import { addonMissing } from "./support/addon.js";

const missing = addonMissing("sampling-order test");

/** The smallest set of most likely tokens whose probabilities reach p (llama.cpp's top-p, min_keep 1). */
function nucleus(logits: Float32Array, temperature: number, p: number): Set<number> {
  const scaled = Array.from(logits, (l) => l / temperature);
  const max = Math.max(...scaled);
  const e = scaled.map((l) => Math.exp(l - max));
  const z = e.reduce((a, b) => a + b, 0);
  const order = e.map((v, i) => [v / z, i] as const).sort((a, b) => b[0] - a[0]);
  const out = new Set<number>();
  let cum = 0;
  for (const [q, i] of order) {
    out.add(i);
    cum += q;
    if (cum >= p) break;
  }
  return out;
}

describe.skipIf(missing !== null)("sampling order", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(tinyModelPath(), { threads: 2 });
  });
  afterAll(() => model?.dispose());

  it("applies the temperature before top-p, as Hugging Face does", async () => {
    const prompt = "The user bought a phone and then";
    const tokens = model.tokenize(prompt, { addBos: true });
    const scorer = model.createScorer({ contextSize: 256 });
    const all = await scorerLogits(scorer, tokens);
    scorer.dispose();
    const vocab = model.info.vocabSize;
    const last = all.subarray((tokens.length - 1) * vocab, tokens.length * vocab);
    const [T, p] = [3, 0.05];
    const tempered = nucleus(last, T, p);
    const untempered = nucleus(last, 1, p);
    expect(tempered.size).toBeGreaterThan(untempered.size);
    // 300 draws of the first new token, prompt i with seed 1 + i.
    const out = await model.generate(
      Array.from({ length: 300 }, () => tokens),
      { maxTokens: 1, temperature: T, topK: 0, topP: p, seed: 1, parallel: 32 },
    );
    const drawn = out.map((o) => o.tokens[0]!);
    for (const t of drawn) expect(tempered.has(t), `token ${t}`).toBe(true);
    expect(drawn.some((t) => !untempered.has(t))).toBe(true);
  });
});
