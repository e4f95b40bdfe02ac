// An adapter written by trainer.saveAdapter, loaded by node-llama-cpp (its own prebuilt
// llama.cpp, same process): its next-token probabilities equal the trainer graph's own
// softmax(logits) for the same tokens. The model is the tiny one with output_norm set to 16 (via
// full mode + saveModel) so that the trained adapter makes the distribution peaked and the
// comparison of log-probabilities is meaningful (near-uniform 1/32000 probabilities would pass
// any absolute tolerance).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { native, type NativeModel } from "../src/engine/bindings.js";
import { createTrainer } from "../src/engine/trainer.js";
import { Segment } from "../src/engine/train-batch.js";
import { tinyModelPath } from "./support/models.js";
import { compareTrainedAdapter } from "./support/adapter-vs-node-llama-cpp.js";

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
  const segments = Uint8Array.from(tokens, (_, i) =>
    i < 5 ? Segment.prompt : i < 8 ? Segment.reasoning : Segment.recommendation,
  );
  const { ours, top } = await compareTrainedAdapter(wide, widePath, { tokens, segments }, join(dir, "trained.gguf"));
  for (const [tok, p] of top) expect(Math.abs(ours(tok) - Math.log(p))).toBeLessThan(2e-3);
});
