// Adapters trained on the converter-layout fixtures (Qwen2 with Q/K/V biases, Qwen3 with Q/K
// norms and heads x head size != width, on float and quantized bases), loaded by node-llama-cpp
// (its own prebuilt llama.cpp): its next-token probabilities equal the trainer graph's
// softmax(logits). The fixtures' output norm (8) lets 15 steps make the distribution peaked, so the
// comparison is not vacuous.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, expect, it } from "vitest";
import { native } from "../src/engine/bindings.js";
import { createTrainer } from "../src/engine/trainer.js";
import type { WeightType } from "../src/gguf/init-model.js";
import { archModelPath, type ArchPreset } from "./support/arch-models.js";
import { randomSample } from "./support/random.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "msr-trainer-arch-nlc-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it.each([
  ["tiny-qwen2", "F32"],
  ["tiny-qwen3", "Q8_0"],
  ["tiny-llama3", "Q4_K"],
] as [ArchPreset, WeightType][])("%s %s: node-llama-cpp with the saved adapter gives the trainer's next-token probabilities", async (preset, type) => {
  const path = await archModelPath(preset, type);
  const model = await native().loadModel(path, { threads: 2, repack: false });
  const { tokens, segments } = randomSample(31, 5, 3, 3, 100000);
  const t = createTrainer(model, { lora: { rank: 8, alpha: 32, seed: 2 }, optimizer: { lr: 3e-3 } });
  for (let i = 0; i < 15; i++) await t.step([{ tokens, segments }]);
  const adapterPath = join(dir, `${preset}-${type}.gguf`);
  await t.saveAdapter(adapterPath);
  const prefix = tokens.slice(0, 9);
  const logits = await t.logits(prefix);
  const V = t.info.vocabSize;
  const last = logits.subarray((prefix.length - 1) * V, prefix.length * V);
  let m = -Infinity;
  for (const x of last) m = Math.max(m, x);
  let z = 0;
  for (const x of last) z += Math.exp(x - m);
  const ourLogprob = (tok: number) => last[tok]! - m - Math.log(z);

  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const theirs = await llama.loadModel({ modelPath: path });
  const ctx = await theirs.createContext({ contextSize: 64, threads: 1, lora: { adapters: [{ filePath: adapterPath }] } });
  const input = Array.from(prefix, (tok, i): ControlledEvaluateInputItem => (i === prefix.length - 1 ? [tok as Token, { generateNext: { probabilities: true } }] : (tok as Token)));
  const res = await ctx.getSequence().controlledEvaluate(input);
  const probs = res[prefix.length - 1]?.next?.probabilities;
  expect(probs).toBeDefined();
  const top = [...probs!.entries()].sort((a, b) => b[1] - a[1]).slice(0, 50);
  expect(top[0]![0]).toBe(tokens[9]);
  expect(top[0]![1]).toBeGreaterThan(0.2);
  // Relative to 1 + |log p|: the distribution is peaked, so the top-50 reach log p of -20 and
  // beyond, where node-llama-cpp's F16 K/V cache alone moves log-probs by a few 1e-3.
  let worst = 0;
  for (const [tok, p] of top) worst = Math.max(worst, Math.abs(ourLogprob(tok) - Math.log(p)) / (1 + Math.abs(Math.log(p))));
  console.log(`${preset} ${type}: top-50 log-prob difference / (1 + |log p|) ${worst.toExponential(2)}`);
  // Quantized: the Q8_0 activation steps of trainer-arch.test.ts's FORWARD_CASES, on another build.
  expect(worst).toBeLessThan(type === "F32" ? 2e-3 : 1e-2);
  await ctx.dispose();
  await theirs.dispose();
  await llama.dispose();
  t.dispose();
  model.dispose();
});
