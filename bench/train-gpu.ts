// LoRA training on the GPU (needs the CUDA addon, `npm run build:cuda`, and an NVIDIA GPU):
// tokens/s of trainer.step with every layer on the GPU vs the same trainer on all CPU cores, and
// vs forward-only scoring on the GPU over the same tokens (goal ≥ 0.25×, as on the CPU). Small
// preset and a 160M-parameter "medium" model. Only engine modules are imported, so it runs with
// nothing but the built addon and dist/.
import { availableParallelism } from "node:os";
import { loadModel, type ScoreRequest } from "../src/engine/index.js";
import { createTrainer } from "../src/engine/trainer.js";
import { medianMs, newResult, type BenchResult, type SuiteFlags } from "./lib.js";
import { benchModelPath } from "./support/models.js";
import { randomTrainSamples } from "./support/samples.js";

export const description = "(CUDA build + GPU) LoRA training on the GPU vs all CPU cores, and vs GPU scoring";
export const flags = {} as const satisfies SuiteFlags;

export async function run(): Promise<BenchResult> {
  const res = newResult("train-gpu");
  for (const preset of ["small", "medium"] as const) {
    const path = benchModelPath(preset);
    const gpuModel = await loadModel(path, { gpuLayers: 999 });
    const data = randomTrainSamples(16, 256, gpuModel.info.vocabSize);
    const tokens = data.reduce((a, s) => a + s.tokens.length, 0);
    const options = { lora: { rank: 8, alpha: 32 }, microBatchTokens: 2048, optimizer: { lr: 1e-4 } } as const;
    const gpu = createTrainer(gpuModel.handle(), { ...options, device: "gpu" });
    if (!res.machine.startsWith(gpu.info.deviceName)) res.machine = `${gpu.info.deviceName}; ${res.machine}`;
    const gpuMs = await medianMs(() => gpu.step(data), 5, 2);
    const scorer = gpuModel.createScorer({ contextSize: 4096, sequences: 16 });
    const reqs: ScoreRequest[] = data.map((d) => ({
      prompt: d.tokens.slice(0, 128),
      continuation: d.tokens.slice(128),
    }));
    const scoreMs = await medianMs(() => scorer.score(reqs), 5, 2);
    scorer.dispose();
    gpu.dispose();
    gpuModel.dispose();

    const cpuModel = await loadModel(path, { gpuLayers: 0, threads: availableParallelism() });
    const cpu = createTrainer(cpuModel.handle(), { ...options, device: "cpu" });
    const cpuMs = await medianMs(() => cpu.step(data), 2, 1);
    cpu.dispose();
    cpuModel.dispose();

    res.results.push({ name: `${preset} LoRA training, GPU`, value: tokens / (gpuMs / 1000), unit: "tokens/s" });
    res.results.push({
      name: `${preset} LoRA training, CPU (${availableParallelism()} threads)`,
      value: tokens / (cpuMs / 1000),
      unit: "tokens/s",
    });
    res.results.push({
      name: `${preset} scoring (forward only), GPU`,
      value: tokens / (scoreMs / 1000),
      unit: "tokens/s",
    });
    res.ratios[`${preset} GPU/CPU training throughput`] = cpuMs / gpuMs;
    res.ratios[`${preset} GPU training/scoring throughput`] = scoreMs / gpuMs;
  }
  return res;
}
