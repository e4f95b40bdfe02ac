// Policy-gradient steps of the native trainer on the tiny LLaMA test model (n_embd 64, 2 layers,
// 32k vocab): the loss, KL, ratio, clip fraction and entropy against a JS reference computed from
// the training graph's own logits for each normalisation; REINFORCE with advantage 1 against the
// SFT gradient; finite differences of the KL and the clipped-ratio terms; bad input.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { native, type NativeModel } from "../src/engine/bindings.js";
import { createTrainer, type Trainer } from "../src/engine/trainer.js";
import { Segment, type TokenizedSample } from "../src/engine/train-batch.js";
import type { PolicyOptions, PolicySample } from "../src/engine/policy.js";
import { gradient, trainingLogits } from "./support/dev.js";
import { tinyModelPath } from "./support/models.js";
import { mulberry32 as rng, randomSample } from "./support/random.js";
import { centralDifference } from "./support/reference.js";

const VOCAB = 32000;
let model: NativeModel;

beforeAll(async () => {
  model = await native().loadModel(tinyModelPath(), { threads: 2 });
});
afterAll(() => model?.dispose());

function randomizeLora(t: Trainer, seed: number, std = 0.1): void {
  const rand = rng(seed);
  for (const name of t.paramNames()) {
    const v = t.getParam(name);
    for (let i = 0; i < v.length; i++) v[i] = (rand() * 2 - 1) * std * Math.sqrt(3);
    t.setParam(name, v);
  }
}

/** A prompt of `p` tokens and a completion of `c` (segment `seg`, reasoning by default). */
function completion(seed: number, p: number, c: number, seg: number = Segment.reasoning): TokenizedSample {
  const s = randomSample(seed, p, c, 0);
  return { tokens: s.tokens, segments: s.segments.map((x) => (x === Segment.prompt ? x : seg)) };
}

const close = (a: number, b: number, abs: number, rel: number) => Math.abs(a - b) <= abs + rel * Math.abs(b);

/** Completion positions of a sample (after the first token, segment not the prompt). */
function completionPositions(s: TokenizedSample): number[] {
  const out: number[] = [];
  for (let p = 1; p < s.tokens.length; p++) if (s.segments[p] !== Segment.prompt) out.push(p);
  return out;
}

/**
 * The policy loss of train_policy.h written out in JS (double) from the training graph's full
 * logits: per token lp, entropy, the clipped surrogate min(r·A, clip(r)·A), k3, and each
 * normalisation's coefficients.
 */
async function jsPolicyLoss(
  t: Trainer,
  samples: PolicySample[],
  o: Required<Omit<PolicyOptions, "maxTokens">> & { maxTokens?: number },
) {
  const T = Math.fround(o.temperature);
  const [beta, eLow, eHigh] = [o.beta, o.epsilon, o.epsilonHigh].map(Math.fround) as [number, number, number];
  const counts = samples.map((s) => completionPositions(s).length);
  const total = counts.reduce((a, b) => a + b, 0);
  let loss = 0;
  let policyLoss = 0;
  let kl = 0;
  let ratioSum = 0;
  let clipped = 0;
  let entropy = 0;
  const logprobs: number[][] = [];
  for (const [i, s] of samples.entries()) {
    const logits = await trainingLogits(t, s.tokens);
    const c =
      o.lossType === "sequence"
        ? 1 / (samples.length * counts[i]!)
        : o.lossType === "token"
          ? 1 / total
          : 1 / (samples.length * o.maxTokens!);
    const lps: number[] = [];
    completionPositions(s).forEach((p, k) => {
      const z = Array.from(logits.subarray((p - 1) * VOCAB, p * VOCAB), (x) => x / T);
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
      entropy += z.reduce((a, x) => a + Math.exp(x - lse) * (lse - x), 0);
      const lp = z[s.tokens[p]!]! - lse;
      lps.push(lp);
      const A = typeof s.advantage === "number" ? Math.fround(s.advantage) : s.advantage[k]!;
      const r = s.oldLogprobs ? Math.exp(lp - s.oldLogprobs[k]!) : 1;
      const rc = Math.min(Math.max(r, 1 - eLow), 1 + eHigh);
      const surrogate = Math.min(r * A, rc * A);
      if (surrogate !== r * A) clipped++;
      const d = s.refLogprobs ? s.refLogprobs[k]! - lp : 0;
      const k3 = s.refLogprobs ? Math.exp(d) - d - 1 : 0;
      loss += c * (-surrogate + beta * k3);
      policyLoss += c * -surrogate;
      kl += k3;
      ratioSum += r;
    });
    logprobs.push(lps);
  }
  return {
    loss,
    policyLoss,
    kl: kl / total,
    ratioMean: ratioSum / total,
    clipFraction: clipped / total,
    entropy: entropy / total,
    logprobs,
  };
}

