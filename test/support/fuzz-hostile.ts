// The fuzz's hostile arguments (used by fuzz.ts): a native method is called with arguments whose
// every property and element is read through a getter (or a Proxy trap). The reads are counted,
// and at the `at`-th one the getter disposes the model, scorer, adapter or trainer, throws, grows
// the array being read, or collects garbage. Whatever step that falls on, the call must end in an
// ordinary Error or a finite result: native code pins the state it uses before it reads any
// argument and checks it again afterwards (native/src/common.h, Pinned).
import fc from "fast-check";
import { devAddon, native } from "../../src/engine/bindings.js";
import { loadModel, type LoraAdapter, type Model, type Scorer, type Trainer } from "../../src/engine/index.js";
import type { Fixtures } from "./crash-case-kit.js";

const CALLS = [
  "tokenize",
  "detokenize",
  "tokenPieces",
  "generate",
  "embed",
  "score",
  "createScorer",
  "createTrainer",
  "step",
  "evaluate",
  "scorerLogits",
] as const;
const ACTIONS = ["model", "scorer", "adapter", "trainer", "throw", "grow", "gc"] as const;

export const hostileOp = fc.record({
  kind: fc.constant("hostile" as const),
  call: fc.constantFrom(...CALLS),
  /** The read (0-based) at which the action runs; past the last read, none does. */
  at: fc.integer({ min: 0, max: 24 }),
  action: fc.constantFrom(...ACTIONS),
  /** Objects as Proxies (traps) or as copies with getters; arrays always get getters. */
  style: fc.constantFrom("getters" as const, "proxy" as const),
  tokens: fc.array(fc.integer({ min: 3, max: 31_999 }), { minLength: 1, maxLength: 6 }),
  scale: fc.constantFrom(0.5, 1, 1e30),
});
export type HostileOp = typeof hostileOp extends fc.Arbitrary<infer T> ? T : never;

interface Objects {
  m: Model;
  a: LoraAdapter;
  s: Scorer;
  t?: Trainer;
}

/** Counts reads and runs the op's action at the `at`-th. */
class Trigger {
  private reads = 0;
  constructor(
    private readonly op: HostileOp,
    private readonly o: Objects,
  ) {}

  read(grow?: unknown[]): void {
    if (this.reads++ !== this.op.at) return;
    switch (this.op.action) {
      case "model":
        return this.o.m.dispose();
      case "scorer":
        return this.o.s.dispose();
      case "adapter":
        return this.o.a.dispose();
      case "trainer":
        return this.o.t?.dispose();
      case "throw":
        throw new Error("a hostile getter threw");
      case "grow":
        if (grow) for (let i = 0; i < 10_000; i++) grow.push(grow[0]);
        return;
      case "gc":
        return (globalThis as { gc?: () => void }).gc?.();
    }
  }
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype;

/** `value` with every property and element read through the trigger (native handles and typed arrays as they are). */
function hostile(value: unknown, trigger: Trigger, style: HostileOp["style"]): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => hostile(v, trigger, style));
    const out: unknown[] = [...items];
    items.forEach((item, i) =>
      Object.defineProperty(out, i, {
        get() {
          trigger.read(out);
          return item;
        },
        enumerable: true,
      }),
    );
    return out;
  }
  if (!isPlainObject(value)) return value;
  const fields = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, hostile(v, trigger, style)]));
  if (style === "proxy") {
    return new Proxy(fields, {
      get(target, key, receiver) {
        trigger.read();
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
  }
  const out = {};
  for (const [k, v] of Object.entries(fields)) {
    Object.defineProperty(out, k, {
      get() {
        trigger.read();
        return v;
      },
      enumerable: true,
    });
  }
  return out;
}

/** The call's arguments as plain data (before they are made hostile). */
function argumentsOf(op: HostileOp, o: Objects): unknown[] {
  const lora = [{ adapter: o.a.handle(), scale: op.scale }];
  const batch = {
    tokens: [1, ...op.tokens],
    lengths: [op.tokens.length + 1],
    segments: Uint8Array.from([0, ...op.tokens.map(() => 2)]),
  };
  switch (op.call) {
    case "tokenize":
      return ["a user bought", { addBos: true, special: false }];
    case "detokenize":
    case "tokenPieces":
      return [op.tokens, { special: true }];
    case "generate":
      return [
        [
          [1, ...op.tokens],
          [1, 700],
        ],
        { maxTokens: 3, temperature: 0.7, topK: 20, stop: ["x"], seed: 1, lora },
      ];
    case "embed":
      return [[op.tokens, [1, 700]], { batchTokens: 64 }];
    case "score":
      return [[{ prompt: [1, ...op.tokens], continuation: [600, 700] }], { lora, profile: true }];
    case "createScorer":
      return [{ contextSize: 64, sequences: 4, batchSize: 32, kvLayout: "auto" }];
    case "createTrainer":
      return [{ mode: "lora", rank: 2, loraAlpha: 4, targets: ["q", "v"], microBatchTokens: 16 }];
    case "step":
      return [batch, { lr: 1e-3, beta1: 0.9, update: true }];
    case "evaluate":
      return [batch, { alpha: 0.7, beta: 0.3 }];
    case "scorerLogits":
      return [[1, ...op.tokens], { lora }];
  }
}

function invoke(op: HostileOp, o: Objects, args: unknown[]): unknown {
  const a = args as never[];
  switch (op.call) {
    case "tokenize":
    case "detokenize":
    case "tokenPieces":
    case "generate":
    case "embed": {
      const h = o.m.handle();
      return (h[op.call] as (...x: never[]) => unknown).call(h, ...a);
    }
    case "score":
      return o.s.handle().score(a[0]!, a[1]);
    case "createScorer":
      return new (native().Scorer)(o.m.handle(), a[0]).dispose();
    case "createTrainer":
      return new (native().Trainer)(o.m.handle(), a[0]).dispose();
    case "step":
      return o.t!.handle().step(a[0]!, a[1]);
    case "evaluate":
      return o.t!.handle().evaluate(a[0]!, a[1]);
    case "scorerLogits":
      return devAddon().scorerLogits(o.s.handle(), a[0]!, a[1]);
  }
}

/** One hostile call on its own model, adapter, scorer (and trainer): its result, or its Error thrown. */
export async function runHostile(op: HostileOp, f: Fixtures): Promise<unknown> {
  const m = await loadModel(f.model, { threads: 1 });
  const o: Objects = { m, a: await m.loadLora(f.lora), s: m.createScorer({ contextSize: 64 }) };
  if (op.call === "step" || op.call === "evaluate" || op.action === "trainer")
    o.t = m.createTrainer({ lora: { rank: 2, targets: ["q", "v"] } });
  try {
    const args = hostile(argumentsOf(op, o), new Trigger(op, o), op.style) as unknown[];
    // The outer argument list is spread here, in JS: only what native code reads stays hostile.
    const r = await invoke(op, o, [...args]);
    return r === undefined ? null : r;
  } finally {
    o.t?.dispose();
    o.s.dispose();
    o.a.dispose();
    m.dispose();
  }
}
