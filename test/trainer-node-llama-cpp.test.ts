// An adapter written by trainer.saveAdapter, loaded by node-llama-cpp (its own prebuilt
// llama.cpp, same process): its next-token probabilities equal the trainer graph's own
// softmax(logits) for the same tokens. The model is the tiny one with output_norm set to 16 (via
// full mode + saveModel) so that the trained adapter makes the distribution peaked and the
// comparison of log-probabilities is meaningful (near-uniform 1/32000 probabilities would pass
// any absolute tolerance).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, expect, it } from "vitest";
import { native, type NativeModel } from "../src/engine/bindings.js";
import { createTrainer } from "../src/engine/trainer.js";
import { Segment } from "../src/train/samples.js";
import { tinyModelPath } from "./support/models.js";

let dir: string;
let wide: NativeModel;
let widePath: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "msr-trainer-nlc-"));
  const base = await native().loadModel(tinyModelPath(), { threads: 2 });
  const full = createTrainer(base, { mode: "full" });
  full.setParam("output_norm.weight", new Float32Array(full.getParam("output_norm.weight").length).fill(16));
  widePath = join(dir, "wide.gguf");
  await full.saveModel(widePath);
  full.dispose();
  base.dispose();
  wide = await native().loadModel(widePath, { threads: 2 });
});
afterAll(() => {
  wide?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

it("node-llama-cpp with the saved adapter gives the trainer's next-token probabilities", async () => {
  const tokens = Int32Array.from([1, 450, 1404, 20654, 7813, 29879, 322, 13, 1576, 3001, 1023]);
  const segments = Uint8Array.from(tokens, (_, i) => (i < 5 ? Segment.prompt : i < 8 ? Segment.reasoning : Segment.recommendation));
  const t = createTrainer(wide, { lora: { rank: 8, alpha: 32, seed: 2 }, optimizer: { lr: 3e-3 } });
  for (let i = 0; i < 15; i++) await t.step([{ tokens, segments }]);
  const adapterPath = join(dir, "trained.gguf");
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
  const theirs = await llama.loadModel({ modelPath: widePath });
  const ctx = await theirs.createContext({ contextSize: 64, threads: 1, lora: { adapters: [{ filePath: adapterPath }] } });
  const input = Array.from(prefix, (tok, i): ControlledEvaluateInputItem => (i === prefix.length - 1 ? [tok as Token, { generateNext: { probabilities: true } }] : (tok as Token)));
  const res = await ctx.getSequence().controlledEvaluate(input);
  const probs = res[prefix.length - 1]?.next?.probabilities;
  expect(probs).toBeDefined();
  const top = [...probs!.entries()].sort((a, b) => b[1] - a[1]).slice(0, 50);
  // The trained target is learned (peaked distribution), so the comparison is not vacuous.
  expect(top[0]![0]).toBe(tokens[9]);
  expect(top[0]![1]).toBeGreaterThan(0.2);
  for (const [tok, p] of top) expect(Math.abs(ourLogprob(tok) - Math.log(p))).toBeLessThan(2e-3);
  await ctx.dispose();
  await theirs.dispose();
  await llama.dispose();
  t.dispose();
});
