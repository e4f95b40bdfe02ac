// The CUDA fused CE kernel (native/kernels/fused_ce.cu) against the naive CPU reference, through
// the C++ driver native/tests/fused_ce_cuda_test.cu (random, weighted, in-place, ±1e4 and
// all-equal rows; vocab 32k and 128k), and its policy-gradient form against the naive policy
// reference (both advantage signs, KL, clipping on both sides, a temperature, in place). Runs only
// where nvcc and a GPU exist; skipped otherwise with the reason printed.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../src/util/paths.js";

const hasGpu = spawnSync("nvidia-smi", ["-L"], { encoding: "utf8" }).status === 0;
const hasNvcc = spawnSync(process.env.CUDACXX ?? "nvcc", ["--version"], { encoding: "utf8" }).status === 0;
if (!hasGpu || !hasNvcc)
  console.log(`fused-ce-cuda: skipped (${!hasNvcc ? "nvcc not found" : "no NVIDIA GPU visible to nvidia-smi"})`);

describe.skipIf(!hasGpu || !hasNvcc)("CUDA fused cross-entropy", () => {
  it("matches the naive reference on every case", () => {
    const out = join(packageRoot, ".cache", "cuda-test");
    mkdirSync(out, { recursive: true });
    const exe = join(out, "fused_ce_cuda_test");
    const k = join(packageRoot, "native", "kernels");
    const build = spawnSync(
      process.env.CUDACXX ?? "nvcc",
      [
        "-O2",
        "-std=c++17",
        "-DMSR_REC_CUDA=1",
        `-I${k}`,
        join(packageRoot, "native", "tests", "fused_ce_cuda_test.cu"),
        join(k, "fused_ce.cu"),
        join(k, "fused_ce_cpu.cpp"),
        "-o",
        exe,
      ],
      { encoding: "utf8" },
    );
    expect(build.status, build.stderr).toBe(0);
    const run = spawnSync(exe, { encoding: "utf8" });
    console.log(run.stdout);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain("all ok");
  }, 300_000);
});
