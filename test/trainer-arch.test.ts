// The trainer on the checkpoints people bring, as converter-layout fixtures (test/support/arch-models.ts):
// Llama 3.2 (128k BPE vocab, GQA, rope_freqs, tied output), Qwen2 (Q/K/V biases) and Qwen3 (Q/K
// norms, heads × head size != width), in float and quantized weight types. Against independent
// references: the training forward equals llama_decode with the same adapter, gradients equal
// finite differences on float bases, a short run memorises, the saved adapter scores the same
// through loadLora and the scorer, and every refusal is a message, not a crash.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeTrainability } from "../src/cli/commands/info.js";
import { native, type NativeModel } from "../src/engine/bindings.js";
import { createTrainer, type Trainer } from "../src/engine/trainer.js";
import type { WeightType } from "../src/gguf/init-model.js";
import { Segment } from "../src/engine/train-batch.js";
import { archModelPath, refusedModelPath, type ArchPreset } from "./support/arch-models.js";
import { gradient, openDevTrainer, referenceLogits, trainingLogits } from "./support/dev.js";
import { mulberry32 as rng, randomSample } from "./support/random.js";
import { centralDifference } from "./support/reference.js";

// Token ids below every special token of the three vocabularies.
const sample = (seed: number, p: number, r: number, c: number) => randomSample(seed, p, r, c, 100000);
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "msr-trainer-arch-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function randomizeLora(t: Trainer, seed: number, std: number): void {
  const rand = rng(seed);
  for (const name of t.paramNames()) {
    const v = t.getParam(name);
    for (let i = 0; i < v.length; i++) v[i] = (rand() * 2 - 1) * std * Math.sqrt(3);
    t.setParam(name, v);
  }
}

/** Largest |a - b| relative to the largest |b|, and the RMS of a - b relative to the RMS of b. */
function relDiff(a: Float32Array, b: Float32Array): { max: number; rms: number } {
  let d = 0,
    scale = 0,
    d2 = 0,
    b2 = 0;
  for (let i = 0; i < b.length; i++) {
    if (!Number.isFinite(a[i]!)) return { max: Infinity, rms: Infinity };
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
    d2 += (a[i]! - b[i]!) ** 2;
    b2 += b[i]! ** 2;
  }
  return { max: d / scale, rms: Math.sqrt(d2 / b2) };
}
const maxRelDiff = (a: Float32Array, b: Float32Array) => relDiff(a, b).max;

async function load(preset: ArchPreset, type: WeightType, opts: { repack?: boolean } = {}): Promise<NativeModel> {
  return native().loadModel(await archModelPath(preset, type), { threads: 2, ...opts });
}

// Training forward vs llama_decode (whose reference context keeps K/V in F32): the largest
// difference relative to the largest logit (~20 on these fixtures) and the RMS difference
// relative to the RMS logit. F32 agrees to float rounding (measured 2e-7 to 5e-7 max). F16 and
// BF16 products round the activations to the weight type at points that differ between the two
// graphs (measured max 2.2e-4 for F16, 1.3e-3 for BF16, whose unit roundoff is 3.9e-3).
// Quantized products quantize the activations to Q8_0 on both sides; most cases agree to float
// rounding (measured 3e-7), but that quantization is discontinuous: a float-rounding difference
// upstream can move an activation across a Q8_0 step (1/254 of its block's range) and shift
// logits (measured max 1.8e-3, RMS 4.4e-4 for qwen2 Q4_K; 1.6e-4 for llama3 Q8_0). A wrong graph
// (missing bias, norm or RoPE factor) differs by O(1) in both measures. The models are loaded with
// repack: false: llama.cpp's repacked Q4_0/Q4_K kernels quantize activations their own way
// (measured 7e-3 max, 4.7e-3 RMS against the plain kernels with this adapter); the trainer's
// copies of repacked weights are checked against repack: false in the next test.
const QUANTIZED: [number, number] = [2e-2, 2e-3];
const FORWARD_CASES: [ArchPreset, WeightType, [number, number]][] = [
  ["tiny-llama3", "F32", [1e-5, 1e-5]],
  ["tiny-llama3", "F16", [1e-3, 1e-3]],
  ["tiny-llama3", "BF16", [4e-3, 4e-3]],
  ["tiny-llama3", "Q8_0", QUANTIZED],
  ["tiny-llama3", "Q4_0", QUANTIZED],
  ["tiny-llama3", "Q4_K", QUANTIZED],
  ["tiny-llama3", "Q5_K", QUANTIZED],
  ["tiny-llama3", "Q6_K", QUANTIZED],
  ["tiny-qwen2", "F32", [1e-5, 1e-5]],
  ["tiny-qwen2", "Q4_0", QUANTIZED],
  ["tiny-qwen2", "Q4_K", QUANTIZED],
  ["tiny-qwen3", "F32", [1e-5, 1e-5]],
  ["tiny-qwen3", "BF16", [4e-3, 4e-3]],
  ["tiny-qwen3", "Q8_0", QUANTIZED],
];

