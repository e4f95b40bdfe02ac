// The engine against llama.cpp's own tools on the same machine and model files, at real shapes
// that fit a CPU: a Llama-3.2-1B-shaped model (random weights, init-model's llama3-1b preset) in
// F16, Q8_0 and Q4_0. Goals: the scorer at >= 0.95x `llama-bench -p 512` for 512-token requests;
// generation at 64 parallel, with and without a grammar, at >= 1.0x `llama-batched-bench` S_TG;
// and the whole bidirectional inference of a few users against its generation part. The same code
// runs on a GPU (all layers offloaded when the addon is built with CUDA); `gpu-8b` is the 8B
// table. See bench/support/roofline.ts for what each number is.
import type { BenchResult } from "./lib.js";
import { rooflineFlags, runRoofline, type RooflineArgs } from "./support/roofline.js";

export const description =
  "llama3-1b F16/Q8_0/Q4_0: scorer vs llama-bench pp512, generation vs llama-batched-bench, inference vs its generation";
export const flags = rooflineFlags({ preset: "llama3-1b", types: ["F16", "Q8_0", "Q4_0"], users: 16, tokens: 32 });

export function run(args: RooflineArgs): Promise<BenchResult> {
  return runRoofline("roofline", args, { scorer: 0.95, generation: 1.0 });
}
