// Property-based fuzz of the engine's public API (run in a child process by
// test/engine-fuzz.test.ts): scorer, generator, embed and trainer calls with arbitrary options and
// inputs (lengths, token ids, scales, seeds, grammars, context and batch sizes), arbitrary
// dispose orders, and hostile arguments: objects and arrays whose getters (or Proxy traps) dispose
// the model, scorer, adapter or trainer, throw, or grow the array at any step of the reading
// (fuzz-hostile.ts). The property: every call ends with a result whose numbers are finite, or with
// an ordinary Error. A native abort or segfault kills this process, which the parent reports.
import fc from "fast-check";
import { loadModel, type LoraAdapter, type Model } from "../../src/engine/index.js";
import { hostileOp, runHostile, type HostileOp } from "./fuzz-hostile.js";
import type { Fixtures } from "./crash-cases.js";
import type { ChildOutcome } from "./crash-child.js";

const VOCAB = 32000;

// Each input is valid most of the time and abusive otherwise, so a run usually gets past option
// checking into native code (about half the runs return a result) while every check still gets hit.
const mostly = <T>(valid: fc.Arbitrary<T>, abusive: fc.Arbitrary<T>, weight = 9) =>
  fc.oneof({ weight, arbitrary: valid }, { weight: 1, arbitrary: abusive });
// fc.option builds nil with probability 1/freq: each option is left out half of the time.
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });

const tokenId = mostly(fc.integer({ min: 3, max: VOCAB - 1 }), fc.constantFrom(-1, 0, 1, 2, VOCAB, 2 ** 31 - 1), 60);
const tokens = (max: number) =>
  mostly(fc.array(tokenId, { minLength: 1, maxLength: max }), fc.array(tokenId, { maxLength: 0 }));
const size = (lo: number, hi: number) =>
  mostly(fc.integer({ min: lo, max: hi }), fc.constantFrom(0, -1, 1e7, 1e12, NaN, Infinity, 2.5));
// Scales are abusive a third of the time: huge finite ones are the way to non-finite logits.
const scale = mostly(
  fc.double({ min: -4, max: 4, noNaN: true }),
  fc.constantFrom(1e30, -1e30, 1e20, 3e38, 1e39, NaN, Infinity),
  2,
);
const grammar = mostly(
  fc.constantFrom('root ::= "Apex" | "Zen"', "root ::= [a-z]+", 'root ::= ""', 'root ::= [a-z] " " [0-9]*'),
  fc.constantFrom("root ::= (", "x ::= y", 'root ::= "\\x00"'),
);

const scoreOp = fc.record({
  kind: fc.constant("score" as const),
  options: fc.record(
    {
      contextSize: maybe(size(16, 1024)),
      sequences: maybe(size(1, 64)),
      batchSize: maybe(size(1, 512)),
      waveTokens: maybe(size(1, 1024)),
    },
    { requiredKeys: [] },
  ),
  requests: mostly(
    fc.array(fc.record({ prompt: tokens(24), continuation: tokens(12) }), { minLength: 1, maxLength: 5 }),
    fc.constant([] as { prompt: number[]; continuation: number[] }[]),
  ),
  scale: maybe(scale),
  disposeEarly: mostly(fc.constant(false), fc.constant(true)),
});

const generateOp = fc.record({
  kind: fc.constant("generate" as const),
  prompts: mostly(fc.array(tokens(16), { minLength: 1, maxLength: 5 }), fc.constant([] as number[][])),
  options: fc.record(
    {
      maxTokens: maybe(mostly(fc.integer({ min: 1, max: 12 }), fc.constantFrom(0, -1, 1e9, 2.5, NaN))),
      temperature: maybe(mostly(fc.constantFrom(0, 0.7, 1.5, 100), fc.constantFrom(-1, NaN))),
      topP: maybe(mostly(fc.constantFrom(0.1, 0.5, 1), fc.constantFrom(0, 1.5))),
      topK: maybe(mostly(fc.constantFrom(0, 1, 40, 1e6), fc.constantFrom(-5, 2.5))),
      minP: maybe(mostly(fc.constantFrom(0, 0.05, 1), fc.constantFrom(-1, 2))),
      seed: maybe(
        mostly(
          fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constantFrom(0xfffffffe, 0xfffffffd)),
          fc.constantFrom(0xffffffff, -1, 2 ** 32, 1.5),
        ),
      ),
      grammar: maybe(grammar),
      stop: maybe(fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 })),
      contextSize: maybe(size(1, 256)),
      parallel: maybe(mostly(fc.constantFrom(1, 2, 3, 256), fc.constantFrom(0, 257))),
    },
    { requiredKeys: [] },
  ),
  scale: maybe(scale),
});

