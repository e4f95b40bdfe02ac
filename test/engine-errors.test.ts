// Bad input: each a clear JS error, and the process (and model) stay alive.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../src/index.js";
import { otherModelLoraPath, tinyLoraPath, tinyModelPath } from "./support/models.js";

const dir = mkdtempSync(join(tmpdir(), "msr-rec-errors-"));
let model: Model;

beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 1 });
});
afterAll(() => model?.dispose());

describe("bad input", () => {
  it("missing model file", async () => {
    await expect(loadModel(join(dir, "nope.gguf"))).rejects.toThrow(/no model file/);
  });

  it("truncated GGUF", async () => {
    const bytes = readFileSync(tinyModelPath());
    const p = join(dir, "truncated.gguf");
    writeFileSync(p, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(loadModel(p)).rejects.toThrow(/not a loadable GGUF/);
  });

  it("a file that is not a model", async () => {
    const p = join(dir, "text.gguf");
    writeFileSync(p, "this is not a gguf file at all\n".repeat(100));
    await expect(loadModel(p)).rejects.toThrow(/not a loadable GGUF/);
    // A LoRA adapter is a GGUF but not a model.
    await expect(loadModel(tinyLoraPath(1))).rejects.toThrow(/not a loadable GGUF/);
  });

  it("an adapter made for another model", async () => {
    await expect(model.loadLora(otherModelLoraPath())).rejects.toThrow(/not a LoRA adapter for this model/);
    await expect(model.loadLora(tinyModelPath())).rejects.toThrow(/LoRA/);
  });

  it("token id out of range", async () => {
    const s = model.createScorer();
    await expect(s.score([{ prompt: [1, 999999], continuation: [5] }])).rejects.toThrow(/out of range/);
    await expect(s.score([{ prompt: [1], continuation: [-3] }])).rejects.toThrow(/out of range/);
    expect(() => model.detokenize([1, 32000])).toThrow(/out of range/);
    await expect(model.generate([[1, 40000]])).rejects.toThrow(/out of range/);
  });

  it("empty continuation, empty prompt, empty batch", async () => {
    const s = model.createScorer();
    await expect(s.score([{ prompt: "hi", continuation: "" }])).rejects.toThrow(/continuation is empty/);
    await expect(s.score([{ prompt: [], continuation: [4] }])).rejects.toThrow(/prompt has no tokens/);
    await expect(s.score([])).rejects.toThrow(/empty/);
    await expect(model.generate([])).rejects.toThrow(/empty/);
  });

  it("a request longer than the context", async () => {
    const s = model.createScorer({ contextSize: 32, batchSize: 32 });
    // llama.cpp may round the context up (to 256 cells); the limit is what the scorer reports.
    const long = Array.from({ length: s.config.contextSize + 8 }, (_, i) => 100 + i);
    await expect(s.score([{ prompt: [1], continuation: long }])).rejects.toThrow(/larger contextSize/);
    await expect(model.generate(["hello"], { maxTokens: 50, contextSize: 16 })).rejects.toThrow(/contextSize/);
  });

  it("a non-finite LoRA scale", async () => {
    const a = await model.loadLora(tinyLoraPath(1));
    const s = model.createScorer();
    for (const scale of [NaN, Infinity, -Infinity]) {
      await expect(s.score([{ prompt: "a", continuation: "b" }], { lora: [{ adapter: a, scale }] })).rejects.toThrow(
        /finite/,
      );
    }
    a.dispose();
  });

  it("use after dispose", async () => {
    const m = await loadModel(tinyModelPath(), { threads: 1 });
    const s = m.createScorer();
    const a = await m.loadLora(tinyLoraPath(1));
    m.dispose();
    m.dispose(); // idempotent
    expect(() => m.tokenize("x")).toThrow(/disposed/);
    expect(() => m.createScorer()).toThrow(/disposed/);
    await expect(m.loadLora(tinyLoraPath(1))).rejects.toThrow(/disposed/);
    await expect(s.score([{ prompt: [1], continuation: [5] }])).rejects.toThrow(/disposed/);
    a.dispose();
    s.dispose();
    await expect(s.score([{ prompt: [1], continuation: [5] }])).rejects.toThrow(/disposed/);
  });

  it("the model still works after all of the above", async () => {
    const [r] = await model.createScorer().score([{ prompt: "a", continuation: "b" }]);
    expect(Number.isFinite(r!.logprob)).toBe(true);
  });
});
