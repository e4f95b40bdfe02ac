// GRPO end to end on the tiny test model: a prompt with two candidate titles, reward 1 for naming
// the first. Each step samples G = 8 answers from the current policy restricted to the two titles
// (their probabilities from the scorer through the trainer's live adapter), normalises the rewards
// within the group, scores the reference (the base model, no adapter) for a KL penalty, and takes
// one clipped policy step against the sampling policy's log-probs. The rewarded title's
// probability starts near 0.5 (the untrained model has no preference) and must reach 0.9 within
// MAX_STEPS steps; the run is seeded, so it takes the same number of steps every time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../src/engine/index.js";
import { createTrainer } from "../src/engine/trainer.js";
import { Segment } from "../src/engine/train-batch.js";
import { groupAdvantages, type PolicySample } from "../src/engine/policy.js";
import { tinyModelPath } from "./support/models.js";
import { mulberry32 } from "./support/random.js";

const G = 8;
// Seed 42 reaches 0.9 in 7 steps (seeds 1, 2, 3 and 7: 5 to 7); the bound leaves room for float
// differences between machines.
const MAX_STEPS = 12;

let model: Model;
beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 2 });
});
afterAll(() => model?.dispose());

describe("GRPO toy task", () => {
  it(`moves the rewarded title from about 0.5 to at least 0.9 within ${MAX_STEPS} steps`, async () => {
    const prompt = model.tokenize("Candidates: Amelie | Titanic. The user will watch:");
    // Four tokens each (" ", " Am", "el", "ie" and " ", " T", "itan", "ic"): the untrained model
    // gives them log-probs 0.05 apart, and the rewarded one starts as the less likely. (The tiny
    // model's LoRA cannot move one token's log-odds much beyond 1: its output matrix and final norm
    // are frozen and small. Titles of two distinct tokens top out near 0.9, three reach 0.95.)
    const titles = [" Amelie", " Titanic"].map((s) => model.tokenize(s, { addBos: false }));
    const trainer = createTrainer(model, { lora: { rank: 8, alpha: 16, seed: 1 }, optimizer: { lr: 5e-3 } });
    const live = await trainer.liveAdapter();
    const scorer = model.createScorer({ contextSize: 256, sequences: 2 });
    const requests = titles.map((continuation) => ({ prompt, continuation }));
    const reference = (await scorer.score(requests)).map((r) => r.tokenLogprobs);
    const policy = async () => {
      const rs = await scorer.score(requests, { lora: [{ adapter: live }] });
      return { pFirst: 1 / (1 + Math.exp(rs[1]!.logprob - rs[0]!.logprob)), logprobs: rs.map((r) => r.tokenLogprobs) };
    };
    const rand = mulberry32(42);
    const curve: number[] = [];
    let now = await policy();
    curve.push(now.pFirst);
    while (now.pFirst < 0.9 && curve.length <= MAX_STEPS) {
      const picks = Array.from({ length: G }, () => (rand() < now.pFirst ? 0 : 1));
      const advantages = groupAdvantages(
        picks.map((k) => (k === 0 ? 1 : 0)),
        G,
      );
      const samples: PolicySample[] = picks.map((k, i) => ({
        tokens: Int32Array.from([...prompt, ...titles[k]!]),
        segments: Uint8Array.from([...prompt, ...titles[k]!], (_, j) =>
          j < prompt.length ? Segment.prompt : Segment.recommendation,
        ),
        advantage: advantages[i]!,
        oldLogprobs: now.logprobs[k]!,
        refLogprobs: reference[k]!,
      }));
      const r = await trainer.policyStep(samples, { beta: 0.04, epsilon: 0.2 });
      expect(Number.isFinite(r.loss)).toBe(true);
      now = await policy();
      curve.push(now.pFirst);
    }
    console.log(`GRPO toy: P(rewarded title) by step: ${curve.map((p) => p.toFixed(3)).join(" ")}`);
    expect(curve[0]).toBeGreaterThan(0.4);
    expect(curve[0]).toBeLessThan(0.6);
    expect(now.pFirst).toBeGreaterThanOrEqual(0.9);
    expect(curve.length - 1).toBeLessThanOrEqual(MAX_STEPS);
    scorer.dispose();
    trainer.dispose();
  });
});