const embedOp = fc.record({
  kind: fc.constant("embed" as const),
  texts: fc.array(tokens(20), { minLength: 0, maxLength: 4 }),
  batchTokens: maybe(size(1, 64)),
});

const trainOp = fc.record({
  kind: fc.constant("train" as const),
  rank: mostly(fc.constantFrom(1, 2), fc.constantFrom(0, -1)),
  sample: tokens(12),
  optimizer: fc.record(
    {
      eps: maybe(mostly(fc.constant(1e-8), fc.constantFrom(0, -1))),
      beta1: maybe(mostly(fc.constant(0.9), fc.constantFrom(1, -0.1))),
      beta2: maybe(mostly(fc.constant(0.999), fc.constant(1))),
    },
    { requiredKeys: [] },
  ),
  disposeModel: mostly(fc.constant(false), fc.constant(true)),
});

// Its own model, adapter and scorer: calls started in order, and the three disposed in any order
// after any number of them started (with or without waiting for those first), then a GC.
const lifecycleOp = fc.record({
  kind: fc.constant("lifecycle" as const),
  calls: fc.array(
    fc.constantFrom("score", "scoreLora", "generate", "generateLora", "embed", "loadLora", "createScorer"),
    { minLength: 1, maxLength: 4 },
  ),
  disposeOrder: fc.shuffledSubarray(["model", "scorer", "adapter"] as const, { minLength: 0, maxLength: 3 }),
  disposeAfter: fc.integer({ min: 0, max: 4 }),
  settleFirst: fc.boolean(),
  gc: fc.boolean(),
});

const op = fc.oneof(
  { weight: 4, arbitrary: scoreOp },
  { weight: 4, arbitrary: generateOp },
  { weight: 2, arbitrary: embedOp },
  { weight: 1, arbitrary: trainOp },
  { weight: 2, arbitrary: lifecycleOp },
  { weight: 4, arbitrary: hostileOp },
);
type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

/** A broken property (not an ordinary Error from the engine, which is an allowed outcome). */
export class Violation extends Error {}

export function finiteDeep(v: unknown, path = "result"): void {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Violation(`silent non-finite number at ${path}: ${v}`);
  } else if (v instanceof Float32Array) {
    v.forEach((x, i) => finiteDeep(x, `${path}[${i}]`));
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => finiteDeep(x, `${path}[${i}]`));
  } else if (v && typeof v === "object" && !ArrayBuffer.isView(v)) {
    for (const [k, x] of Object.entries(v)) finiteDeep(x, `${path}.${k}`);
  }
}

async function runOp(o: Op, model: Model, lora: LoraAdapter, f: Fixtures): Promise<unknown> {
  const loraOpt = (s: number | undefined) => (s === undefined ? undefined : [{ adapter: lora, scale: s }]);
  switch (o.kind) {
    case "score": {
      const s = model.createScorer(o.options);
      const p = s.score(o.requests, { lora: loraOpt(o.scale) });
      if (o.disposeEarly) s.dispose();
      try {
        return await p;
      } finally {
        s.dispose();
      }
    }
    case "generate":
      return model.generate(o.prompts, { ...o.options, lora: loraOpt(o.scale) });
    case "embed":
      return model.embed(o.texts, o.batchTokens === undefined ? {} : { batchTokens: o.batchTokens });
    case "lifecycle":
      return lifecycle(o, f);
    case "hostile":
      return runHostile(o as HostileOp, f);
    case "train": {
      // Its own model, so disposing it mid-way leaves the shared one alone.
      const m = await loadModel(f.model, { threads: 1 });
      try {
        const t = m.createTrainer({ lora: { rank: o.rank }, optimizer: o.optimizer });
        const tokens = Int32Array.from(o.sample);
        const p = t.step([{ tokens, segments: Uint8Array.from(tokens, (_, i) => (i === 0 ? 0 : 2)) }]);
        if (o.disposeModel) m.dispose();
        const r = await p;
        t.dispose();
        return r;
      } finally {
        m.dispose();
      }
    }
  }
}