describe("training forward equals llama_decode (LoRA on every target)", () => {
  it.each(FORWARD_CASES)("%s %s (relative tolerance max, rms %s)", async (preset, type, [tolMax, tolRms]) => {
    // repack: false, so llama_decode uses the plain kernels (see the next test for repacked loads).
    const model = await load(preset, type, { repack: false });
    const t = createTrainer(model, { lora: { rank: 4, alpha: 8, seed: 3 } });
    randomizeLora(t, 9, 0.05);
    const tokens = sample(21, 24, 0, 0).tokens;
    const mine = await trainingLogits(t, tokens);
    const ref = await referenceLogits(t, tokens);
    const diff = relDiff(mine, ref);
    // The adapter must matter, or the comparison would not test it.
    for (const n of t.paramNames()) if (n.endsWith("lora_b")) t.setParam(n, new Float32Array(t.getParam(n).length));
    const without = relDiff(await trainingLogits(t, tokens), ref);
    console.log(
      `forward ${preset} ${type}: max ${diff.max.toExponential(2)}, rms ${diff.rms.toExponential(2)} (without the adapter: ${without.rms.toExponential(2)})`,
    );
    expect(diff.max).toBeLessThan(tolMax);
    expect(diff.rms).toBeLessThan(tolRms);
    expect(without.rms).toBeGreaterThan(10 * tolRms);
    t.dispose();
    model.dispose();
  });

  it("a Q4_0 model trains from its weights in place, loaded with repack: false or repacked, with the same logits and gradients", async () => {
    const repacked = await load("tiny-llama3", "Q4_0");
    const plain = await load("tiny-llama3", "Q4_0", { repack: false });
    const a = createTrainer(repacked, { lora: { rank: 4, seed: 3 } });
    const b = createTrainer(plain, { lora: { rank: 4, seed: 3 } });
    // llama.cpp repacks Q4_0 on x86 with AVX2 and on ARM. The forward multiplies with the repacked
    // weights (llama.cpp's repacked kernel), the backward reads their bytes as stored from
    // llama.cpp's mapping of the file (a copy only of any weight outside the mapped range). The
    // two kernels sum the same Q4_0·Q8_0 products in other orders: measured logits within 2e-7 of
    // the largest, gradients within 1e-5 of each tensor's largest.
    expect(b.info.weightCopyBytes).toBe(0);
    expect(b.info.mappedWeightBytes).toBe(0);
    if (a.info.mappedWeightBytes + a.info.weightCopyBytes > 0)
      expect(a.info.mappedWeightBytes).toBeGreaterThan(4 * a.info.weightCopyBytes);
    const tokens = sample(22, 20, 0, 0).tokens;
    const dl = maxRelDiff(await trainingLogits(a, tokens), await trainingLogits(b, tokens));
    expect(dl).toBeLessThan(1e-5);
    randomizeLora(a, 5, 0.05);
    randomizeLora(b, 5, 0.05);
    const samples = [sample(23, 6, 5, 4)];
    const la = (await a.gradients(samples)).loss,
      lb = (await b.gradients(samples)).loss;
    expect(Math.abs(la - lb)).toBeLessThan(1e-5 * lb);
    let worst = 0;
    for (const n of a.paramNames()) {
      const d = maxRelDiff(gradient(a, n), gradient(b, n));
      worst = Math.max(worst, d);
      expect(d, n).toBeLessThan(1e-3);
    }
    console.log(`repacked vs repack: false: logits ${dl.toExponential(2)}, gradients ${worst.toExponential(2)}`);
    a.dispose();
    b.dispose();
    repacked.dispose();
    plain.dispose();
  });
});

