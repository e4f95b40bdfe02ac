// The batched scorer against a naive reference (full logits, float64 log-softmax), and its
// invariances: batching, shared-prompt fan-out, batch size and request order change nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model, type ScoreRequest, type ScoreResult } from "../src/index.js";
import { scorerLogits } from "./support/dev.js";
import { expectClose, naiveLogprob } from "./support/reference.js";
import { tinyModelPath } from "./support/models.js";

let model: Model;

const prompts = [
  "The user bought a phone case after a new phone.",
  "Candidates: Sonix Wireless Headphones, Apex Phone Case, Zen Yoga Mat.",
  "Hello",
];
const continuations = [" Apex Phone Case", " The best choice is the yoga mat because", " world and more words", "!"];
const requests: ScoreRequest[] = prompts.flatMap((prompt) =>
  continuations.map((continuation) => ({ prompt, continuation })),
);

beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 2 });
});
afterAll(() => model?.dispose());

function flat(rs: ScoreResult[]): number[] {
  return rs.flatMap((r) => Array.from(r.tokenLogprobs));
}

describe("scorer", () => {
  it("equals a naive float64 log-softmax over full logits within 1e-4", async () => {
    const scorer = model.createScorer({ contextSize: 512 });
    const got = await scorer.score(requests);
    for (let i = 0; i < requests.length; i++) {
      const p = model.tokenize(requests[i]!.prompt as string);
      const c = model.tokenize(requests[i]!.continuation as string, { addBos: false });
      const all = Int32Array.from([...p, ...c]);
      const logits = await scorerLogits(scorer, all);
      const V = model.info.vocabSize;
      const want = Array.from(c, (t, j) =>
        naiveLogprob(logits.subarray((p.length - 1 + j) * V, (p.length + j) * V), t),
      );
      expectClose(got[i]!.tokenLogprobs, want, 1e-4);
      expect(got[i]!.logprob).toBeCloseTo(
        want.reduce((a, b) => a + b, 0),
        3,
      );
      expect(got[i]!.ppl).toBeCloseTo(Math.exp(-got[i]!.logprob / c.length), 6);
    }
    scorer.dispose();
  });

  it("gives the same results batched and one at a time", async () => {
    const scorer = model.createScorer({ contextSize: 512 });
    const batched = await scorer.score(requests);
    const single: ScoreResult[] = [];
    for (const r of requests) single.push(...(await scorer.score([r])));
    expectClose(flat(batched), flat(single), 1e-4);
    scorer.dispose();
  });

  it("evaluates a shared prompt once for many continuations with the same results as separate prompts", async () => {
    const scorer = model.createScorer({ contextSize: 512, sequences: 8 });
    const shared = continuations.map((continuation) => ({ prompt: prompts[1]!, continuation }));
    const fanOut = await scorer.score(shared);
    // Distinct token arrays that are equal still group; to force separate prompts, score each alone.
    const separate: ScoreResult[] = [];
    for (const r of shared) separate.push(...(await scorer.score([r])));
    expectClose(flat(fanOut), flat(separate), 1e-4);
    scorer.dispose();
  });

  it("does not depend on batch size, sequence slots, context size or request order", async () => {
    const base = await model.createScorer({ contextSize: 512 }).score(requests);
    for (const opts of [
      { batchSize: 7, contextSize: 64, sequences: 2 },
      { batchSize: 64, sequences: 1, contextSize: 128 },
      { batchSize: 512, sequences: 64, contextSize: 2048 },
      { batchSize: 16, sequences: 64, contextSize: 512 },
      { contextSize: 2048, waveTokens: 1 },
      { contextSize: 2048, waveTokens: 2048 },
    ]) {
      const s = model.createScorer(opts);
      expectClose(flat(await s.score(requests)), flat(base), 1e-4);
      s.dispose();
    }
    const order = requests.map((_, i) => (i * 5 + 3) % requests.length); // a permutation (5 is coprime to 12)
    expect(new Set(order).size).toBe(requests.length);
    const shuffled = await model.createScorer({ contextSize: 512 }).score(order.map((i) => requests[i]!));
    expectClose(flat(shuffled), flat(order.map((i) => base[i]!)), 1e-4);
  });

  it("accepts token arrays and strings alike", async () => {
    const scorer = model.createScorer();
    const [a] = await scorer.score([{ prompt: prompts[0]!, continuation: continuations[0]! }]);
    const [b] = await scorer.score([
      {
        prompt: model.tokenize(prompts[0]!),
        continuation: Array.from(model.tokenize(continuations[0]!, { addBos: false })),
      },
    ]);
    expectClose(a!.tokenLogprobs, b!.tokenLogprobs, 0);
  });

  it("profile: true adds the call's timings and changes no result", async () => {
    const scorer = model.createScorer({ contextSize: 512, kvLayout: "unified" });
    const plain = await scorer.score(requests);
    expect(plain.profile).toBeUndefined();
    const profiled = await scorer.score(requests, { profile: true });
    expectClose(flat(profiled), flat(plain), 0);
    const p = profiled.profile!;
    expect(p.layout).toBe("unified");
    expect(p.waves).toBeGreaterThanOrEqual(1);
    expect(p.decodes).toBeGreaterThanOrEqual(p.waves);
    for (const ms of [p.decodeMs, p.logprobMs, p.otherMs]) expect(ms).toBeGreaterThanOrEqual(0);
    expect(p.decodeMs).toBeGreaterThan(0);
    scorer.dispose();
  });

  it("queues concurrent calls on one scorer and returns each its own results", async () => {
    const scorer = model.createScorer({ contextSize: 512 });
    const calls = requests.map((r) => scorer.score([r]));
    const results = (await Promise.all(calls)).flat();
    const batched = await scorer.score(requests);
    expectClose(flat(results), flat(batched), 1e-4);
  });
});
