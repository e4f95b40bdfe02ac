// The fused cross-entropy kernel (native/kernels/fused_ce_cpu.cpp) against its naive two-pass
// double-precision reference and against an independent log-softmax written here in JS:
// loss, per-row log-probs and the gradient w·(softmax − onehot), on random rows, rows of ±1e4,
// all-equal rows and zero weights. Tolerance: tol_abs + tol_rel·|ref| with tol_rel 1e-5 (float32
// exponentials summed in double) and tol_abs 1e-6 for gradient entries (float32 storage).
import { describe, expect, it } from "vitest";
import { devAddon } from "../src/engine/bindings.js";
import { mulberry32 as mulberry } from "./support/random.js";

function makeCase(rows: number, vocab: number, kind: "random" | "extreme" | "equal", seed: number) {
  const rand = mulberry(seed);
  const logits = new Float32Array(rows * vocab);
  for (let i = 0; i < logits.length; i++) {
    logits[i] = kind === "random" ? (rand() - 0.5) * 20 : kind === "extreme" ? (rand() < 0.5 ? 1e4 : -1e4) : 0.25;
  }
  const targets = Int32Array.from({ length: rows }, () => Math.floor(rand() * vocab));
  const weights = Float32Array.from({ length: rows }, (_, r) => (r % 4 === 3 ? 0 : 0.5 + rand()));
  return { logits, targets, weights };
}

/** Independent JS reference: log-softmax in double, loss = −Σ w·lp, grad = w·(p − onehot). */
function jsReference(logits: Float32Array, rows: number, vocab: number, targets: Int32Array, weights: Float32Array) {
  let loss = 0;
  const lps = new Float64Array(rows);
  const grad = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < vocab; j++) m = Math.max(m, logits[r * vocab + j]!);
    let s = 0;
    for (let j = 0; j < vocab; j++) s += Math.exp(logits[r * vocab + j]! - m);
    const lse = m + Math.log(s);
    lps[r] = logits[r * vocab + targets[r]!]! - lse;
    loss -= weights[r]! * lps[r]!;
    for (let j = 0; j < vocab; j++)
      grad[r * vocab + j] = weights[r]! * (Math.exp(logits[r * vocab + j]! - lse) - (j === targets[r] ? 1 : 0));
  }
  return { loss, lps, grad };
}

const close = (a: number, b: number, abs: number, rel: number) => Math.abs(a - b) <= abs + rel * Math.abs(b);

function expectAllClose(got: ArrayLike<number>, want: ArrayLike<number>, abs: number, rel: number, what: string) {
  expect(got.length).toBe(want.length);
  let worst = -1;
  for (let i = 0; i < got.length; i++) {
    expect(Number.isFinite(got[i]!), `${what}[${i}] is finite`).toBe(true);
    if (!close(got[i]!, want[i]!, abs, rel) && worst < 0) worst = i;
  }
  expect(worst, worst >= 0 ? `${what}[${worst}] = ${got[worst]} vs ${want[worst]}` : "").toBe(-1);
}

describe("fused cross-entropy kernel", () => {
  const ce = () => devAddon().fusedCrossEntropy;

  for (const kind of ["random", "extreme", "equal"] as const) {
    it(`matches the naive reference and a JS log-softmax on ${kind} rows`, () => {
      const rows = 24,
        vocab = 3001;
      const { logits, targets, weights } = makeCase(rows, vocab, kind, 7);
      const fast = ce()(logits, rows, vocab, targets, weights, { threads: 2 });
      const ref = ce()(logits, rows, vocab, targets, weights, { reference: true });
      const js = jsReference(logits, rows, vocab, targets, weights);
      expect(close(fast.loss, ref.loss, 1e-6, 1e-5)).toBe(true);
      expect(close(fast.loss, js.loss, 1e-6, 1e-5)).toBe(true);
      expectAllClose(fast.logprobs, ref.logprobs, 1e-6, 1e-5, "logprobs vs reference");
      expectAllClose(fast.logprobs, js.lps, 1e-6, 1e-5, "logprobs vs js");
      expectAllClose(fast.grad!, ref.grad!, 1e-6, 1e-5, "grad vs reference");
      expectAllClose(fast.grad!, js.grad, 1e-6, 1e-5, "grad vs js");
    });
  }

  it("gives zero-weight rows their log-prob and an all-zero gradient", () => {
    const rows = 8,
      vocab = 500;
    const { logits, targets } = makeCase(rows, vocab, "random", 3);
    const weights = new Float32Array(rows); // all zero
    const r = ce()(logits, rows, vocab, targets, weights, { threads: 2 });
    expect(r.loss).toBe(0);
    expect(r.grad!.every((g) => g === 0)).toBe(true);
    expect(r.logprobs.every((lp) => lp < 0 && Number.isFinite(lp))).toBe(true);
  });

  it("all-equal rows give log-prob −log(vocab) and gradient w/vocab off-target", () => {
    const rows = 3,
      vocab = 1000;
    const logits = new Float32Array(rows * vocab).fill(-7.5);
    const targets = Int32Array.of(0, 500, 999);
    const weights = Float32Array.of(1, 2, 0.5);
    const r = ce()(logits, rows, vocab, targets, weights);
    for (let i = 0; i < rows; i++) expect(r.logprobs[i]).toBeCloseTo(-Math.log(vocab), 5);
    expect(r.grad![1]).toBeCloseTo(1 / vocab, 7);
    expect(r.grad![vocab + 500]).toBeCloseTo(2 * (1 / vocab - 1), 6);
  });

  it("without a gradient buffer it still returns loss and log-probs (the scorer's use)", () => {
    const rows = 5,
      vocab = 777;
    const { logits, targets, weights } = makeCase(rows, vocab, "random", 11);
    const a = ce()(logits, rows, vocab, targets, weights, { grad: false });
    const b = ce()(logits, rows, vocab, targets, weights);
    expect(a.grad).toBeUndefined();
    expect(a.loss).toBe(b.loss);
  });

  it("rejects out-of-range targets and mismatched sizes with clear errors", () => {
    const logits = new Float32Array(20);
    expect(() => ce()(logits, 2, 10, Int32Array.of(0, 10), null)).toThrow(/outside \[0, vocab\)/);
    expect(() => ce()(logits, 3, 10, Int32Array.of(0, 1, 2), null)).toThrow(/rows × vocab/);
  });
});
