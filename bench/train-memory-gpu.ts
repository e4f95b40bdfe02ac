// The GPU half of the train-memory suite (see train-memory.ts): LoRA training of a
// Llama-3-8B-shaped model (Q4_0 and F16) with every layer on the GPU, its peak device memory
// against 24 GiB and its tokens/s beside GPU scoring. A suite of its own so that a GPU run never
// overwrites the CPU measurements in bench/results/train-memory.json.
import { newResult, type BenchResult } from "./lib.js";
import { gpuSection } from "./train-memory.js";

export async function run(): Promise<BenchResult> {
  const res = newResult("train-memory-gpu");
  await gpuSection(res);
  return res;
}
