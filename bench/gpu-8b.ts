// A Llama-3-8B-shaped model (random weights, init-model's llama3-8b preset) on one GPU, F16 and
// Q4_0, against llama.cpp's own benchmark tools built from the same source (bench/support/
// roofline.ts says what is measured): scorer vs `llama-bench -p 512` (goal >= 0.9x), generation
// at 64 parallel vs `llama-batched-bench` S_TG, and the whole MSR-Rec inference of 1,500
// synthetic users (goal under 5 min, its scoring-and-fusion part under 1 min).
// `npm run bench -- gpu-8b --help` lists the flags that shrink it (preset, types, users, tokens) or
// point it at llama.cpp tools already built.
import type { BenchResult } from "./lib.js";
import { rooflineFlags, runRoofline, type RooflineArgs } from "./support/roofline.js";

export const description =
  "(GPU) Llama-3-8B-shaped model: scorer vs llama-bench, generation vs llama-batched-bench, 1,500 users' inference";
export const flags = rooflineFlags({ preset: "llama3-8b", types: ["F16", "Q4_0"], users: 1500, tokens: 256 });

export function run(args: RooflineArgs): Promise<BenchResult> {
  return runRoofline("gpu-8b", args, {
    scorer: 0.9,
    generation: 1.0,
    scaleTo: { users: 1500, wholeS: 300, scoreFuseS: 60 },
  });
}
