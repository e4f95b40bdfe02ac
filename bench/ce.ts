// Fused cross-entropy throughput: the fused CPU kernel (loss + log-probs + gradient in place of
// nothing extra) vs its naive two-pass reference vs ggml's dense ggml_cross_entropy_loss (one-hot
// label matrix, forward + backward) on the same logits, for vocab 32k and 128k and 512–4096 rows.
// Also a plain memory copy of the logits in the same process: the kernel reads every logit twice
// and writes the gradient once, so "GB/s of logits" (logit bytes / time) is compared with copy
// bandwidth (bytes copied / time). Goal: fused ≥ 0.5× copy. Extra memory is what each method
// allocates beyond the logits and the gradient output.
import { devAddon } from "../src/engine/bindings.js";
import { medianMs, newResult, timeRuns, type BenchResult, type FlagValues, type SuiteFlags } from "./lib.js";

export const description = "fused cross-entropy vs its naive reference, ggml's dense CE and a memory copy";
export const flags = {
  threads: { kind: "number", default: 2, help: "threads of the fused kernel and of ggml's dense CE" },
} as const satisfies SuiteFlags;

function randomLogits(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296 - 0.5) * 16;
  }
  return a;
}

export async function run(args: FlagValues<typeof flags>): Promise<BenchResult> {
  const THREADS = args.threads;
  const res = newResult("ce");
  const addon = devAddon();
  const cases: [number, number][] = [
    [512, 32000],
    [2048, 32000],
    [4096, 32000],
    [512, 128256],
    [1024, 128256],
  ];
  for (const [rows, vocab] of cases) {
    const tag = `${rows}x${vocab >= 100000 ? "128k" : "32k"}`;
    const logits = randomLogits(rows * vocab, rows + vocab);
    const targets = Int32Array.from({ length: rows }, (_, i) => (i * 7919) % vocab);
    const weights = new Float32Array(rows).fill(1 / rows);
    const bytes = rows * vocab * 4;
    // Both write into one preallocated buffer, so neither pays page faults inside the timing.
    const out = new Float32Array(rows * vocab).fill(1);
    const copy = await timeRuns(() => out.set(logits), 5, 1);
    const fused = await timeRuns(
      () => addon.fusedCrossEntropy(logits, rows, vocab, targets, weights, { threads: THREADS, gradOut: out }),
      5,
      1,
    );
    const [copyMs, fusedMs] = [copy.medianMs, fused.medianMs];
    res.results.push({ name: `copy ${tag}`, value: bytes / copyMs / 1e6, unit: "GB/s" });
    res.results.push({ name: `fused ${tag}`, value: fusedMs, unit: "ms" });
    res.results.push({ name: `fused ${tag} margin of error (95% CI of the mean)`, value: fused.rmePercent, unit: "%" });
    res.results.push({ name: `fused ${tag} logits`, value: bytes / fusedMs / 1e6, unit: "GB/s" });
    res.results.push({ name: `fused ${tag} extra memory`, value: (rows * 8) / 2 ** 20, unit: "MiB" });
    res.ratios[`fused/copy bandwidth ${tag}`] = copyMs / fusedMs;
    if (rows <= 2048) {
      const refMs = await medianMs(
        () => addon.fusedCrossEntropy(logits, rows, vocab, targets, weights, { reference: true, gradOut: out }),
        1,
        0,
      );
      res.results.push({ name: `naive reference ${tag}`, value: refMs, unit: "ms" });
      res.results.push({
        name: `naive reference ${tag} extra memory`,
        value: (vocab * 8 + rows * 4) / 2 ** 20,
        unit: "MiB",
      });
      res.ratios[`fused speed-up vs naive ${tag}`] = refMs / fusedMs;
    }
    if (rows * vocab <= 2048 * 32000) {
      const dense = addon.denseCrossEntropyGgml(logits, rows, vocab, targets, {
        threads: THREADS,
        backward: true,
        runs: 3,
      });
      res.results.push({ name: `ggml dense CE fwd+bwd ${tag}`, value: dense.ms, unit: "ms" });
      res.results.push({ name: `ggml dense CE ${tag} extra memory`, value: dense.extraBytes / 2 ** 20, unit: "MiB" });
      res.ratios[`fused speed-up vs ggml dense ${tag}`] = dense.ms / fusedMs;
    }
  }
  return res;
}