describe("gradients match finite differences on float bases", () => {
  // As in trainer.test.ts: central differences, h = 1e-2, float32 loss noise ~1e-6 (the loss is
  // ~15 here), tolerance 2e-4 + 2e-2·|fd|; the checked gradients are 1e-3 to 1e-1.
  const TOL_ABS = 3e-4,
    TOL_REL = 2e-2,
    H = 1e-2;
  const close = (a: number, b: number) => Math.abs(a - b) <= TOL_ABS + TOL_REL * Math.abs(b);

  async function check(
    t: Trainer,
    names: string[],
    samples: ReturnType<typeof sample>[],
    h = H,
    picks = 2,
  ): Promise<string[]> {
    await t.gradients(samples);
    const rand = rng(77);
    const failures: string[] = [];
    for (const name of names) {
      const grad = gradient(t, name);
      const value = t.getParam(name);
      expect(
        grad.some((g) => g !== 0),
        `${name} has a non-zero gradient`,
      ).toBe(true);
      for (let k = 0; k < picks; k++) {
        // the entry with the largest gradient, then random ones
        let i = 0;
        if (k === 0) for (let j = 1; j < grad.length; j++) i = Math.abs(grad[j]!) > Math.abs(grad[i]!) ? j : i;
        else i = Math.floor(rand() * value.length);
        const fd = await centralDifference(t, name, i, h, samples);
        if (!close(grad[i]!, fd)) failures.push(`${name}[${i}]: analytic ${grad[i]} vs fd ${fd}`);
      }
    }
    return failures;
  }

  const TARGETS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];

  it.each(["tiny-llama3", "tiny-qwen2", "tiny-qwen3"] as ArchPreset[])(
    "%s F32: A and B of every LoRA target",
    async (preset) => {
      const model = await load(preset, "F32");
      const t = createTrainer(model, { lora: { rank: 2, alpha: 8, seed: 1 } });
      randomizeLora(t, 2, 0.1);
      const names = TARGETS.flatMap((x) => [`blk.1.${x}.weight.lora_a`, `blk.1.${x}.weight.lora_b`]);
      expect(await check(t, names, [sample(1, 5, 6, 4), sample(2, 4, 0, 5)])).toEqual([]);
      t.dispose();
      model.dispose();
    },
  );

  it("full mode: Qwen2 biases and Qwen3 Q/K norms get the gradients finite differences give", async () => {
    for (const [preset, names] of [
      ["tiny-qwen2", ["blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.1.attn_v.bias"]],
      ["tiny-qwen3", ["blk.0.attn_q_norm.weight", "blk.1.attn_k_norm.weight"]],
    ] as [ArchPreset, string[]][]) {
      const model = await load(preset, "F32");
      const t = createTrainer(model, { mode: "full" });
      expect(await check(t, names, [sample(5, 4, 5, 4), sample(6, 3, 0, 5)], 1e-2, 2)).toEqual([]);
      t.dispose();
      model.dispose();
    }
  });
});

