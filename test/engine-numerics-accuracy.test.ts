// Accuracy of the scorer's numerics against a float64 forward pass of the same stored weights
// (support/f64-forward.ts): invariant numerics (F32 KV cache, reference attention) within 1e-4 in
// token log-prob on F32 weights and 1e-2 on F16 weights (llama.cpp rounds activations to F16 before
// F16 products). Both modes' errors are printed, as the numbers the docs quote.
import { describe, expect, it } from "vitest";
import { loadModel, type Numerics } from "../src/index.js";
import { archModelPath, type ArchPreset } from "./support/arch-models.js";
import { loadF64Model } from "./support/f64-forward.js";

/** Probes of 10..200 prompt tokens and 8..56 continuation tokens (short and >= 64-token inputs). */
const shapes: [number, number][] = [
  [10, 8],
  [25, 20],
  [40, 15],
  [70, 30],
  [120, 40],
  [200, 56],
];

function tokens(n: number, seed: number, vocab: number): Int32Array {
  let x = seed * 2654435761 + 12345;
  return Int32Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return 1 + (x % (vocab - 1));
  });
}

async function maxErrors(preset: ArchPreset, weightType: "F32" | "F16"): Promise<Record<Numerics, number>> {
  const path = await archModelPath(preset, weightType);
  const ref = loadF64Model(path);
  const probes = shapes.map(([p, c], i) => ({
    prompt: tokens(p, 11 + i, ref.vocab),
    continuation: tokens(c, 77 + i, ref.vocab),
  }));
  const want = probes.map(({ prompt, continuation }) =>
    ref.logprobs(
      [...prompt, ...continuation].slice(0, -1),
      Array.from(continuation, (t, j): [number, number] => [prompt.length - 1 + j, t]),
    ),
  );
  const model = await loadModel(path, { threads: 2 });
  const out = {} as Record<Numerics, number>;
  try {
    for (const numerics of ["invariant", "fast"] as const) {
      const scorer = model.createScorer({ contextSize: 2048, numerics });
      // Fast numerics depend on the batch: each probe alone, as a single request is usually scored.
      const got = [];
      for (const p of probes) got.push((await scorer.score([p]))[0]!);
      scorer.dispose();
      let max = 0;
      got.forEach((r, i) => r.tokenLogprobs.forEach((v, j) => (max = Math.max(max, Math.abs(v - want[i]![j]!)))));
      out[numerics] = max;
    }
  } finally {
    model.dispose();
  }
  console.log(
    `${preset} ${weightType}: max |d token log-prob| vs float64: invariant ${out.invariant.toExponential(2)}, fast ${out.fast.toExponential(2)}`,
  );
  return out;
}

describe("scorer numerics against a float64 reference", () => {
  it("invariant is within 1e-4 on F32 weights (Qwen3 layout)", async () => {
    const err = await maxErrors("tiny-qwen3", "F32");
    expect(err.invariant).toBeLessThan(1e-4);
  }, 300_000);

  it("invariant is within 1e-2 on F16 weights (Llama-3 layout)", async () => {
    const err = await maxErrors("tiny-llama3", "F16");
    expect(err.invariant).toBeLessThan(1e-2);
  }, 300_000);
});
