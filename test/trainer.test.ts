// The native trainer on the tiny LLaMA test model (n_embd 64, 2 layers, 4 heads / 2 KV heads,
// 32k vocab): forward equality with llama_decode, finite-difference gradients of every LoRA
// target, the loss definition against a JS reference, α/β and prompt masking, packing,
// reproducibility, memorisation, adapter round trip through the scorer, full mode + saveModel,
// checkpoints and bad input.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { native, type NativeModel } from "../src/engine/bindings.js";
import { createTrainer, type Trainer } from "../src/engine/trainer.js";
import { tokenizeSample } from "../src/train/samples.js";
import { Segment, type TokenizedSample } from "../src/engine/train-batch.js";
import { gradient, referenceLogits, trainingLogits } from "./support/dev.js";
import { testModelPath, tinyModelPath } from "./support/models.js";
import { mulberry32 as rng, randomSample as sample } from "./support/random.js";
import { centralDifference } from "./support/reference.js";

const VOCAB = 32000;
let model: NativeModel;
let dir: string;

beforeAll(async () => {
  model = await native().loadModel(tinyModelPath(), { threads: 2 });
  dir = mkdtempSync(join(tmpdir(), "msr-trainer-"));
});
afterAll(() => {
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Gives every LoRA tensor random values (B too), so the adapter changes the outputs and every gradient is informative. */
function randomizeLora(t: Trainer, seed: number, std = 0.1): void {
  const rand = rng(seed);
  for (const name of t.paramNames()) {
    const v = t.getParam(name);
    for (let i = 0; i < v.length; i++) v[i] = (rand() * 2 - 1) * std * Math.sqrt(3);
    t.setParam(name, v);
  }
}

const close = (a: number, b: number, abs: number, rel: number) => Math.abs(a - b) <= abs + rel * Math.abs(b);

/**
 * Tolerance for float32 sums taken in another order, relative to the tensor's largest entry
 * (default 1e-4). Packed and unpacked runs give ggml's CPU matrix products different shapes, so
 * long packs run in its tiled GEMM and short samples in plain dot products: the attention
 * gradients of the first layer then differ by up to ~2.5e-4 of their largest entry (measured), so
 * that comparison uses 1e-3. A packing error (attention crossing samples) changes them by O(1).
 */
function sameGradient(got: Float32Array, want: Float32Array, rel = 1e-4): string | null {
  let scale = 0;
  for (const x of want) scale = Math.max(scale, Math.abs(x));
  return maxViolation(got, want, rel * scale, 1e-3);
}

/** ‖got − want‖ / ‖want‖ (0 for two zero tensors). */
function relativeRms(got: Float32Array, want: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < want.length; i++) {
    d += (got[i]! - want[i]!) ** 2;
    n += want[i]! ** 2;
  }
  return n === 0 ? Math.sqrt(d) : Math.sqrt(d / n);
}

function maxViolation(got: ArrayLike<number>, want: ArrayLike<number>, abs: number, rel: number): string | null {
  for (let i = 0; i < want.length; i++) {
    if (!Number.isFinite(got[i]!) || !close(got[i]!, want[i]!, abs, rel)) return `[${i}] ${got[i]} vs ${want[i]}`;
  }
  return null;
}

/** The loss of METHOD.md §3 computed in JS (double) from the training graph's full logits. */
async function jsLoss(t: Trainer, samples: TokenizedSample[], alpha: number, beta: number) {
  const per: { rea?: number; rec?: number }[] = [];
  for (const s of samples) {
    const logits = await trainingLogits(t, s.tokens);
    const sums = { rea: [0, 0], rec: [0, 0] };
    for (let p = 1; p < s.tokens.length; p++) {
      const seg = s.segments[p];
      if (seg === Segment.prompt) continue;
      const row = logits.subarray((p - 1) * VOCAB, p * VOCAB);
      let m = -Infinity;
      for (const x of row) m = Math.max(m, x);
      let z = 0;
      for (const x of row) z += Math.exp(x - m);
      const nll = -(row[s.tokens[p]!]! - m - Math.log(z));
      const k = seg === Segment.reasoning ? "rea" : "rec";
      sums[k][0] += nll;
      sums[k][1] += 1;
    }
    per.push({
      rea: sums.rea[1] ? sums.rea[0]! / sums.rea[1]! : undefined,
      rec: sums.rec[1] ? sums.rec[0]! / sums.rec[1]! : undefined,
    });
  }
  const mean = (xs: (number | undefined)[]) => {
    const v = xs.filter((x): x is number => x !== undefined);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : 0;
  };
  const rea = mean(per.map((x) => x.rea));
  const rec = mean(per.map((x) => x.rec));
  return { loss: alpha * rea + beta * rec, rea, rec };
}

describe("training graph forward", () => {
  it("equals llama_decode's logits with the same adapter (LoRA on every target)", async () => {
    const t = createTrainer(model, { lora: { rank: 4, alpha: 8, seed: 3 } });
    randomizeLora(t, 9, 0.05);
    const tokens = sample(21, 40, 0, 0).tokens;
    const mine = await trainingLogits(t, tokens);
    const ref = await referenceLogits(t, tokens);
    // Same math, different op order and threads: float32 rounding differences only.
    expect(maxViolation(mine, ref, 1e-4, 1e-3)).toBeNull();
    // The adapter must matter, or the comparison would not test it.
    for (const n of t.paramNames()) if (n.endsWith("lora_b")) t.setParam(n, new Float32Array(t.getParam(n).length));
    const base = await trainingLogits(t, tokens);
    expect(maxViolation(base, ref, 1e-4, 1e-3)).not.toBeNull();
    t.dispose();
  });

  it("on a model with F16 weights equals llama_decode (LoRA), and a step lowers the loss", async () => {
    const f16 = await native().loadModel(testModelPath({ weightType: "F16" }), { threads: 2 });
    const t = createTrainer(f16, { lora: { rank: 4, alpha: 8, seed: 3 }, optimizer: { lr: 1e-2 } });
    randomizeLora(t, 9, 0.05);
    const tokens = sample(21, 40, 0, 0).tokens;
    // With F16 weights both sides round activations to F16 (unit roundoff 2^-11 ≈ 4.9e-4) at
    // different points; logits are ~0.4 at most, so 5e-4 absolute (measured worst: 1.6e-4).
    expect(maxViolation(await trainingLogits(t, tokens), await referenceLogits(t, tokens), 5e-4, 1e-3)).toBeNull();
    const data = [sample(60, 6, 8, 4)];
    const first = (await t.step(data)).loss;
    for (let i = 0; i < 4; i++) await t.step(data);
    expect((await t.evaluate(data)).loss).toBeLessThan(first);
    t.dispose();
    f16.dispose();
  });

  it("in full mode equals llama_decode of the base model", async () => {
    const t = createTrainer(model, { mode: "full" });
    const tokens = sample(22, 33, 0, 0).tokens;
    const mine = await trainingLogits(t, tokens);
    const ref = await referenceLogits(t, tokens);
    expect(maxViolation(mine, ref, 1e-4, 1e-3)).toBeNull();
    t.dispose();
  });
});

describe("gradients", () => {
  // Central differences on the float32 loss. The loss (~10.4, a float32 graph with the NLL summed
  // in double) carries ~1e-6 absolute rounding noise, so with h = 1e-2 the difference quotient is
  // good to ~1e-6/h = 1e-4; with parameters ~0.1 the truncation error O(h^2 f''') is far below
  // that. tol = 2e-4 + 2e-2*|fd| leaves 2x headroom over the noise and still catches a wrong
  // scale, sign, missing term (e.g. no gradient through K/V) or a zero gradient: the checked
  // gradients are 1e-3 to 1e-1.
  const TOL_ABS = 2e-4,
    TOL_REL = 2e-2,
    H = 1e-2;

  it("match finite differences for A and B of every target type (q, k, v, o, gate, up, down)", async () => {
    const t = createTrainer(model, { lora: { rank: 2, alpha: 8, seed: 1 } });
    randomizeLora(t, 2);
    const samples = [sample(1, 5, 6, 4), sample(2, 4, 0, 5)];
    await t.gradients(samples);
    const rand = rng(77);
    const failures: string[] = [];
    let checked = 0;
    for (const target of ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]) {
      for (const which of ["lora_a", "lora_b"]) {
        const name = `blk.0.${target}.weight.${which}`;
        const grad = gradient(t, name);
        const value = t.getParam(name);
        for (let k = 0; k < 3; k++) {
          const i = Math.floor(rand() * value.length);
          const fd = await centralDifference(t, name, i, H, samples);
          checked++;
          if (!close(grad[i]!, fd, TOL_ABS, TOL_REL)) failures.push(`${name}[${i}]: analytic ${grad[i]} vs fd ${fd}`);
        }
        expect(
          grad.some((g) => g !== 0),
          `${name} has a non-zero gradient`,
        ).toBe(true);
      }
    }
    expect(checked).toBe(42);
    expect(failures).toEqual([]);
    t.dispose();
  });

  it("match finite differences in full mode (embeddings, output, norms, projections)", async () => {
    const t = createTrainer(model, { mode: "full" });
    const samples = [sample(5, 4, 5, 4), sample(6, 3, 0, 5)];
    await t.gradients(samples);
    const names = t.paramNames();
    const out = names.includes("output.weight") ? "output.weight" : "token_embd.weight";
    const E = t.getParam("output_norm.weight").length;
    const used = [...samples[0]!.tokens.slice(4), ...samples[1]!.tokens.slice(3)];
    // Embedding/output rows of tokens in the batch (other rows have no or ~1/V gradient).
    const picks: [string, number][] = [
      ["token_embd.weight", samples[0]!.tokens[2]! * E + 5],
      ["token_embd.weight", samples[1]!.tokens[1]! * E + 17],
      [out, used[0]! * E + 3],
      [out, used[3]! * E + 40],
      ["output_norm.weight", 7],
      ["blk.1.ffn_norm.weight", 30],
      ["blk.0.attn_norm.weight", 2],
      ["blk.0.attn_v.weight", 100],
      ["blk.0.attn_k.weight", 1000],
      ["blk.1.ffn_down.weight", 5000],
    ];
    const failures: string[] = [];
    for (const [name, i] of picks) {
      const g = gradient(t, name)[i]!;
      const h = name.endsWith("norm.weight") ? 1e-2 : 2e-3; // norms are ~1, projections ~0.02
      const fd = await centralDifference(t, name, i, h, samples);
      // Loss noise ~1e-6 over 2h = 4e-3 gives ~2.5e-4 of FD noise; 3e-4 + 2e-2·|fd| covers it.
      if (!close(g, fd, 3e-4, 2e-2)) failures.push(`${name}[${i}]: analytic ${g} vs fd ${fd}`);
    }
    expect(failures).toEqual([]);
    t.dispose();
  });

  it("k and v (and every other target) learn: one step changes every LoRA tensor", async () => {
    const t = createTrainer(model, { lora: { rank: 4, alpha: 16, seed: 4 }, optimizer: { lr: 1e-2 } });
    const before = new Map(t.paramNames().map((n) => [n, t.getParam(n)]));
    await t.step([sample(3, 4, 6, 4)]);
    await t.step([sample(3, 4, 6, 4)]); // B starts at 0, so A moves from the second step on
    for (const n of t.paramNames()) {
      const a = before.get(n)!,
        b = t.getParam(n);
      expect(
        a.some((x, i) => x !== b[i]),
        `${n} changed`,
      ).toBe(true);
    }
    t.dispose();
  });
});

