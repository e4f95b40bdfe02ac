// Property-based fuzz of the engine's public API (run in a child process by
// test/engine-fuzz.test.ts): scorer, generator, embed and trainer calls with arbitrary options and
// inputs (lengths, token ids, scales, seeds, grammars, context and batch sizes) and arbitrary
// dispose orders. The property: every call ends with a result whose numbers are finite, or with an
// ordinary Error. A native abort or segfault kills this process, which the parent reports.
import fc from "fast-check";
import { loadModel, type LoraAdapter, type Model } from "../../src/engine/index.js";
import type { Fixtures } from "./crash-cases.js";
import type { ChildOutcome } from "./crash-child.js";

const VOCAB = 32000;

// Mostly valid token ids, sometimes just outside the vocabulary or negative.
const tokenId = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 3, max: VOCAB - 1 }) }, fc.constantFrom(-1, 0, 1, 2, VOCAB, 2 ** 31 - 1));
const tokens = (max: number) => fc.array(tokenId, { minLength: 0, maxLength: max });
const size = fc.oneof(fc.integer({ min: 1, max: 600 }), fc.constantFrom(0, -1, 1e7, 1e12, NaN, Infinity, 2.5));
const scale = fc.oneof(fc.double({ min: -4, max: 4, noNaN: true }), fc.constantFrom(0, 1e30, -1e30, 3e38, 1e39, NaN, Infinity));
const grammar = fc.constantFrom(undefined, 'root ::= "Apex" | "Zen"', 'root ::= [a-z]+', 'root ::= ""', "root ::= (", "x ::= y", 'root ::= "\\x00"');
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const scoreOp = fc.record({
  kind: fc.constant("score" as const),
  options: fc.record({ contextSize: maybe(size), sequences: maybe(size), batchSize: maybe(size), waveTokens: maybe(size) }, { requiredKeys: [] }),
  requests: fc.array(fc.record({ prompt: tokens(24), continuation: tokens(12) }), { minLength: 0, maxLength: 5 }),
  scale: maybe(scale),
  disposeEarly: fc.boolean(),
});

const generateOp = fc.record({
  kind: fc.constant("generate" as const),
  prompts: fc.array(tokens(16), { minLength: 0, maxLength: 5 }),
  options: fc.record(
    {
      maxTokens: maybe(fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constantFrom(-1, 1e9, 2.5, NaN))),
      temperature: maybe(fc.constantFrom(0, 0.7, 1.5, 100, -1, NaN)),
      topP: maybe(fc.constantFrom(0, 0.5, 1, 1.5)),
      topK: maybe(fc.constantFrom(-5, 0, 1, 40, 1e6)),
      minP: maybe(fc.constantFrom(0, 0.05, 1, 2)),
      seed: maybe(fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constantFrom(0xfffffffe, 0xffffffff, -1, 2 ** 32, 1.5))),
      grammar: maybe(grammar),
      stop: maybe(fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 })),
      contextSize: maybe(size),
      parallel: maybe(fc.constantFrom(0, 1, 2, 3, 256, 257)),
    },
    { requiredKeys: [] },
  ),
  scale: maybe(scale),
});

const embedOp = fc.record({
  kind: fc.constant("embed" as const),
  texts: fc.array(tokens(20), { minLength: 0, maxLength: 4 }),
  batchTokens: maybe(size),
});

const trainOp = fc.record({
  kind: fc.constant("train" as const),
  rank: fc.constantFrom(1, 2, 0, -1),
  sample: tokens(12),
  optimizer: fc.record({ eps: maybe(fc.constantFrom(1e-8, 0, -1)), beta1: maybe(fc.constantFrom(0.9, 1, -0.1)), beta2: maybe(fc.constantFrom(0.999, 1)) }, { requiredKeys: [] }),
  disposeModel: fc.boolean(),
});

const op = fc.oneof({ weight: 4, arbitrary: scoreOp }, { weight: 4, arbitrary: generateOp }, { weight: 2, arbitrary: embedOp }, { weight: 1, arbitrary: trainOp });
type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

function finiteDeep(v: unknown, path = "result"): void {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`silent non-finite number at ${path}: ${v}`);
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

export async function runFuzz(f: Fixtures, opts: { seed: number; runs: number; timeLimitMs?: number }): Promise<ChildOutcome> {
  const model = await loadModel(f.model, { threads: 1 });
  const lora = await model.loadLora(f.lora);
  let runs = 0;
  try {
    await fc.assert(
      fc.asyncProperty(op, async (o) => {
        runs++;
        let value: unknown;
        try {
          value = await runOp(o, model, lora, f);
        } catch (e) {
          if (!(e instanceof Error)) throw new Error(`a call threw a non-Error: ${String(e)}`);
          if (/silent non-finite/.test(e.message)) throw e;
          return; // an ordinary Error: the property holds
        }
        finiteDeep(value);
      }),
      { numRuns: opts.runs, seed: opts.seed, interruptAfterTimeLimit: opts.timeLimitMs ?? 60_000, endOnFailure: true },
    );
  } catch (e) {
    return { outcome: "rejected", message: String((e as Error).message).slice(0, 4000), runs };
  } finally {
    lora.dispose();
    model.dispose();
  }
  return { outcome: "resolved", runs };
}