describe("policy loss", () => {
  const base = [completion(1, 5, 7), completion(2, 3, 4, Segment.recommendation), completion(3, 6, 9)];
  for (const lossType of ["sequence", "token", "constant"] as const) {
    it(`equals a JS reference from the graph's logits (${lossType} normalisation, KL, clipping, T = 0.8)`, async () => {
      const t = createTrainer(model, { lora: { rank: 4, seed: 5 } });
      randomizeLora(t, 6, 0.05);
      const opts = { beta: 0.3, epsilon: 0.2, epsilonHigh: 0.28, temperature: 0.8, lossType, maxTokens: 12 };
      const current = await t.evaluatePolicy(base, { temperature: 0.8 });
      const rand = rng(17);
      const samples: PolicySample[] = base.map((s, i) => ({
        ...s,
        // Mixed signs: one sample per-token, the others per sample.
        advantage:
          i === 0 ? Float32Array.from(current.logprobs[0]!, (_, k) => (k % 2 ? 1.5 : -0.75)) : i === 1 ? -1.2 : 0.8,
        refLogprobs: Float32Array.from(current.logprobs[i]!, (lp) => lp + (rand() - 0.5)),
        oldLogprobs: Float32Array.from(current.logprobs[i]!, (lp, k) => lp + [0.5, -0.5, 0.03][k % 3]!),
      }));
      const r = await t.evaluatePolicy(samples, opts);
      const js = await jsPolicyLoss(t, samples, opts);
      expect(r.completionTokens).toBe(7 + 4 + 9);
      expect(r.samples).toBe(3);
      expect(r.clipFraction).toBeGreaterThan(0);
      expect(r.clipFraction).toBeLessThan(1);
      expect(r.clipFraction).toBeCloseTo(js.clipFraction, 10);
      for (const key of ["loss", "policyLoss", "kl", "ratioMean", "entropy"] as const)
        expect(close(r[key], js[key], 1e-6, 1e-5), `${key}: ${r[key]} vs ${js[key]}`).toBe(true);
      r.logprobs.forEach((lps, i) =>
        lps.forEach((lp, k) => expect(close(lp, js.logprobs[i]![k]!, 1e-6, 1e-5), `lp[${i}][${k}]`).toBe(true)),
      );
      t.dispose();
    });
  }

  it("REINFORCE with advantage 1 has the SFT gradient of the same completions", async () => {
    const t = createTrainer(model, { lora: { rank: 4, seed: 7 } });
    randomizeLora(t, 8);
    const samples = [completion(4, 4, 6), completion(5, 5, 3)];
    const sft = await t.gradients(samples, { alpha: 1, beta: 0 });
    const g1 = t.paramNames().map((n) => gradient(t, n));
    const pg = await t.policyGradients(
      samples.map((s) => ({ ...s, advantage: 1 })),
      { lossType: "sequence" },
    );
    const g2 = t.paramNames().map((n) => gradient(t, n));
    // The same weights 1/(N·n_i) in the same kernels: the same gradient, bit for bit.
    expect(pg.gradNorm).toBe(sft.gradNorm);
    g1.forEach((g, k) => expect(Array.from(g2[k]!)).toEqual(Array.from(g)));
    // The policy loss is −mean(A) (the ratio is 1); the log-probs are the SFT loss's.
    expect(pg.loss).toBeCloseTo(-1, 6);
    const nll = pg.logprobs.map((lps) => -lps.reduce((a, b) => a + b, 0) / lps.length);
    expect(nll.reduce((a, b) => a + b, 0) / nll.length).toBeCloseTo(sft.lossReasoning, 5);
    t.dispose();
  });
});