describe("loss definition", () => {
  it("equals α·mean_i(mean reasoning NLL) + β·mean_i(mean recommendation NLL) computed in JS", async () => {
    const t = createTrainer(model, { lora: { rank: 4, seed: 5 } });
    randomizeLora(t, 6, 0.05);
    const samples = [sample(10, 5, 7, 3), sample(11, 3, 0, 6), sample(12, 6, 2, 2)]; // the 2nd has no reasoning
    const r = await t.evaluate(samples, { alpha: 0.6, beta: 0.4 });
    const js = await jsLoss(t, samples, 0.6, 0.4);
    expect(close(r.lossReasoning, js.rea, 1e-5, 1e-5)).toBe(true);
    expect(close(r.lossRecommendation, js.rec, 1e-5, 1e-5)).toBe(true);
    expect(close(r.loss, js.loss, 1e-5, 1e-5)).toBe(true);
    expect(r.lossTokens).toBe(7 + 3 + 6 + 2 + 2);
    t.dispose();
  });

  it("α = 0 gives reasoning tokens no gradient (same as marking them prompt), yet reports their loss", async () => {
    const t = createTrainer(model, { lora: { rank: 2, seed: 6 } });
    randomizeLora(t, 7);
    const s = [sample(20, 4, 6, 4), sample(21, 3, 5, 3)];
    const asPrompt = s.map((x) => ({
      tokens: x.tokens,
      segments: x.segments.map((g) => (g === Segment.reasoning ? Segment.prompt : g)),
    }));
    const a = await t.gradients(s, { alpha: 0, beta: 0.3 });
    const ga = t.paramNames().map((n) => gradient(t, n));
    const b = await t.gradients(asPrompt, { alpha: 0.9, beta: 0.3 });
    const gb = t.paramNames().map((n) => gradient(t, n));
    expect(a.lossReasoning).toBeGreaterThan(0);
    expect(b.lossReasoning).toBe(0);
    expect(a.lossRecommendation).toBeCloseTo(b.lossRecommendation, 6);
    ga.forEach((g, k) => expect(sameGradient(g, gb[k]!)).toBeNull());
    t.dispose();
  });

  it("prompt tokens carry no loss: an all-prompt sample changes neither loss nor gradient", async () => {
    const t = createTrainer(model, { lora: { rank: 2, seed: 7 } });
    randomizeLora(t, 8);
    const s = [sample(30, 4, 5, 4)];
    const promptOnly = { tokens: sample(31, 9, 0, 0).tokens, segments: new Uint8Array(9) };
    const a = await t.gradients(s);
    const ga = t.paramNames().map((n) => gradient(t, n));
    const b = await t.gradients([...s, promptOnly]);
    const gb = t.paramNames().map((n) => gradient(t, n));
    expect(b.loss).toBeCloseTo(a.loss, 6);
    ga.forEach((g, k) => expect(sameGradient(gb[k]!, g)).toBeNull());
    await expect(t.evaluate([promptOnly])).rejects.toThrow(/nothing to learn/);
    t.dispose();
  });

  it("tokenizes {prompt, reasoning, recommendation} strings into the right segments", () => {
    const tok = { tokenize: (x: string, o?: { addBos?: boolean }) => model.tokenize(x, o), eosToken: model.info().eos };
    const s = tokenizeSample(tok, {
      prompt: "History: A, B. Candidates: C, D.",
      reasoning: "Step 1 - the user likes C.",
      recommendation: "C",
    });
    const text = (seg: number) => model.detokenize(s.tokens.filter((_, i) => s.segments[i] === seg));
    expect(s.tokens[0]).toBe(model.info().bos);
    expect(text(Segment.prompt)).toMatch(/Candidates: C, D\.\s*\[reasoning_start\]\s*$/);
    expect(text(Segment.reasoning).trim()).toBe("Step 1 - the user likes C.");
    expect(text(Segment.recommendation)).toMatch(/^\s*\[reasoning_end\] C/);
    expect(s.tokens[s.tokens.length - 1]).toBe(model.info().eos);
    // The target is tokenized as one string, the way the scorer sees a continuation.
    const target = model.tokenize("[reasoning_start]\nStep 1 - the user likes C.\n[reasoning_end] C", {
      addBos: false,
    });
    const prompt = model.tokenize("History: A, B. Candidates: C, D.");
    expect(Array.from(s.tokens.slice(prompt.length, -1))).toEqual(Array.from(target));
    // Behavior-only: markers kept (as at inference), nothing in the reasoning term.
    const plain = tokenizeSample(tok, { prompt: "p", reasoning: "", recommendation: "C" });
    expect(plain.segments.includes(Segment.reasoning)).toBe(false);
    expect(model.detokenize(plain.tokens.filter((_, i) => plain.segments[i] === Segment.recommendation))).toMatch(
      /^\s*\[reasoning_end\] C/,
    );
  });
});

