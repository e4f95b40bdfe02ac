// Invariant numerics (the default on the CPU): a request's token log-probs and PPL are bitwise the
// same whatever else is in the call, however the call is cut into waves and batches, in either KV
// layout and on 1 or 2 threads; generated tokens under a seed are the same alone and in any
// parallel batch, and the generator's token log-probs are the scorer's on the same tokens.
// Property tests: random request sets (seeded), each request scored alone as the reference.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model, type ScorerOptions, type ScoreRequest, type ScoreResult } from "../src/index.js";
import { archModelPath } from "./support/arch-models.js";
import { tinyModelPath } from "./support/models.js";
import { mulberry32 } from "./support/random.js";

type Scored = { tokenLogprobs: Float32Array; ppl: number };

/** Random requests: prompts of 1..160 tokens, continuations of 1..60, a few prompts shared. */
function randomRequests(seed: number, n: number, vocab: number): ScoreRequest[] {
  const rand = mulberry32(seed);
  const toks = (len: number) =>
    Int32Array.from({ length: len }, (_, i) => (i === 0 ? 1 : 2 + Math.floor(rand() * (vocab - 2))));
  const reqs: ScoreRequest[] = [];
  while (reqs.length < n) {
    const prompt = toks(1 + Math.floor(rand() ** 2 * 160));
    const members = rand() < 0.25 ? 3 : 1;
    for (let k = 0; k < members && reqs.length < n; k++)
      reqs.push({ prompt, continuation: toks(1 + Math.floor(rand() * 60)) });
  }
  return reqs;
}

