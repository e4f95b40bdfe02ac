// Batched generation: determinism, greedy == the scorer's argmax, continuous batching == one at a
// time, grammar-constrained output.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../src/index.js";
import { scorerLogits } from "./support/dev.js";
import { argmax } from "./support/reference.js";
import { tinyModelPath } from "./support/models.js";

let model: Model;
const prompts = [
  "The user bought a phone",
  "Recommend one item:",
  "Step 1 - Preference Recognition:",
  "Hello there",
  "Candidates are",
];

beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 2 });
});
afterAll(() => model?.dispose());

describe("generate", () => {
  it("gives the same text for the same seed, and other text for another seed", async () => {
    const opts = { maxTokens: 12, temperature: 1.0, topK: 0, topP: 1 };
    const a = await model.generate(prompts, { ...opts, seed: 7 });
    const b = await model.generate(prompts, { ...opts, seed: 7 });
    const c = await model.generate(prompts, { ...opts, seed: 8 });
    expect(a.map((r) => r.text)).toEqual(b.map((r) => r.text));
    expect(a.map((r) => r.text)).not.toEqual(c.map((r) => r.text));
    for (const r of a) expect(["eos", "length"]).toContain(r.finishReason);
  });

  it("picks the scorer's argmax token at every step at temperature 0", async () => {
    const [r] = await model.generate([prompts[0]!], { maxTokens: 10, temperature: 0 });
    const p = model.tokenize(prompts[0]!);
    const all = Int32Array.from([...p, ...r!.tokens]);
    const scorer = model.createScorer();
    const logits = await scorerLogits(scorer, all);
    const V = model.info.vocabSize;
    // The tiny random model's distribution is nearly flat, so two logits can tie to ~1e-6; the
    // generator decodes token by token and the reference all at once, so accept a tie within
    // float noise, and require exact agreement on most steps.
    let exact = 0;
    for (let j = 0; j < r!.tokens.length; j++) {
      const row = logits.subarray((p.length - 1 + j) * V, (p.length + j) * V);
      const best = argmax(row);
      expect(row[r!.tokens[j]!]!, `step ${j}`).toBeGreaterThanOrEqual(row[best]! - 1e-4);
      if (best === r!.tokens[j]) exact++;
    }
    expect(exact).toBeGreaterThanOrEqual(r!.tokens.length - 1);
  });

  it("continuous batching over few slots equals generating each prompt alone", async () => {
    const opts = { maxTokens: 9, temperature: 0.8, seed: 3 };
    const together = await model.generate(prompts, { ...opts, parallel: 2 });
    for (let i = 0; i < prompts.length; i++) {
      // Prompt i is sampled with seed + i, so alone it must be given seed + i.
      const [alone] = await model.generate([prompts[i]!], { ...opts, seed: opts.seed + i, parallel: 1 });
      expect(together[i]!.text, prompts[i]).toBe(alone!.text);
    }
  });

  it("profile: true adds the call's timings and changes no output", async () => {
    const opts = { maxTokens: 6, temperature: 0, parallel: 2, kvLayout: "unified" as const };
    const plain = await model.generate(prompts, opts);
    expect(plain.profile).toBeUndefined();
    const profiled = await model.generate(prompts, { ...opts, profile: true });
    expect(profiled.map((r) => r.text)).toEqual(plain.map((r) => r.text));
    const p = profiled.profile!;
    expect(p).toMatchObject({ slots: 2, layout: "unified" });
    // Each decode step samples at most one token per slot, and every token came from one.
    const tokens = profiled.reduce((n, r) => n + r.tokens.length, 0);
    expect(p.decodes).toBeGreaterThanOrEqual(Math.ceil(tokens / 2));
    expect(p.decodeMs).toBeGreaterThan(0);
    for (const ms of [p.sampleMs, p.otherMs]) expect(ms).toBeGreaterThanOrEqual(0);
  });

  it("respects maxTokens and stop strings", async () => {
    const [r] = await model.generate([prompts[1]!], { maxTokens: 5, temperature: 0 });
    expect(r!.tokens.length).toBeLessThanOrEqual(5);
    const [full] = await model.generate([prompts[1]!], { maxTokens: 12, temperature: 0 });
    const stopAt = full!.text.slice(3, 5);
    const [stopped] = await model.generate([prompts[1]!], { maxTokens: 12, temperature: 0, stop: [stopAt] });
    expect(stopped!.finishReason).toBe("stop");
    expect(stopped!.text).toBe(full!.text.slice(0, full!.text.indexOf(stopAt)));
  });

  it("a grammar restricting output to a list of titles always yields one of them", async () => {
    const titles = ["Apex Phone Case", "Zen Yoga Mat", "Sonix Wireless Headphones"];
    const grammar = `root ::= ${titles.map((t) => JSON.stringify(t)).join(" | ")}`;
    const results = await model.generate(Array(8).fill("Recommend one item:"), {
      maxTokens: 24,
      temperature: 1.2,
      seed: 11,
      grammar,
    });
    for (const r of results) expect(titles).toContain(r.text.trim());
    expect(new Set(results.map((r) => r.text.trim())).size).toBeGreaterThan(1);
  });

  it("rejects an invalid grammar with a clear error", async () => {
    await expect(model.generate(["x"], { grammar: "root ::= (" })).rejects.toThrow(/grammar/i);
  });
});
