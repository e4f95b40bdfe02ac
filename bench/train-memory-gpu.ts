// The GPU half of the train-memory suite (a machine with an NVIDIA GPU and the CUDA addon): LoRA
// training of a Llama-3-8B-shaped model with every layer on the GPU, 4 samples of --tokens tokens:
// the peak of the device's used memory over the run (nvidia-smi, every 50 ms) against 24 GiB
// (goal: Q4_0 fits), and training tokens/s beside GPU scoring tokens/s of the same tokens. A suite
// of its own so that a GPU run never overwrites the CPU measurements in
// bench/results/train-memory.json; it measures through the same child process as train-memory.
import { statSync } from "node:fs";
import { native } from "../src/engine/bindings.js";
import { newResult, oneOfEach, type BenchResult, type FlagValues, type SuiteFlags } from "./lib.js";
import { presetNamed, quantizedModelPath } from "./support/models.js";
import { nvidiaGpuVisible } from "./support/nvidia-smi.js";
import { measure } from "./train-memory.js";

export const description =
  "(GPU) LoRA training of a Llama-3-8B-shaped model: peak device memory vs 24 GiB, training vs scoring";
export const flags = {
  preset: { kind: "string", default: "llama3-8b", help: "init-model preset of the measured model" },
  types: {
    kind: "list",
    default: ["Q4_0", "F16"],
    help: "weight types to measure, each in its own process (F16, Q8_0, Q4_0)",
  },
  tokens: { kind: "number", default: 256, help: "tokens of each of the 4 training samples" },
  threads: { kind: "number", default: 2, help: "CPU threads of the model and the quantizer" },
} as const satisfies SuiteFlags;

const BUDGET_MIB = 24 * 1024;

export async function run(args: FlagValues<typeof flags>): Promise<BenchResult> {
  const res = newResult("train-memory-gpu");
  // A CUDA addon and a GPU that nvidia-smi sees, or nothing to measure.
  if (!/CUDA/.test(native().systemInfo()) || !nvidiaGpuVisible()) {
    res.results.push({ name: "GPU section skipped: no CUDA addon or no NVIDIA GPU", value: 0, unit: "n/a" });
    return res;
  }
  const preset = presetNamed(args.preset);
  const len = args.tokens;
  for (const type of oneOfEach("types", args.types, ["F16", "Q8_0", "Q4_0"] as const)) {
    const path = await quantizedModelPath(preset, type, args.threads);
    const m = measure(path, false, 4, len, 3, args.threads, 999);
    const tag = `${preset} ${type} on the GPU`;
    if (!res.machine.startsWith(m.deviceName)) res.machine = `${m.deviceName}; ${res.machine}`;
    res.results.push(
      { name: `${tag}: model file`, value: statSync(path).size / 2 ** 20, unit: "MiB" },
      { name: `${tag}: trainer device`, value: m.device === "gpu" ? 1 : 0, unit: m.device },
      { name: `${tag}: compute buffer (activations)`, value: m.computeBytes / 2 ** 20, unit: "MiB" },
      { name: `${tag}: LoRA training (4 x ${len} tokens)`, value: m.tokens / (m.trainMs / 1000), unit: "tokens/s" },
      { name: `${tag}: scoring (same tokens)`, value: m.tokens / (m.scoreMs / 1000), unit: "tokens/s" },
    );
    res.ratios[`${tag}: training/scoring throughput`] = m.scoreMs / m.trainMs;
    if (m.gpuPeakMiB !== null && m.gpuBeforeMiB !== null) {
      const used = m.gpuPeakMiB - m.gpuBeforeMiB;
      res.results.push({
        name: `${tag}: peak GPU memory of the process (device peak minus use before the load)`,
        value: used,
        unit: "MiB",
      });
      res.ratios[`${tag}: peak GPU memory / 24 GiB`] = used / BUDGET_MIB;
    } else {
      res.results.push({ name: `${tag}: nvidia-smi gave no memory samples`, value: 0, unit: "n/a" });
    }
  }
  return res;
}
