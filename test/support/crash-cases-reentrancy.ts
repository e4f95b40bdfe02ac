// Crash corpus, re-entrancy: reading a call's arguments runs the caller's code (getters, Proxy
// traps), and that code disposes the object the call is on (model, scorer, adapter, trainer),
// throws, grows the array being read, or detaches a buffer. Every native method that reads
// arguments able to run code has a case; each must end in an ordinary Error (the call pins its
// state first and checks it again after reading, native/src/common.h) or a correct result.
import { devAddon, native, type NativeModel } from "../../src/engine/bindings.js";
import { loadModel, type LoraAdapter, type Model, type Scorer, type Trainer } from "../../src/engine/index.js";
import { TINY, withGetter, withModel, type CrashCase, type Fixtures } from "./crash-case-kit.js";

/** What a case works on: a fresh model, with an adapter, a scorer and a trainer made from it. */
interface Objects {
  m: Model;
  a: LoraAdapter;
  s: Scorer;
  t: Trainer;
}

type Victim = keyof Objects;

async function objects(f: Fixtures): Promise<Objects> {
  const m = await loadModel(f.model, TINY);
  return {
    m,
    a: await m.loadLora(f.lora),
    s: m.createScorer({ contextSize: 64 }),
    t: m.createTrainer({ lora: { rank: 2 } }),
  };
}

const sample = () => ({
  tokens: Int32Array.from([1, 500, 600, 700]),
  lengths: Int32Array.from([4]),
  segments: Uint8Array.from([0, 1, 2, 2]),
});

/**
 * One method whose argument, read by native code, disposes `victim`: `call` makes the call, given
 * the objects and `dispose`, the function the argument's getter runs.
 */
interface Reentry {
  victim: Victim;
  call: (o: Objects, dispose: () => void) => unknown;
}

const REENTRIES: Record<string, Reentry> = {
  "tokenize's options": {
    victim: "m",
    call: ({ m }, d) =>
      m.handle().tokenize("hi", {
        get special() {
          d();
          return false;
        },
      }),
  },
  "detokenize's token array": { victim: "m", call: ({ m }, d) => m.handle().detokenize(withGetter([500, 600], 1, d)) },
  "tokenPieces' token array": { victim: "m", call: ({ m }, d) => m.handle().tokenPieces(withGetter([500, 600], 0, d)) },
  "generate's prompt": {
    victim: "m",
    call: ({ m }, d) => m.handle().generate([withGetter([1, 500, 600], 1, d)], { maxTokens: 2 }),
  },
  "generate's options": {
    victim: "m",
    call: ({ m }, d) =>
      m.handle().generate([[1, 500]], {
        maxTokens: 2,
        get temperature() {
          d();
          return 0;
        },
      }),
  },
  "generate's LoRA scale": {
    victim: "a",
    call: ({ m, a }, d) =>
      m.handle().generate([[1, 500]], {
        maxTokens: 2,
        lora: [
          {
            adapter: a.handle(),
            get scale() {
              d();
              return 1;
            },
          },
        ],
      }),
  },
  "embed's text": { victim: "m", call: ({ m }, d) => m.handle().embed([withGetter([1, 500, 600], 2, d)]) },
  "embed's options": {
    victim: "m",
    call: ({ m }, d) =>
      m.handle().embed([[1, 500]], {
        get batchTokens() {
          d();
          return 64;
        },
      }),
  },
  "createScorer's options (a Proxy)": {
    victim: "m",
    call: ({ m }, d) =>
      new (native().Scorer)(
        m.handle(),
        new Proxy(
          {},
          {
            get() {
              d();
              return undefined;
            },
          },
        ),
      ),
  },
  "score's request, disposing the scorer": {
    victim: "s",
    call: ({ s }, d) =>
      s.handle().score([
        {
          get prompt() {
            d();
            return [1, 5];
          },
          continuation: [6, 7],
        },
      ]),
  },
  "score's request, disposing the model": {
    victim: "m",
    call: ({ s }, d) => s.handle().score([{ prompt: withGetter([1, 5], 0, d), continuation: [6, 7] }]),
  },
  "score's LoRA scale": {
    victim: "a",
    call: ({ s, a }, d) =>
      s.handle().score([{ prompt: [1, 5], continuation: [6, 7] }], {
        lora: [
          {
            adapter: a.handle(),
            get scale() {
              d();
              return 1;
            },
          },
        ],
      }),
  },
  "createTrainer's options": {
    victim: "m",
    call: ({ m }, d) =>
      new (native().Trainer)(m.handle(), {
        get rank() {
          d();
          return 2;
        },
      }),
  },
  "buildTrainSession's options": {
    victim: "m",
    call: ({ m }, d) =>
      native().buildTrainSession(m.handle(), {
        get targets() {
          d();
          return ["q"];
        },
      }),
  },
  "step's batch, disposing the trainer": {
    victim: "t",
    call: ({ t }, d) => t.handle().step({ ...sample(), lengths: withGetter([4], 0, d) as unknown as Int32Array }),
  },
  "step's batch, disposing the model": {
    victim: "m",
    call: ({ t }, d) =>
      t.handle().step({ ...sample(), tokens: withGetter([1, 500, 600, 700], 3, d) as unknown as Int32Array }),
  },
  "step's options": {
    victim: "t",
    call: ({ t }, d) =>
      t.handle().step(sample(), {
        get lr() {
          d();
          return 1e-4;
        },
      }),
  },
  "evaluate's batch": {
    victim: "t",
    call: ({ t }, d) =>
      t.handle().evaluate({ ...sample(), tokens: withGetter([1, 500, 600, 700], 0, d) as unknown as Int32Array }),
  },
  "policyStep's advantages, disposing the trainer": {
    victim: "t",
    call: ({ t }, d) =>
      t.handle().policyStep(sample(), {
        get advantages() {
          d();
          return Float32Array.from([1, -1, 0.5]);
        },
      }),
  },
  "policyStep's batch, disposing the model": {
    victim: "m",
    call: ({ t }, d) =>
      t
        .handle()
        .policyStep(
          { ...sample(), tokens: withGetter([1, 500, 600, 700], 2, d) as unknown as Int32Array },
          { advantages: Float32Array.from([1, -1, 0.5]) },
        ),
  },
  "policyStep's options": {
    victim: "t",
    call: ({ t }, d) =>
      t.handle().policyStep(
        sample(),
        { advantages: Float32Array.from([1, -1, 0.5]) },
        {
          get klCoef() {
            d();
            return 0.1;
          },
        },
      ),
  },
  "evaluatePolicy's options": {
    victim: "t",
    call: ({ t }, d) =>
      t.handle().evaluatePolicy(
        sample(),
        {},
        {
          get lossType() {
            d();
            return "token" as const;
          },
        },
      ),
  },
  "dev scorerLogits' tokens": {
    victim: "s",
    call: ({ s }, d) => devAddon().scorerLogits(s.handle(), withGetter([1, 5, 6], 1, d)),
  },
  "dev scorerDecodeOnly's requests": {
    victim: "m",
    call: ({ s }, d) =>
      devAddon().scorerDecodeOnly(s.handle(), [{ prompt: withGetter([1, 5], 1, d), continuation: [6] }]),
  },
  "dev trainerLogits' tokens": {
    victim: "t",
    call: ({ t }, d) => devAddon().trainerLogits(t.handle(), withGetter([1, 5, 6], 0, d)),
  },
  "dev trainerReferenceLogits' tokens": {
    victim: "m",
    call: ({ t }, d) => devAddon().trainerReferenceLogits(t.handle(), withGetter([1, 5, 6], 2, d)),
  },
};

