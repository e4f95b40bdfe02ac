// The policy-gradient form of the fused kernel (fused_policy_cpu in native/kernels/fused_ce_cpu.cpp,
// the loss of native/kernels/policy_loss.h) against an independent JS reference written here from
// the logits in double: −min(r·A, clip(r, 1−ε_low, 1+ε_high)·A) + β·k3 per row, with advantages of
// both signs, rows clipped on either side, reference and old log-probs present or absent, a
// temperature; and against the kernel's naive C++ reference. Also the cross-entropy kernel with
// weights of mixed sign, which the policy gradient without old log-probs reduces to.
// Tolerances as in test/fused-ce.test.ts: tol_abs + tol_rel·|ref| with tol_rel 1e-5 (float32
// exponentials summed in double); entropies (a difference of two such sums) 1e-5 absolute.
import { describe, expect, it } from "vitest";
import { devAddon } from "../src/engine/bindings.js";
import { mulberry32 } from "./support/random.js";

interface RowsIn {
  advantages: Float32Array;
  coefs: Float32Array;
  refLogprobs?: Float32Array;
  oldLogprobs?: Float32Array;
}
interface Knobs {
  klCoef: number;
  epsilonLow: number;
  epsilonHigh: number;
  temperature: number;
}

function randomLogits(rows: number, vocab: number, seed: number) {
  const rand = mulberry32(seed);
  const logits = Float32Array.from({ length: rows * vocab }, () => (rand() - 0.5) * 20);
  const targets = Int32Array.from({ length: rows }, () => Math.floor(rand() * vocab));
  return { logits, targets, rand };
}

/**
 * Independent JS reference of the per-row policy loss, its log-probs, entropies and gradient. The
 * knobs are float32 in the kernel (PolicyParams), so they are rounded to float32 here too.
 */
function jsPolicy(logits: Float32Array, rows: number, vocab: number, targets: Int32Array, rin: RowsIn, knobs: Knobs) {
  const k = {
    klCoef: Math.fround(knobs.klCoef),
    epsilonLow: Math.fround(knobs.epsilonLow),
    epsilonHigh: Math.fround(knobs.epsilonHigh),
    temperature: Math.fround(knobs.temperature),
  };
  let loss = 0;
  const lps = new Float64Array(rows);
  const entropy = new Float64Array(rows);
  const grad = new Float64Array(rows * vocab);
  const clipped: boolean[] = [];
  for (let r = 0; r < rows; r++) {
    const z = Array.from(logits.subarray(r * vocab, (r + 1) * vocab), (x) => x / k.temperature);
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
    const p = z.map((x) => Math.exp(x - lse));
    entropy[r] = p.reduce((a, pj, j) => a + pj * (lse - z[j]!), 0);
    const lp = z[targets[r]!]! - lse;
    lps[r] = lp;
    const A = rin.advantages[r]!;
    const ratio = rin.oldLogprobs ? Math.exp(lp - rin.oldLogprobs[r]!) : 1;
    const clippedRatio = Math.min(Math.max(ratio, 1 - k.epsilonLow), 1 + k.epsilonHigh);
    // min(r·A, clip(r)·A) as written; the gradient flows only when r·A is the smaller term.
    const unclipped = ratio * A <= clippedRatio * A;
    clipped.push(!unclipped);
    let rowLoss = -Math.min(ratio * A, clippedRatio * A);
    let dlp = unclipped ? -A * ratio : 0;
    if (rin.refLogprobs) {
      const d = rin.refLogprobs[r]! - lp;
      rowLoss += k.klCoef * (Math.exp(d) - d - 1);
      dlp += k.klCoef * (1 - Math.exp(d));
    }
    const c = rin.coefs[r]!;
    loss += c * rowLoss;
    // d(c·loss)/dx_j = c·dlp·(onehot_j − p_j) / T
    for (let j = 0; j < vocab; j++)
      grad[r * vocab + j] = (c * dlp * ((j === targets[r] ? 1 : 0) - p[j]!)) / k.temperature;
  }
  return { loss, lps, entropy, grad, clipped };
}

const close = (a: number, b: number, abs: number, rel: number) => Math.abs(a - b) <= abs + rel * Math.abs(b);