describe("packing and reproducibility", () => {
  it("packed and unpacked micro-batches give the same loss and gradients", async () => {
    const samples = [sample(40, 4, 6, 3), sample(41, 5, 0, 4), sample(42, 3, 4, 4), sample(43, 6, 3, 2)];
    const packed = createTrainer(model, { lora: { rank: 2, seed: 8 }, microBatchTokens: 512 });
    const single = createTrainer(model, { lora: { rank: 2, seed: 8 }, microBatchTokens: 1 });
    randomizeLora(packed, 9);
    randomizeLora(single, 9);
    const a = await packed.gradients(samples);
    const b = await single.gradients(samples);
    expect(close(a.loss, b.loss, 1e-6, 1e-5)).toBe(true);
    for (const n of packed.paramNames())
      expect(sameGradient(gradient(packed, n), gradient(single, n), 1e-3), n).toBeNull();
    // The packed/unpacked difference is the size of a change of summation order alone: the same
    // packed batch with its samples in reverse order (same math, other sums) differs as much.
    const reversed = createTrainer(model, { lora: { rank: 2, seed: 8 }, microBatchTokens: 512 });
    randomizeLora(reversed, 9);
    await reversed.gradients([...samples].reverse());
    let packing = 0;
    let reordering = 0;
    for (const n of packed.paramNames()) {
      packing = Math.max(packing, relativeRms(gradient(packed, n), gradient(single, n)));
      reordering = Math.max(reordering, relativeRms(gradient(reversed, n), gradient(packed, n)));
    }
    console.log(
      `packed vs one sample per micro-batch: ${packing.toExponential(2)} relative RMS; packed vs packed reversed: ${reordering.toExponential(2)}`,
    );
    expect(packing).toBeLessThan(4 * reordering + 1e-6);
    packed.dispose();
    single.dispose();
    reversed.dispose();
  });

  it("profile: true reports each micro-batch's pass and changes no number", async () => {
    const data = [sample(50, 4, 6, 3), sample(51, 5, 5, 4), sample(52, 6, 4, 2)];
    const options = { lora: { rank: 4, seed: 11 }, microBatchTokens: 20 };
    const plain = createTrainer(model, options);
    const profiled = createTrainer(model, { ...options, profile: true });
    const a = await plain.step(data);
    const b = await profiled.step(data);
    expect(a.profile).toBeUndefined();
    expect(b.loss).toBe(a.loss);
    expect(b.gradNorm).toBe(a.gradNorm);
    const passes = b.profile!.passes;
    expect(passes.length).toBe(3); // one sample per micro-batch of 20 tokens
    expect(passes.reduce((n, p) => n + p.tokens, 0)).toBe(b.tokens);
    expect(passes.reduce((n, p) => n + p.lossRows, 0)).toBe(b.lossTokens);
    for (const p of passes) {
      expect(p.forwardMs).toBeGreaterThan(0);
      expect(p.backwardMs).toBeGreaterThan(0);
      expect(p.computeBytes).toBeGreaterThan(0);
      // The CPU reads every weight as stored in the backward.
      expect(p.outProds.total).toBeGreaterThan(0);
      expect(p.outProds.asStored).toBe(p.outProds.total);
    }
    const e = await profiled.evaluate(data);
    expect(e.loss).toBe((await plain.evaluate(data)).loss);
    expect(e.profile!.passes.map((p) => p.backwardMs)).toEqual([0, 0, 0]);
    plain.dispose();
    profiled.dispose();
  });

  it("a fixed seed reproduces the first 10 losses exactly", async () => {
    const data = [sample(50, 4, 6, 3), sample(51, 5, 5, 4)];
    const run = async () => {
      const t = createTrainer(model, { lora: { rank: 4, seed: 11 }, optimizer: { lr: 5e-3 } });
      const losses: number[] = [];
      for (let i = 0; i < 10; i++) losses.push((await t.step(data)).loss);
      t.dispose();
      return losses;
    };
    const a = await run();
    const b = await run();
    expect(b).toEqual(a);
    expect(a[9]).toBeLessThan(a[0]!);
  });
});
