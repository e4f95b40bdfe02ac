#!/usr/bin/env node
// Training on the GPU against training on the CPU, from the same start, for the tiny and small
// presets in LoRA and full mode: the training graph's logits, one batch's loss and every
// parameter's gradient, and the losses of five AdamW steps; in LoRA mode also a policy-gradient
// batch's log-probs, entropy and gradients (the CUDA policy kernel against the CPU one). Prints
// one JSON line per case and exits 1 when a difference exceeds its limit, relative to the largest
// value compared. ggml's CUDA matrix products run in TF32 (10-bit mantissa, unit roundoff 2^-11 ≈
// 4.9e-4), so single logits and gradient entries may differ by a few 1e-4 of the largest one:
// limit 5e-3. Losses and the mean entropy are means over hundreds of tokens, where those errors
// average out: limit 1e-3.
// Needs the CUDA addon (build-cuda/ or MSR_REC_ADDON) and the TypeScript built (dist/).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, createTrainer } from "../dist/src/engine/index.js";
import { devAddon } from "../dist/src/engine/bindings.js";
import { initModel } from "../dist/src/gguf/init-model.js";

const dir = mkdtempSync(join(tmpdir(), "msr-rec-train-gpu-"));
let seed = 99;
const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;

function samples(n, len, vocab) {
  return Array.from({ length: n }, (_, i) => {
    const L = len - 5 * i;
    return {
      tokens: Int32Array.from({ length: L }, (_, j) => (j === 0 ? 1 : 3 + Math.floor(rand() * (vocab - 3)))),
      segments: Uint8Array.from({ length: L }, (_, j) => (j < L / 2 ? 0 : j < (3 * L) / 4 ? 1 : 2)),
    };
  });
}

/** max |a − b| over max |b|: float rounding in another summation order stays far below 1e-3. */
function relDiff(a, b) {
  let d = 0,
    s = 0;
  for (let i = 0; i < b.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return s > 0 ? d / s : d;
}

let failed = false;
const LIMITS = {
  logits: 5e-3,
  grad: 5e-3,
  loss: 1e-3,
  steps: 1e-3,
  policyLogprobs: 5e-3,
  policyEntropy: 1e-3,
  policyGrad: 5e-3,
};
function report(c) {
  const ok = Object.entries(c.diff).every(([k, v]) => v <= LIMITS[k]);
  failed ||= !ok;
  console.log(JSON.stringify({ ...c, limits: LIMITS, ok }));
}

// The last case stores the weights as F16, as published models do.
// Arguments pick cases by name (e.g. `small-F16`); none runs them all.
const cases = [
  ["tiny", "F32"],
  ["small", "F32"],
  ["small", "F16"],
].filter(([p, w]) => process.argv.length <= 2 || process.argv.includes(`${p}-${w}`));
for (const [preset, weightType] of cases) {
  const path = join(dir, `${preset}-${weightType}.gguf`);
  initModel({ preset, vocab: "llama-spm", seed: 5, out: path, weightType });
  const cpuModel = await loadModel(path, { gpuLayers: 0 });
  const gpuModel = await loadModel(path, { gpuLayers: 999 });
  const vocab = cpuModel.info.vocabSize;
  const data = samples(6, 96, vocab);
  for (const mode of weightType === "F32" ? ["lora", "full"] : ["lora"]) {
    const make = (model, device, gradAccum) =>
      createTrainer(model.handle(), {
        mode,
        device,
        gradAccum,
        lora: { rank: 4, alpha: 8, seed: 7 },
        microBatchTokens: 256,
        optimizer: { lr: mode === "lora" ? 1e-2 : 1e-3 },
      });
    const pair = (gradAccum) => {
      const c = make(cpuModel, "cpu", gradAccum),
        g = make(gpuModel, "gpu", gradAccum);
      if (mode === "lora") {
        // Random B as well as A, so the adapter changes the outputs and every gradient carries signal.
        for (const name of c.paramNames()) {
          const v = Float32Array.from(c.getParam(name), () => (rand() * 2 - 1) * 0.1);
          c.setParam(name, v);
          g.setParam(name, v);
        }
      }
      return [c, g];
    };
    // Logits and one batch's gradients (gradAccum 2: the first step only accumulates).
    const [c, g] = pair(2);
    if (g.info.device !== "gpu") throw new Error(`the GPU trainer runs on ${g.info.device}: is this the CUDA addon?`);
    const device = g.info.deviceName;
    const dev = devAddon();
    const logits = (t) => dev.trainerLogits(t.handle(), data[0].tokens);
    const diff = { logits: relDiff(await logits(g), await logits(c)) };
    const sc = await c.step(data),
      sg = await g.step(data);
    diff.loss = Math.abs(sg.loss - sc.loss) / Math.abs(sc.loss);
    diff.grad = 0;
    for (const name of c.paramNames())
      diff.grad = Math.max(diff.grad, relDiff(dev.trainerGrad(g.handle(), name), dev.trainerGrad(c.handle(), name)));
    c.dispose();
    g.dispose();
    if (mode === "lora") {
      // A policy-gradient batch (advantages of both signs, a KL penalty, old log-probs that clip
      // some tokens on each side, temperature 0.7): log-probs, entropy and every gradient.
      const [pc, pg] = pair(1);
      const now = await pc.evaluatePolicy(data, { temperature: 0.7 });
      const policyData = data.map((d, i) => ({
        ...d,
        advantage: Float32Array.from(now.logprobs[i], (_, k) => (k % 2 ? 1.2 : -0.8)),
        refLogprobs: Float32Array.from(now.logprobs[i], (lp) => lp + (rand() - 0.5)),
        oldLogprobs: Float32Array.from(now.logprobs[i], (lp, k) => lp + [0.5, -0.5, 0.02][k % 3]),
      }));
      const popts = { beta: 0.1, epsilon: 0.2, epsilonHigh: 0.28, temperature: 0.7 };
      const rc = await pc.policyGradients(policyData, popts),
        rg = await pg.policyGradients(policyData, popts);
      diff.policyLogprobs = relDiff(
        rg.logprobs.flatMap((x) => Array.from(x)),
        rc.logprobs.flatMap((x) => Array.from(x)),
      );
      diff.policyEntropy = Math.abs(rg.entropy - rc.entropy) / Math.abs(rc.entropy);
      diff.policyGrad = 0;
      for (const name of pc.paramNames())
        diff.policyGrad = Math.max(
          diff.policyGrad,
          relDiff(dev.trainerGrad(pg.handle(), name), dev.trainerGrad(pc.handle(), name)),
        );
      pc.dispose();
      pg.dispose();
    }
    // Five updates from the same start.
    const [c5, g5] = pair(1);
    const lossesCpu = [],
      lossesGpu = [];
    for (let s = 0; s < 5; s++) {
      lossesCpu.push((await c5.step(data)).loss);
      lossesGpu.push((await g5.step(data)).loss);
    }
    diff.steps = Math.max(...lossesCpu.map((l, i) => Math.abs(lossesGpu[i] - l) / Math.abs(l)));
    c5.dispose();
    g5.dispose();
    report({ preset, weightType, mode, device, lossesCpu, lossesGpu, diff });
  }
  cpuModel.dispose();
  gpuModel.dispose();
}
rmSync(dir, { recursive: true, force: true });
console.log(failed ? "MISMATCH" : "all ok");
process.exitCode = failed ? 1 : 0;