function firstMismatch(got: ArrayLike<number>, want: ArrayLike<number>, abs: number, rel: number): string | null {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  for (let i = 0; i < got.length; i++)
    if (!Number.isFinite(got[i]!) || !close(got[i]!, want[i]!, abs, rel)) return `[${i}] ${got[i]} vs ${want[i]}`;
  return null;
}

/**
 * Rows whose advantages have both signs (one in seven zero), and old log-probs that put rows on
 * both clipped branches and on the unclipped one: the current log-prob shifted by +0.5
 * (r = e^−0.5 ≈ 0.61 < 1 − ε), −0.5 (r ≈ 1.65 > 1 + ε_high) or 0.02 (r ≈ 0.98).
 */
function policyCase(rows: number, vocab: number, seed: number, k: Knobs) {
  const { logits, targets, rand } = randomLogits(rows, vocab, seed);
  const advantages = Float32Array.from({ length: rows }, (_, r) => (r % 7 === 3 ? 0 : (rand() - 0.5) * 4));
  const coefs = Float32Array.from({ length: rows }, () => 0.25 + rand());
  const plain = jsPolicy(logits, rows, vocab, targets, { advantages, coefs }, k);
  const shifts = [0.5, -0.5, 0.02];
  const oldLogprobs = Float32Array.from(plain.lps, (lp, r) => lp + shifts[r % 3]!);
  const refLogprobs = Float32Array.from(plain.lps, (lp) => lp + (rand() - 0.5) * 2);
  return { logits, targets, rin: { advantages, coefs, refLogprobs, oldLogprobs } };
}