describe("LoRA training on quantized bases", () => {
  // Memorisation, then the saved adapter through llama.cpp's loader and msr-rec's scorer.
  it.each([
    ["tiny-llama3", "Q4_K"],
    ["tiny-qwen2", "Q4_0"],
    ["tiny-qwen3", "Q8_0"],
  ] as [ArchPreset, WeightType][])(
    "%s %s: a short run halves the loss; the adapter scores like the trainer",
    async (preset, type) => {
      const model = await load(preset, type);
      const t = createTrainer(model, { lora: { rank: 8, alpha: 32, seed: 1 }, optimizer: { lr: 3e-3 } });
      const set = [sample(70, 4, 3, 2), sample(71, 4, 3, 2)];
      const first = (await t.evaluate(set)).loss;
      for (let i = 0; i < 3; i++) await t.step(set);

      // The adapter after 3 steps through llama.cpp's loader and msr-rec's scorer: the loss it gives
      // equals the trainer's. The scorer runs fast numerics (K/V in F16, llama.cpp's repacked kernels,
      // which break invariance for Q4_K on some CPUs), so quantized activations can land on other
      // Q8_0 steps (see FORWARD_CASES): 1e-2 relative.
      const ev = await t.evaluate(set, { alpha: 0.7, beta: 0.3 });
      const path = join(dir, `${preset}-${type}.gguf`);
      await t.saveAdapter(path);
      const adapter = await model.loadLora(path);
      const scorer = new (native().Scorer)(model, { contextSize: 64, sequences: 2, batchSize: 64, numerics: "fast" });
      const reqs = set.map((s) => {
        const cut = s.segments.findIndex((g) => g !== Segment.prompt);
        return { prompt: s.tokens.slice(0, cut), continuation: s.tokens.slice(cut) };
      });
      const scored = await scorer.score(reqs, { lora: [{ adapter, scale: 1 }] });
      const terms = { rea: [] as number[], rec: [] as number[] };
      scored.forEach((r, i) => {
        const seg = set[i]!.segments.slice(reqs[i]!.prompt.length);
        for (const k of ["rea", "rec"] as const) {
          const code = k === "rea" ? Segment.reasoning : Segment.recommendation;
          const lps = Array.from(r.tokenLogprobs).filter((_, j) => seg[j] === code);
          if (lps.length) terms[k].push(-lps.reduce((a, b) => a + b, 0) / lps.length);
        }
      });
      const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
      const scoredLoss = 0.7 * mean(terms.rea) + 0.3 * mean(terms.rec);
      console.log(`adapter ${preset} ${type}: trainer loss ${ev.loss.toFixed(5)}, scorer ${scoredLoss.toFixed(5)}`);
      expect(Math.abs(scoredLoss - ev.loss)).toBeLessThan(1e-2 * ev.loss);
      scorer.dispose();
      adapter.dispose();

      for (let i = 3; i < 15; i++) await t.step(set);
      const last = (await t.evaluate(set)).loss;
      console.log(`memorise ${preset} ${type}: loss ${first.toFixed(3)} -> ${last.toFixed(3)} in 15 steps`);
      expect(last).toBeLessThan(first / 2);
      t.dispose();
      model.dispose();
    },
  );
});