function shuffle<T>(xs: T[], rand: () => number): T[] {
  const out = xs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

async function scoreWith(model: Model, reqs: ScoreRequest[], opts: ScorerOptions): Promise<ScoreResult[]> {
  const s = model.createScorer(opts);
  try {
    return await s.score(reqs);
  } finally {
    s.dispose();
  }
}

/** The indices of the requests whose log-probs or PPL are not bitwise the reference's. */
function differing(got: Scored[], want: Scored[]): number[] {
  const bad: number[] = [];
  for (let i = 0; i < want.length; i++) {
    const a = Buffer.from(
      got[i]!.tokenLogprobs.buffer,
      got[i]!.tokenLogprobs.byteOffset,
      got[i]!.tokenLogprobs.byteLength,
    );
    const b = Buffer.from(
      want[i]!.tokenLogprobs.buffer,
      want[i]!.tokenLogprobs.byteOffset,
      want[i]!.tokenLogprobs.byteLength,
    );
    if (!a.equals(b) || !Object.is(got[i]!.ppl, want[i]!.ppl)) bad.push(i);
  }
  return bad;
}

/**
 * Scores `reqs` alone (one call per request), then inside compositions of random other requests,
 * calls, layouts, batch and wave sizes, and returns the differing requests of each composition.
 */
async function invarianceReport(model: Model, seed: number, n: number): Promise<Record<string, number[]>> {
  const vocab = model.info.vocabSize;
  const reqs = randomRequests(seed, n, vocab);
  const others = randomRequests(seed + 1000, 12, vocab);
  const alone: ScoreResult[] = [];
  for (const r of reqs) alone.push((await scoreWith(model, [r], { contextSize: 1024 }))[0]!);
  const rand = mulberry32(seed + 7);
  const report: Record<string, number[]> = {};
  const compositions: [string, ScorerOptions][] = [
    ["one call, auto", { contextSize: 2048 }],
    ["one call, unified", { contextSize: 2048, kvLayout: "unified" }],
    ["one call, per-sequence", { contextSize: 2048, kvLayout: "per-sequence" }],
    ["unified, batch 96, 4 sequences", { contextSize: 2048, kvLayout: "unified", batchSize: 96, sequences: 4 }],
    ["unified, batch 17", { contextSize: 2048, kvLayout: "unified", batchSize: 17 }],
    ["unified, waves of 128", { contextSize: 2048, kvLayout: "unified", waveTokens: 128 }],
    [
      "per-sequence, batch 96, 4 sequences",
      { contextSize: 2048, kvLayout: "per-sequence", batchSize: 96, sequences: 4 },
    ],
    ["per-sequence, batch 5", { contextSize: 2048, kvLayout: "per-sequence", batchSize: 5, sequences: 3 }],
  ];
  for (const [name, opts] of compositions) {
    // The requests shuffled among random others: their places, neighbours and shared prompts move.
    const mixed = shuffle([...reqs.map((r, i) => ({ r, i })), ...others.map((r) => ({ r, i: -1 }))], rand);
    const got = await scoreWith(
      model,
      mixed.map((m) => m.r),
      opts,
    );
    const mine: Scored[] = [];
    for (let k = 0; k < mixed.length; k++) if (mixed[k]!.i >= 0) mine[mixed[k]!.i] = got[k]!;
    report[name] = differing(mine, alone);
  }
  // Shards: the requests split into 3 calls of random sizes, reversed order within each.
  const order = shuffle(
    reqs.map((_, i) => i),
    rand,
  );
  const cuts = [Math.floor(n / 4), Math.floor((2 * n) / 3)];
  const shards = [order.slice(0, cuts[0]), order.slice(cuts[0], cuts[1]), order.slice(cuts[1])];
  const sharded: Scored[] = [];
  for (const shard of shards) {
    const idx = shard.slice().reverse();
    const got = await scoreWith(
      model,
      idx.map((i) => reqs[i]!),
      { contextSize: 1024, sequences: 4 },
    );
    idx.forEach((i, k) => (sharded[i] = got[k]!));
  }
  report["3 shards, reversed"] = differing(sharded, alone);
  return report;
}

function expectNoneDiffer(report: Record<string, number[]>): void {
  const bad = Object.entries(report).filter(([, v]) => v.length > 0);
  expect(bad, `requests not bitwise equal to scoring alone: ${JSON.stringify(bad)}`).toEqual([]);
}

describe("invariant scoring", () => {
  let tiny: Model;
  beforeAll(async () => {
    tiny = await loadModel(tinyModelPath(), { threads: 2 });
  });
  afterAll(() => tiny?.dispose());

  it("is the default, and fast is the named alternative", () => {
    const s = tiny.createScorer({ contextSize: 512 });
    expect(s.config.numerics).toBe("invariant");
    s.dispose();
    const f = tiny.createScorer({ contextSize: 512, numerics: "fast" });
    expect(f.config.numerics).toBe("fast");
    f.dispose();
    expect(() => tiny.createScorer({ numerics: "exact" as "fast" })).toThrow(/numerics must be "invariant" or "fast"/);
  });

  it("takes a model's default from loadModel, which each scorer and generate call may override", async () => {
    const fast = await loadModel(tinyModelPath(), { threads: 2, numerics: "fast" });
    try {
      const s = fast.createScorer({ contextSize: 512 });
      expect(s.config.numerics).toBe("fast");
      s.dispose();
      const i = fast.createScorer({ contextSize: 512, numerics: "invariant" });
      expect(i.config.numerics).toBe("invariant");
      i.dispose();
      // Generation follows the default too: fast greedy tokens of a prompt equal the fast model's
      // and a fast call's on the invariant model (the same kernels), whatever they are.
      const prompt = [Int32Array.from([1, 5, 9, 200, 31, 77])];
      const a = await fast.generate(prompt, { maxTokens: 6, temperature: 0, logprobs: true });
      const b = await tiny.generate(prompt, { maxTokens: 6, temperature: 0, logprobs: true, numerics: "fast" });
      expect(Array.from(a[0]!.tokenLogprobs!)).toEqual(Array.from(b[0]!.tokenLogprobs!));
    } finally {
      fast.dispose();
    }
  });

  it("gives every request the bits it gets alone, in any company, layout, batch or shard (tiny F32)", async () => {
    expectNoneDiffer(await invarianceReport(tiny, 11, 16));
  });

  it("is not what fast numerics give: fast scores depend on the batch (the property tested above can fail)", async () => {
    const reqs = randomRequests(11, 16, tiny.info.vocabSize);
    const alone: ScoreResult[] = [];
    for (const r of reqs) alone.push((await scoreWith(tiny, [r], { contextSize: 1024, numerics: "fast" }))[0]!);
    const together = await scoreWith(tiny, reqs, { contextSize: 2048, kvLayout: "unified", numerics: "fast" });
    expect(differing(together, alone).length).toBeGreaterThan(0);
  });

  it("gives the same bits on 1 and 2 threads", async () => {
    const one = await loadModel(tinyModelPath(), { threads: 1 });
    try {
      const reqs = randomRequests(23, 10, tiny.info.vocabSize);
      const a = await scoreWith(one, reqs, { contextSize: 2048 });
      const b = await scoreWith(tiny, reqs, { contextSize: 2048 });
      expect(differing(a, b)).toEqual([]);
    } finally {
      one.dispose();
    }
  });

  it("gives every request the bits it gets alone on a quantized model (Llama-3 layout, Q4_0, repacked)", async () => {
    const q = await loadModel(await archModelPath("tiny-llama3", "Q4_0"), { threads: 2 });
    try {
      expectNoneDiffer(await invarianceReport(q, 31, 12));
    } finally {
      q.dispose();
    }
  }, 120_000);

  it("checks repacked weights once: where a row alone and among others differ it says how to load the model", async () => {
    // Q4_K repacks to 8x8 interleaved blocks whose gemm and gemv paths round differently on some
    // CPUs (AVX-512 here); on a CPU where they agree the scores must be invariant instead.
    const path = await archModelPath("tiny-llama3", "Q4_K");
    const repacked = await loadModel(path, { threads: 2 });
    try {
      const reqs = randomRequests(41, 6, repacked.info.vocabSize);
      const s = repacked.createScorer({ contextSize: 1024 });
      const outcome = await s.score(reqs).then(
        (r) => r,
        (e: Error) => e,
      );
      s.dispose();
      if (outcome instanceof Error) {
        expect(outcome.message).toMatch(
          /repacked q4_K weights .* load the model with repack: false, or use numerics: "fast"/,
        );
        await expect(repacked.generate([reqs[0]!.prompt as Int32Array], { maxTokens: 2 })).rejects.toThrow(
          /repack: false/,
        );
      } else {
        const alone: ScoreResult[] = [];
        for (const r of reqs) alone.push((await scoreWith(repacked, [r], { contextSize: 1024 }))[0]!);
        expect(differing(outcome, alone)).toEqual([]);
      }
      // Fast numerics do not need the check.
      expect((await scoreWith(repacked, reqs, { contextSize: 1024, numerics: "fast" })).length).toBe(reqs.length);
    } finally {
      repacked.dispose();
    }
    const plain = await loadModel(path, { threads: 2, repack: false });
    try {
      const reqs = randomRequests(41, 6, plain.info.vocabSize);
      const alone: ScoreResult[] = [];
      for (const r of reqs) alone.push((await scoreWith(plain, [r], { contextSize: 1024 }))[0]!);
      const together = await scoreWith(plain, reqs, { contextSize: 2048, kvLayout: "unified", batchSize: 17 });
      expect(differing(together, alone)).toEqual([]);
    } finally {
      plain.dispose();
    }
  }, 120_000);
});

describe("invariant generation", () => {
  let tiny: Model;
  beforeAll(async () => {
    tiny = await loadModel(tinyModelPath(), { threads: 2 });
  });
  afterAll(() => tiny?.dispose());

  // 9 prompts of 1..270 tokens: with 4 slots every slot is reused and runs thin out to one.
  const lengths = [40, 1, 270, 90, 17, 150, 60, 8, 200];
  const prompts = () => {
    const rand = mulberry32(5);
    return lengths.map((n) =>
      Int32Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 2 + Math.floor(rand() * (tiny.info.vocabSize - 2)))),
    );
  };
  const sampling = { maxTokens: 40, temperature: 0.9, seed: 3 };

  it("samples each prompt's tokens as it does alone, in any parallel batch and layout", async () => {
    const ps = prompts();
    // Alone: prompt i with seed 3 + i, as prompt i of the batch is sampled.
    const alone = [];
    for (let i = 0; i < ps.length; i++)
      alone.push((await tiny.generate([ps[i]!], { ...sampling, seed: sampling.seed + i, parallel: 1 }))[0]!);
    for (const opts of [
      { parallel: 4, kvLayout: "unified" as const },
      { parallel: 9, kvLayout: "unified" as const },
      { parallel: 4, kvLayout: "per-sequence" as const },
      { parallel: 9, kvLayout: "per-sequence" as const },
      { parallel: 2, kvLayout: "auto" as const },
    ]) {
      const got = await tiny.generate(ps, { ...sampling, ...opts });
      for (let i = 0; i < ps.length; i++)
        expect(Array.from(got[i]!.tokens), `${JSON.stringify(opts)}, prompt ${i}`).toEqual(
          Array.from(alone[i]!.tokens),
        );
    }
  });

  it("returns each generated token's log-prob, bitwise the scorer's on the same tokens, in every layout", async () => {
    const ps = prompts();
    const scorer = tiny.createScorer({ contextSize: 2048 });
    try {
      // A stop string ends prompts at different steps, so slots free and refill while others run.
      for (const opts of [
        { parallel: 4 },
        { parallel: 3, kvLayout: "unified" as const, stop: ["e"] },
        { parallel: 3, kvLayout: "per-sequence" as const, stop: ["e"] },
      ]) {
        const got = await tiny.generate(ps, { ...sampling, ...opts, logprobs: true });
        const kept = got.map((r, i) => ({ r, i })).filter(({ r }) => r.tokens.length > 0);
        expect(kept.length).toBeGreaterThan(5);
        const scored = await scorer.score(kept.map(({ r, i }) => ({ prompt: ps[i]!, continuation: r.tokens })));
        kept.forEach(({ r, i }, k) => {
          const where = `${JSON.stringify(opts)}, prompt ${i}`;
          expect(r.tokenLogprobs!.length, where).toBe(r.tokens.length);
          expect(Buffer.from(r.tokenLogprobs!.buffer).equals(Buffer.from(scored[k]!.tokenLogprobs.buffer)), where).toBe(
            true,
          );
        });
        if (opts.stop)
          expect(new Set(got.map((r) => r.tokens.length)).size, "prompts end at different steps").toBeGreaterThan(2);
      }
    } finally {
      scorer.dispose();
    }
    // Without the option there is no field.
    expect((await tiny.generate([ps[0]!], { maxTokens: 4 }))[0]!.tokenLogprobs).toBeUndefined();
  });
});