describe("fused policy-gradient kernel", () => {
  const ROWS = 21,
    VOCAB = 2003;
  const variants: [string, { ref: boolean; old: boolean }, Knobs][] = [
    ["advantages only", { ref: false, old: false }, { klCoef: 0, epsilonLow: 0.2, epsilonHigh: 0.2, temperature: 1 }],
    [
      "with a KL penalty",
      { ref: true, old: false },
      { klCoef: 0.4, epsilonLow: 0.2, epsilonHigh: 0.2, temperature: 1 },
    ],
    [
      "clipped against old log-probs",
      { ref: false, old: true },
      { klCoef: 0, epsilonLow: 0.2, epsilonHigh: 0.28, temperature: 1 },
    ],
    [
      "KL, clipping and a temperature",
      { ref: true, old: true },
      { klCoef: 0.1, epsilonLow: 0.2, epsilonHigh: 0.28, temperature: 0.7 },
    ],
  ];
  for (const [name, use, knobs] of variants) {
    it(`matches a JS reference and the naive C++ one: ${name}`, () => {
      const c = policyCase(ROWS, VOCAB, 5, knobs);
      const rin: RowsIn = {
        advantages: c.rin.advantages,
        coefs: c.rin.coefs,
        ...(use.ref ? { refLogprobs: c.rin.refLogprobs } : {}),
        ...(use.old ? { oldLogprobs: c.rin.oldLogprobs } : {}),
      };
      const fast = devAddon().fusedPolicyLoss(c.logits, ROWS, VOCAB, c.targets, rin, { ...knobs, threads: 2 });
      const naive = devAddon().fusedPolicyLoss(c.logits, ROWS, VOCAB, c.targets, rin, { ...knobs, reference: true });
      const js = jsPolicy(c.logits, ROWS, VOCAB, c.targets, rin, knobs);
      if (rin.oldLogprobs) {
        // Both branches and both sides are exercised.
        expect(js.clipped.filter(Boolean).length).toBeGreaterThanOrEqual(4);
        expect(js.clipped.filter((x) => !x).length).toBeGreaterThanOrEqual(4);
      }
      expect(close(fast.loss, js.loss, 1e-6, 1e-5), `loss ${fast.loss} vs ${js.loss}`).toBe(true);
      expect(close(naive.loss, js.loss, 1e-9, 1e-9), `reference loss ${naive.loss} vs ${js.loss}`).toBe(true);
      expect(firstMismatch(fast.logprobs, js.lps, 1e-6, 1e-5)).toBeNull();
      expect(firstMismatch(fast.entropy, js.entropy, 1e-5, 1e-5)).toBeNull();
      expect(firstMismatch(naive.entropy, js.entropy, 1e-6, 1e-6)).toBeNull();
      expect(firstMismatch(fast.grad!, js.grad, 1e-6, 1e-5)).toBeNull();
      expect(firstMismatch(naive.grad!, js.grad, 1e-7, 1e-6)).toBeNull();
    });
  }

  it("gives clipped rows (and zero advantages without a KL term) an all-zero gradient", () => {
    const knobs = { klCoef: 0, epsilonLow: 0.2, epsilonHigh: 0.2, temperature: 1 };
    const c = policyCase(ROWS, VOCAB, 9, knobs);
    const rin = { advantages: c.rin.advantages, coefs: c.rin.coefs, oldLogprobs: c.rin.oldLogprobs };
    const r = devAddon().fusedPolicyLoss(c.logits, ROWS, VOCAB, c.targets, rin, knobs);
    const js = jsPolicy(c.logits, ROWS, VOCAB, c.targets, rin, knobs);
    let silent = 0;
    for (let row = 0; row < ROWS; row++) {
      const g = r.grad!.subarray(row * VOCAB, (row + 1) * VOCAB);
      const zero = js.clipped[row] || rin.advantages[row] === 0;
      expect(
        g.every((x) => x === 0),
        `row ${row}`,
      ).toBe(zero);
      silent += zero ? 1 : 0;
    }
    expect(silent).toBeGreaterThan(3);
  });

  it("without old or reference log-probs is the cross-entropy gradient with weights c·A of either sign", () => {
    const { logits, targets, rand } = randomLogits(ROWS, VOCAB, 13);
    const advantages = Float32Array.from({ length: ROWS }, () => (rand() - 0.5) * 4);
    const coefs = Float32Array.from({ length: ROWS }, () => 0.25 + rand());
    const weights = Float32Array.from(advantages, (a, r) => a * coefs[r]!);
    expect(weights.some((w) => w < 0) && weights.some((w) => w > 0)).toBe(true);
    const pg = devAddon().fusedPolicyLoss(logits, ROWS, VOCAB, targets, { advantages, coefs }, { threads: 2 });
    const ce = devAddon().fusedCrossEntropy(logits, ROWS, VOCAB, targets, weights, { threads: 2 });
    const js = jsPolicy(
      logits,
      ROWS,
      VOCAB,
      targets,
      { advantages, coefs },
      {
        klCoef: 0,
        epsilonLow: 0.2,
        epsilonHigh: 0.2,
        temperature: 1,
      },
    );
    // REINFORCE's loss value is −Σ c·A (the ratio is 1); its gradient is the weighted NLL's.
    expect(pg.loss).toBeCloseTo(-advantages.reduce((a, x, r) => a + x * coefs[r]!, 0), 5);
    expect(firstMismatch(ce.grad!, js.grad, 1e-6, 1e-5)).toBeNull();
    expect(firstMismatch(pg.grad!, ce.grad!, 1e-7, 1e-6)).toBeNull();
    expect(Array.from(pg.logprobs)).toEqual(Array.from(ce.logprobs));
  });

  it("rejects per-row arrays of the wrong length and a bad temperature", () => {
    const { logits, targets } = randomLogits(2, 10, 1);
    const ok = { advantages: new Float32Array(2), coefs: new Float32Array(2) };
    expect(() =>
      devAddon().fusedPolicyLoss(logits, 2, 10, targets, { ...ok, refLogprobs: new Float32Array(3) }),
    ).toThrow(/refLogprobs \(one per row\) must hold 2 values, holds 3/);
    // Too few logits for rows × vocab: refused, never read past the end.
    expect(() => devAddon().fusedPolicyLoss(logits.subarray(0, 15), 2, 10, targets, ok)).toThrow(
      /logits \(rows × vocab\) must hold 20 values, holds 15/,
    );
    expect(() => devAddon().fusedPolicyLoss(logits, 2, 10, targets, ok, { temperature: 0 })).toThrow(/temperature/);
  });
});
