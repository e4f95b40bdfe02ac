// Adapters trained on the converter-layout fixtures (Qwen2 with Q/K/V biases, Qwen3 with Q/K
// norms and heads x head size != width, on float and quantized bases), loaded by node-llama-cpp
// (its own prebuilt llama.cpp): its next-token probabilities equal the trainer graph's
// softmax(logits). The fixtures' output norm (8) lets 15 steps make the distribution peaked, so the
// comparison is not vacuous.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { native } from "../src/engine/bindings.js";
import type { WeightType } from "../src/gguf/init-model.js";
import { archModelPath, type ArchPreset } from "./support/arch-models.js";
import { randomSample } from "./support/random.js";
import { compareTrainedAdapter } from "./support/adapter-vs-node-llama-cpp.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "msr-trainer-arch-nlc-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it.each([
  ["tiny-qwen2", "F32"],
  ["tiny-qwen3", "Q8_0"],
  ["tiny-llama3", "Q4_K"],
] as [ArchPreset, WeightType][])(
  "%s %s: node-llama-cpp with the saved adapter gives the trainer's next-token probabilities",
  async (preset, type) => {
    const path = await archModelPath(preset, type);
    const model = await native().loadModel(path, { threads: 2, repack: false });
    const { ours, top } = await compareTrainedAdapter(
      model,
      path,
      randomSample(31, 5, 3, 3, 100000),
      join(dir, `${preset}-${type}.gguf`),
    );
    // Relative to 1 + |log p|: the distribution is peaked, so the top-50 reach log p of -20 and
    // beyond, where node-llama-cpp's F16 K/V cache alone moves log-probs by a few 1e-3.
    let worst = 0;
    for (const [tok, p] of top)
      worst = Math.max(worst, Math.abs(ours(tok) - Math.log(p)) / (1 + Math.abs(Math.log(p))));
    console.log(`${preset} ${type}: top-50 log-prob difference / (1 + |log p|) ${worst.toExponential(2)}`);
    // Quantized: the Q8_0 activation steps of trainer-arch.test.ts's FORWARD_CASES, on another build.
    expect(worst).toBeLessThan(type === "F32" ? 2e-3 : 1e-2);
    model.dispose();
  },
);