describe("backward reading the weights as stored", () => {
  // On the CPU every out_prod of the backward (dx = Wᵀ dy of each frozen projection and of the
  // output matrix, the LoRA gradients) runs as out_prod_cpu, reading W as stored. Against ggml's
  // own products on F32 transposes of the same weights, the GPU's backward run on the CPU (the
  // development setting transposedBackward), both with the transposes cached (they fit the default
  // budget for these small models) and made in the graph slice by slice (transposeBudgetMb 0): the
  // same sums in other orders, equal to float rounding (measured, relative to the largest gradient
  // of each tensor: as stored at most 2.2e-5, sliced at most 4e-6; the kernel itself is checked
  // against float64 sums in train-out-prod.test.ts). Each trainer's pass profile shows which path ran.
  it.each([
    ["tiny-qwen3", "F32"],
    ["tiny-llama3", "BF16"],
    ["tiny-llama3", "F16"],
    ["tiny-llama3", "Q4_0"],
    ["tiny-llama3", "Q8_0"],
    ["tiny-qwen2", "Q4_K"],
  ] as [ArchPreset, WeightType][])("%s %s", async (preset, type) => {
    const model = await load(preset, type);
    const samples = [sample(1, 5, 6, 4), sample(2, 4, 0, 5)];
    const options = { lora: { rank: 2, alpha: 8, seed: 1 }, profile: true };
    const stored = createTrainer(model, options);
    const cached = await openDevTrainer(model, options, { transposedBackward: true });
    // No cached transposes, and slices of 64 KB (64 rows at width 256), so weights and the LM head
    // are transposed in several slices each.
    const inGraph = await openDevTrainer(
      model,
      { ...options, transposeBudgetMb: 0 },
      { transposedBackward: true, sliceMb: 0.0625 },
    );
    expect(stored.info.transposeBytes).toBe(0);
    expect(cached.info.transposeBytes).toBeGreaterThan(0);
    expect(inGraph.info.transposeBytes).toBe(0);
    for (const t of [stored, cached, inGraph]) randomizeLora(t, 2, 0.1);
    const ref = await cached.gradients(samples);
    const [cachedPass] = ref.profile!.passes;
    expect(cachedPass!.outProds.transposedWeights).toBeGreaterThan(0);
    expect(cachedPass!.outProds).toMatchObject({ asStored: 0, transposedInGraph: 0 });
    for (const t of [stored, inGraph]) {
      const g = await t.gradients(samples);
      const [pass] = g.profile!.passes;
      if (t === stored) expect(pass!.outProds).toMatchObject({ asStored: pass!.outProds.total, transposedWeights: 0 });
      else expect(pass!.outProds.transposedInGraph).toBe(pass!.outProds.transposedWeights);
      if (t === inGraph) expect(pass!.outProds.transposedInGraph).toBeGreaterThan(0);
      expect(Math.abs(g.loss - ref.loss)).toBeLessThan(1e-6 * ref.loss);
      let worst = 0;
      for (const n of cached.paramNames()) {
        const d = maxRelDiff(gradient(t, n), gradient(cached, n));
        worst = Math.max(worst, d);
        expect(d, n).toBeLessThan(1e-4);
      }
      console.log(
        `${preset} ${type} ${t === stored ? "as stored" : "sliced in the graph"} vs cached transposes: max ${worst.toExponential(2)}`,
      );
    }
    for (const t of [stored, cached, inGraph]) t.dispose();
    model.dispose();
  });
});

describe("refusals", () => {
  it("full mode on a quantized model needs dequantize: true, then trains F32 copies", async () => {
    const model = await load("tiny-qwen3", "Q4_0");
    expect(() => createTrainer(model, { mode: "full" })).toThrow(/full mode on a quantized model .*dequantize: true/);
    const t = createTrainer(model, { mode: "full", dequantize: true, optimizer: { lr: 1e-3 } });
    const data = [sample(3, 4, 4, 3)];
    const first = (await t.step(data)).loss;
    for (let i = 0; i < 3; i++) await t.step(data);
    expect((await t.evaluate(data)).loss).toBeLessThan(first);
    t.dispose();
    model.dispose();
  });

  it("fused QKV and unsupported architectures are refused with the supported families named, before anything is allocated", async () => {
    for (const kind of ["fused", "gemma"] as const) {
      const model = await native().loadModel(refusedModelPath(kind), { threads: 2 });
      for (const mode of ["lora", "full"] as const) {
        expect(() => createTrainer(model, { mode }), `${kind} ${mode}`).toThrow(
          kind === "fused" ? /fused QKV/ : /architecture is 'gemma'/,
        );
        expect(() => createTrainer(model, { mode })).toThrow(/Qwen2\/Qwen2\.5 \('qwen2'\) and dense Qwen3/);
      }
      model.dispose();
    }
  });

  it("info --model says whether and how a model can be trained", async () => {
    expect(await describeTrainability(await archModelPath("tiny-llama3", "Q4_K"))).toMatch(
      /trainable \(lora\)\s+yes\ntrainable \(full\)\s+only as F32 copies/,
    );
    expect(await describeTrainability(await archModelPath("tiny-qwen2", "F32"))).toMatch(
      /trainable \(lora\)\s+yes\ntrainable \(full\)\s+yes/,
    );
    expect(await describeTrainability(refusedModelPath("fused"))).toMatch(
      /trainable \(lora\)\s+no: training: fused QKV/,
    );
    expect(await describeTrainability(refusedModelPath("gemma"))).toMatch(/trainable \(full\)\s+no: .*'gemma'/);
  });
});