async function lifecycle(o: Extract<Op, { kind: "lifecycle" }>, f: Fixtures): Promise<unknown> {
  const m = await loadModel(f.model, { threads: 1 });
  const a = await m.loadLora(f.lora);
  const s = m.createScorer({ contextSize: 64 });
  const req = [{ prompt: [1, 500, 600], continuation: [700, 800] }];
  const start: Record<string, () => Promise<unknown>> = {
    score: () => s.score(req),
    scoreLora: () => s.score(req, { lora: [{ adapter: a, scale: 0.5 }] }),
    generate: () => m.generate([[1, 500]], { maxTokens: 8, temperature: 0 }),
    generateLora: () => m.generate([[1, 500]], { maxTokens: 8, temperature: 0.7, lora: [{ adapter: a }] }),
    embed: () => m.embed([[1, 500, 600]]),
    loadLora: async () => (await m.loadLora(f.lora)).dispose(),
    createScorer: () => m.createScorer({ contextSize: 32 }).score(req),
  };
  const dispose = { model: () => m.dispose(), scorer: () => s.dispose(), adapter: () => a.dispose() };
  const started: Promise<unknown>[] = [];
  for (let i = 0; i <= o.calls.length; i++) {
    if (i === o.disposeAfter || (i === o.calls.length && o.disposeAfter > o.calls.length)) {
      if (o.settleFirst) await Promise.allSettled(started);
      for (const d of o.disposeOrder) dispose[d]();
    }
    if (i < o.calls.length) started.push((async () => start[o.calls[i]!]!())());
  }
  if (o.gc) (globalThis as { gc?: () => void }).gc?.();
  const settled = await Promise.allSettled(started);
  a.dispose();
  s.dispose();
  m.dispose();
  for (const r of settled) {
    if (r.status === "rejected" && !(r.reason instanceof Error))
      throw new Violation(`a call rejected with a non-Error: ${String(r.reason)}`);
  }
  const values = settled.map((r) => (r.status === "fulfilled" ? r.value : null));
  finiteDeep(values);
  return values;
}

export async function runFuzz(
  f: Fixtures,
  opts: { seed: number; runs: number; timeLimitMs?: number },
): Promise<ChildOutcome> {
  const model = await loadModel(f.model, { threads: 1 });
  const lora = await model.loadLora(f.lora);
  let runs = 0;
  let resolved = 0;
  try {
    await fc.assert(
      fc.asyncProperty(op, async (o) => {
        runs++;
        let value: unknown;
        try {
          value = await runOp(o, model, lora, f);
        } catch (e) {
          if (!(e instanceof Error)) throw new Violation(`a call threw a non-Error: ${String(e)}`);
          if (e instanceof Violation) throw e;
          return; // an ordinary Error: the property holds
        }
        finiteDeep(value);
        resolved++;
      }),
      { numRuns: opts.runs, seed: opts.seed, interruptAfterTimeLimit: opts.timeLimitMs ?? 60_000, endOnFailure: true },
    );
  } catch (e) {
    return { outcome: "rejected", message: String((e as Error).message).slice(0, 4000), runs, resolvedRuns: resolved };
  } finally {
    lora.dispose();
    model.dispose();
  }
  return { outcome: "resolved", runs, resolvedRuns: resolved };
}