describe("policy gradients against finite differences", () => {
  // As in trainer.test.ts: h = 1e-2 on LoRA entries of ~0.1, the loss (a double sum of float32
  // log-probs) carries ~1e-7 of noise, so the quotient is good to ~1e-5; tol 2e-4 + 2e-2·|fd|.
  const H = 1e-2;
  const names = [
    "blk.0.attn_q.weight.lora_a",
    "blk.0.attn_v.weight.lora_b",
    "blk.1.ffn_up.weight.lora_a",
    "blk.1.attn_output.weight.lora_b",
  ];

  async function check(t: Trainer, samples: PolicySample[], opts: PolicyOptions): Promise<string[]> {
    await t.policyGradients(samples, opts);
    const rand = rng(31);
    const failures: string[] = [];
    const evaluator = {
      getParam: (n: string) => t.getParam(n),
      setParam: (n: string, v: Float32Array) => t.setParam(n, v),
      evaluate: (s: PolicySample[]) => t.evaluatePolicy(s, opts),
    };
    for (const name of names) {
      const grad = gradient(t, name);
      expect(
        grad.some((g) => g !== 0),
        `${name} has a gradient`,
      ).toBe(true);
      for (let k = 0; k < 3; k++) {
        const i = Math.floor(rand() * grad.length);
        const fd = await centralDifference(evaluator, name, i, H, samples);
        if (!close(grad[i]!, fd, 2e-4, 2e-2)) failures.push(`${name}[${i}]: analytic ${grad[i]} vs fd ${fd}`);
      }
    }
    return failures;
  }

  it("of the KL term (advantages 0, β = 1)", async () => {
    const t = createTrainer(model, { lora: { rank: 2, alpha: 8, seed: 1 } });
    randomizeLora(t, 2);
    const base = [completion(11, 4, 6), completion(12, 3, 5)];
    const now = await t.evaluatePolicy(base);
    const rand = rng(3);
    const samples = base.map((s, i) => ({
      ...s,
      advantage: 0,
      refLogprobs: Float32Array.from(now.logprobs[i]!, (lp) => lp + (rand() - 0.5) * 2),
    }));
    const opts: PolicyOptions = { beta: 1, lossType: "token" };
    expect((await t.evaluatePolicy(samples, opts)).kl).toBeGreaterThan(0.01);
    expect(await check(t, samples, opts)).toEqual([]);
    t.dispose();
  });

  it("of the clipped ratio term (advantages of both signs, some tokens clipped)", async () => {
    const t = createTrainer(model, { lora: { rank: 2, alpha: 8, seed: 3 } });
    randomizeLora(t, 4);
    const base = [completion(13, 4, 7), completion(14, 3, 6)];
    const now = await t.evaluatePolicy(base);
    // Old log-probs 0.5 above or below the current ones (ratio 0.61 or 1.65: clipped for one
    // sign of A, far from the edges at 0.8 and 1.28) or 0.02 off (ratio ≈ 1, never clipped).
    const samples = base.map((s, i) => ({
      ...s,
      advantage: Float32Array.from(now.logprobs[i]!, (_, k) => (k % 2 ? 1.3 : -0.9)),
      oldLogprobs: Float32Array.from(now.logprobs[i]!, (lp, k) => lp + [0.5, -0.5, 0.02][k % 3]!),
    }));
    const opts: PolicyOptions = { epsilon: 0.2, epsilonHigh: 0.28, lossType: "sequence" };
    const r = await t.evaluatePolicy(samples, opts);
    expect(r.clipFraction).toBeGreaterThan(0.1);
    expect(r.clipFraction).toBeLessThan(0.9);
    expect(await check(t, samples, opts)).toEqual([]);
    t.dispose();
  });
});

describe("policy step", () => {
  it("updates the weights, lowers the loss on its batch, and counts as an optimizer step", async () => {
    const t = createTrainer(model, { lora: { rank: 4, seed: 9 }, optimizer: { lr: 1e-2 } });
    const samples: PolicySample[] = [
      { ...completion(21, 4, 5), advantage: 1 },
      { ...completion(22, 4, 5), advantage: -1 },
    ];
    const first = await t.policyStep(samples);
    expect(first.step).toBe(1);
    expect(first.gradNorm).toBeGreaterThan(0);
    for (let i = 0; i < 4; i++) await t.policyStep(samples);
    const after = await t.evaluatePolicy(samples);
    // Rewarded completion more likely, penalised one less likely.
    const mean = (xs: Float32Array) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(after.logprobs[0]!)).toBeGreaterThan(mean(first.logprobs[0]!));
    expect(mean(after.logprobs[1]!)).toBeLessThan(mean(first.logprobs[1]!));
    expect(t.steps).toBe(5);
    t.dispose();
  });

  it("refuses bad per-token data and options with messages that say what to do", async () => {
    const t = createTrainer(model, { lora: { rank: 2 } });
    const s = completion(30, 3, 4);
    const ok: PolicySample = { ...s, advantage: 1 };
    await expect(t.policyStep([{ ...s, advantage: new Float32Array(3) }])).rejects.toThrow(
      /advantage has 3 entries but the sample has 4 completion tokens/,
    );
    await expect(t.policyStep([{ ...s, advantage: NaN }])).rejects.toThrow(/finite/);
    await expect(t.policyStep([{ ...ok, refLogprobs: new Float32Array(4).fill(0.5) }], { beta: 0.1 })).rejects.toThrow(
      /log-probabilities are <= 0/,
    );
    await expect(t.policyStep([ok], { beta: 0.1 })).rejects.toThrow(/beta .* needs refLogprobs/);
    await expect(
      t.policyStep([
        { ...ok, oldLogprobs: new Float32Array(4) },
        { ...completion(31, 3, 2), advantage: 1 },
      ]),
    ).rejects.toThrow(/1 of 2 samples have them/);
    await expect(t.policyStep([ok], { lossType: "constant" })).rejects.toThrow(/pass maxTokens/);
    await expect(t.policyStep([ok], { lossType: "constant", maxTokens: 2 })).rejects.toThrow(/more than maxTokens/);
    await expect(t.policyStep([ok], { epsilon: 1.5 })).rejects.toThrow(/epsilon/);
    await expect(t.policyStep([ok], { temperature: 0 })).rejects.toThrow(/temperature/);
    await expect(t.policyStep([{ ...s, segments: new Uint8Array(s.tokens.length), advantage: 1 }])).rejects.toThrow(
      /no sample has completion tokens/,
    );
    // The raw addon checks the same where JS is bypassed.
    const batch = { tokens: s.tokens, lengths: Int32Array.of(s.tokens.length), segments: s.segments };
    await expect(t.handle().policyStep(batch, { advantages: new Float32Array(2) })).rejects.toThrow(
      /advantages has 2 entries but the batch has 4 completion tokens/,
    );
    // Nothing above changed the weights.
    expect(t.steps).toBe(0);
    t.dispose();
  });
});