const NAMES: Record<Victim, string> = { m: "model", a: "LoRA adapter", s: "scorer", t: "trainer" };

function reentryCase(r: Reentry): CrashCase {
  return {
    run: async (f) => {
      const o = await objects(f);
      try {
        return await r.call(o, () => o[r.victim].dispose());
      } finally {
        o.t.dispose();
        o.s.dispose();
        o.a.dispose();
        o.m.dispose();
      }
    },
    error: new RegExp(`the ${NAMES[r.victim]} was disposed`),
  };
}

export const REENTRANCY_CASES: Record<string, CrashCase> = {
  ...Object.fromEntries(
    Object.entries(REENTRIES).map(([what, r]) => [
      `reentrancy: ${what} dispose the ${NAMES[r.victim]} while read`,
      reentryCase(r),
    ]),
  ),
  "reentrancy: an options Proxy whose trap throws": {
    run: (f) =>
      withModel(f, (m) =>
        m.handle().generate(
          [[1, 5]],
          new Proxy(
            {},
            {
              get() {
                throw new Error("the trap says no");
              },
            },
          ),
        ),
      ),
    error: /the trap says no/,
  },
  "reentrancy: element getters that grow the prompt and the prompt list while they are read": {
    run: (f) =>
      withModel(f, async (m) => {
        const prompt: number[] = [1, 500];
        Object.defineProperty(prompt, 0, {
          get() {
            for (let i = 0; i < 100_000; i++) prompt.push(600);
            return 1;
          },
        });
        const prompts: number[][] = [prompt];
        Object.defineProperty(prompts, 0, {
          get() {
            for (let i = 0; i < 1000; i++) prompts.push([1, 700]);
            return prompt;
          },
        });
        const r = await m.handle().generate(prompts, { maxTokens: 2, temperature: 0 });
        return { results: r.length, grownTo: prompt.length };
      }),
    check: (v) => {
      const r = v as { results: number; grownTo: number };
      if (r.results !== 1 || r.grownTo < 100_000)
        throw new Error(`read past the length it started with: ${JSON.stringify(r)}`);
    },
  },
  "reentrancy: a Proxy of a model, and an object made from Model's prototype, are not models": {
    run: (f) =>
      withModel(f, async (m) => {
        const errors: string[] = [];
        const fake = Object.create(Object.getPrototypeOf(m.handle()) as object) as NativeModel;
        for (const model of [new Proxy(m.handle(), {}), fake]) {
          try {
            new (native().Scorer)(model, {});
          } catch (e) {
            errors.push((e as Error).message);
          }
        }
        return errors;
      }),
    check: (v) => {
      const e = v as string[];
      if (e.length !== 2 || !e.every((x) => /expected a Model/.test(x))) throw new Error(JSON.stringify(e));
    },
  },
  "reentrancy: fusedCrossEntropy's target getter transfers the logits' buffer away": {
    run: async () => {
      const logits = new Float32Array(8);
      const targets = withGetter([0, 1], 1, () => structuredClone(logits.buffer, { transfer: [logits.buffer] }));
      return devAddon().fusedCrossEntropy(logits, 2, 4, targets as unknown as Int32Array, null);
    },
    error: /logits \(rows × vocab\) must hold 8 values, holds 0 \(a wrong size, or its buffer was transferred\)/,
  },
};
