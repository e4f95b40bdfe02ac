#!/usr/bin/env node
// Scores the same requests with every layer on the GPU and with none (same CUDA addon), prints the
// largest log-prob difference and both throughputs. Needs the TypeScript built (dist/).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../dist/src/engine/index.js";
import { initModel } from "../dist/src/gguf/init-model.js";

const dir = mkdtempSync(join(tmpdir(), "msr-rec-cuda-"));
const path = join(dir, "small.gguf");
initModel({ preset: "small", vocab: "llama-spm", seed: 1, out: path });
const reqs = [];
for (let u = 0; u < 32; u++) {
  const prompt = `User ${u} bought a phone, a charger and headphones. Candidates: case, mat, shoes. Recommend:`;
  for (const c of [" the phone case", " the yoga mat", " the running shoes"]) reqs.push({ prompt, continuation: c });
}
async function run(gpuLayers) {
  const model = await loadModel(path, { gpuLayers });
  const scorer = model.createScorer({ contextSize: 4096, sequences: 64, batchSize: 2048 });
  await scorer.score(reqs);
  const t0 = performance.now();
  const res = await scorer.score(reqs);
  const ms = performance.now() - t0;
  const tokens = reqs.reduce(
    (n, r) => n + model.tokenize(r.prompt).length + model.tokenize(r.continuation, { addBos: false }).length,
    0,
  );
  model.dispose();
  return { res, tokensPerSecond: tokens / (ms / 1000) };
}
const cpu = await run(0);
const gpu = await run(999);
let maxDiff = 0;
cpu.res.forEach((r, i) =>
  r.tokenLogprobs.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - gpu.res[i].tokenLogprobs[j])))),
);
console.log(
  JSON.stringify({
    maxAbsLogprobDiff: maxDiff,
    cpuTokensPerSecond: cpu.tokensPerSecond,
    gpuTokensPerSecond: gpu.tokensPerSecond,
  }),
);
if (!(maxDiff < 1e-2)) process.exitCode = 1;
