// A trainer's live adapter (native/src/live_lora.h) on the tiny test model: after SFT and policy
// steps, scores and generations with it equal those with the adapter saveAdapter writes and
// loadLora loads, bit for bit (the same F32 tensors in the same kind of buffer, so llama.cpp
// computes the same graph with the same numbers); it follows every update, loadCheckpoint,
// loadAdapterWeights and, when asked, setParam; it outlives its trainer with the last weights;
// full mode has none.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model, type ScoreRequest } from "../src/engine/index.js";
import { createTrainer } from "../src/engine/trainer.js";
import { loadAdapterWeights } from "../src/train/adapter-weights.js";
import type { PolicySample } from "../src/engine/policy.js";
import { tinyModelPath } from "./support/models.js";
import { randomSample } from "./support/random.js";

let model: Model;
let dir: string;

beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 2 });
  dir = mkdtempSync(join(tmpdir(), "msr-live-"));
});
afterAll(() => {
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Prompt + completion requests and the matching policy samples (completion = reasoning). */
function batch(seed: number, n: number) {
  const samples: PolicySample[] = [];
  const requests: ScoreRequest[] = [];
  for (let i = 0; i < n; i++) {
    const s = randomSample(seed + i, 6, 5 + i, 0);
    samples.push({ ...s, advantage: i % 2 ? 1 : -1 });
    requests.push({ prompt: s.tokens.slice(0, 6), continuation: s.tokens.slice(6) });
  }
  return { samples, requests };
}

const logprobsOf = (rs: { tokenLogprobs: Float32Array }[]) => rs.map((r) => Array.from(r.tokenLogprobs));

describe("live adapter", () => {
  it("scores and generates exactly as saveAdapter + loadLora after SFT and policy steps", async () => {
    const t = createTrainer(model, { lora: { rank: 4, alpha: 8, seed: 2 }, optimizer: { lr: 1e-2 } });
    const live = await t.liveAdapter();
    expect(await t.liveAdapter()).toBe(live); // one per trainer while it is kept
    const scorer = model.createScorer({ contextSize: 512, sequences: 4 });
    const { samples, requests } = batch(40, 4);
    const base = await scorer.score(requests);
    // B starts at zero: the adapter adds exactly 0.
    expect(logprobsOf(await scorer.score(requests, { lora: [{ adapter: live }] }))).toEqual(logprobsOf(base));

    await t.policyStep(samples);
    await t.step(samples.map((s) => ({ tokens: s.tokens, segments: s.segments })));
    await t.policyStep(samples, { lossType: "token" });
    const path = join(dir, "after-3.gguf");
    await t.saveAdapter(path);
    const saved = await model.loadLora(path);

    const withLive = await scorer.score(requests, { lora: [{ adapter: live }] });
    const withSaved = await scorer.score(requests, { lora: [{ adapter: saved }] });
    expect(logprobsOf(withLive)).toEqual(logprobsOf(withSaved));
    // ...and the adapter matters by now.
    const moved = withLive.flatMap((r, i) =>
      Array.from(r.tokenLogprobs, (lp, k) => Math.abs(lp - base[i]!.tokenLogprobs[k]!)),
    );
    expect(Math.max(...moved)).toBeGreaterThan(1e-3);

    const prompts = requests.map((r) => r.prompt as Int32Array);
    for (const sampling of [{ temperature: 0 }, { temperature: 1, seed: 5 }]) {
      const a = await model.generate(prompts, { maxTokens: 12, ...sampling, lora: [{ adapter: live }] });
      const b = await model.generate(prompts, { maxTokens: 12, ...sampling, lora: [{ adapter: saved }] });
      expect(a.map((r) => Array.from(r.tokens))).toEqual(b.map((r) => Array.from(r.tokens)));
    }

    // The trainer's own log-probs (its training graph) agree with llama.cpp's through the live
    // adapter to float rounding (as in trainer.test.ts's forward check): old log-probs may come
    // from either.
    const own = await t.evaluatePolicy(samples);
    own.logprobs.forEach((lps, i) =>
      lps.forEach((lp, k) => expect(Math.abs(lp - withLive[i]!.tokenLogprobs[k]!)).toBeLessThan(2e-4)),
    );
    saved.dispose();
    scorer.dispose();
    t.dispose();
  });

  it("follows loadCheckpoint and setParam (on request), and keeps its last weights after the trainer is disposed", async () => {
    const t = createTrainer(model, { lora: { rank: 4, alpha: 8, seed: 3 }, optimizer: { lr: 1e-2 } });
    const scorer = model.createScorer({ contextSize: 512, sequences: 4 });
    const { samples, requests } = batch(60, 2);
    const live = await t.liveAdapter();
    const score = async () => logprobsOf(await scorer.score(requests, { lora: [{ adapter: live }] }));
    await t.policyStep(samples);
    const ckpt = join(dir, "ckpt.gguf");
    await t.saveCheckpoint(ckpt);
    const atCheckpoint = await score();
    await t.policyStep(samples);
    const later = await score();
    expect(later).not.toEqual(atCheckpoint);
    await t.loadCheckpoint(ckpt);
    expect(await score()).toEqual(atCheckpoint);

    // setParam changes the weights, not the adapter, until liveAdapter() is called again.
    const name = t.paramNames().find((n) => n.endsWith("lora_b"))!;
    t.setParam(name, new Float32Array(t.getParam(name).length).fill(0.05));
    expect(await score()).toEqual(atCheckpoint);
    expect(await t.liveAdapter()).toBe(live);
    const afterSet = await score();
    expect(afterSet).not.toEqual(atCheckpoint);

    t.dispose();
    expect(await score()).toEqual(afterSet);
    live.dispose();
    await expect(scorer.score(requests, { lora: [{ adapter: live }] })).rejects.toThrow(/disposed/);
    scorer.dispose();
  });

  it("loadAdapterWeights starts a trainer from a saved adapter, live adapter included", async () => {
    const { samples, requests } = batch(80, 2);
    const a = createTrainer(model, { lora: { rank: 4, alpha: 8, seed: 4 }, optimizer: { lr: 1e-2 } });
    await a.policyStep(samples);
    const path = join(dir, "start.gguf");
    await a.saveAdapter(path);
    const b = createTrainer(model, { lora: { rank: 4, alpha: 8, seed: 9 } });
    const live = await b.liveAdapter();
    await loadAdapterWeights(b, path);
    for (const n of a.paramNames()) expect(Array.from(b.getParam(n)), n).toEqual(Array.from(a.getParam(n)));
    const saved = await model.loadLora(path);
    const scorer = model.createScorer({ contextSize: 512, sequences: 2 });
    expect(logprobsOf(await scorer.score(requests, { lora: [{ adapter: live }] }))).toEqual(
      logprobsOf(await scorer.score(requests, { lora: [{ adapter: saved }] })),
    );
    const otherRank = createTrainer(model, { lora: { rank: 2, alpha: 8 } });
    await expect(loadAdapterWeights(otherRank, path)).rejects.toThrow(/rank 4 and alpha 8, this trainer rank 2/);
    const otherTargets = createTrainer(model, { lora: { rank: 4, alpha: 8, targets: ["q", "v"] } });
    await expect(loadAdapterWeights(otherTargets, path)).rejects.toThrow(/adapts other weights than this trainer/);
    for (const t of [a, b, otherRank, otherTargets]) t.dispose();
    saved.dispose();
    scorer.dispose();
  });

  it("a disposed live adapter is replaced by a new one; full mode has none", async () => {
    const t = createTrainer(model, { lora: { rank: 2 } });
    const a = await t.liveAdapter();
    a.dispose();
    const b = await t.liveAdapter();
    expect(b).not.toBe(a);
    expect(b.disposed).toBe(false);
    expect(b.alpha).toBe(32);
    // Steps keep working with or without live adapters.
    await t.policyStep([{ ...randomSample(70, 3, 3, 0), advantage: 1 }]);
    b.dispose();
    await t.step([randomSample(71, 3, 3, 2)]);
    t.dispose();

    const full = createTrainer(model, { mode: "full" });
    await expect(full.liveAdapter()).rejects.toThrow(/full model; a live adapter needs mode 'lora'/);
    full.dispose();
  });
});
