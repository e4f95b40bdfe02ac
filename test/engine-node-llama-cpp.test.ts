// Agreement with node-llama-cpp (its own prebuilt llama.cpp, loaded in the same process) on the
// same tiny model and text: its next-token probabilities equal ours within 1e-4.
import {
  getLlama,
  LlamaLogLevel,
  type ControlledEvaluateInputItem,
  type Llama,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../src/index.js";
import { tinyLoraPath, tinyModelPath } from "./support/models.js";

let llama: Llama;
let theirs: LlamaModel;
let ours: Model;

beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  theirs = await llama.loadModel({ modelPath: tinyModelPath() });
  ours = await loadModel(tinyModelPath(), { threads: 2 });
});
afterAll(async () => {
  ours?.dispose();
  await theirs?.dispose();
  await llama?.dispose();
});

async function theirProbabilities(tokens: number[], lora?: string): Promise<Map<number, number>> {
  const ctx = await theirs.createContext({
    contextSize: 128,
    threads: 1,
    ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}),
  });
  try {
    const input = tokens.map((t, i): ControlledEvaluateInputItem =>
      i === tokens.length - 1 ? [t as Token, { generateNext: { probabilities: true } }] : (t as Token),
    );
    const res = await ctx.getSequence().controlledEvaluate(input);
    const probs = res[tokens.length - 1]?.next?.probabilities;
    if (!probs) throw new Error("node-llama-cpp returned no probabilities");
    return probs;
  } finally {
    await ctx.dispose();
  }
}

describe("agreement with node-llama-cpp", () => {
  for (const lora of [undefined, 1]) {
    it(`next-token probabilities match within 1e-4${lora ? " with a LoRA adapter" : ""}`, async () => {
      const text = "The user watched Star Wars and";
      const tokens = Array.from(ours.tokenize(text));
      expect(tokens).toEqual([theirs.tokens.bos, ...theirs.tokenize(text)]);
      const adapterPath = lora ? tinyLoraPath(lora) : undefined;
      const probs = await theirProbabilities(tokens, adapterPath);
      // Ours: score every candidate next token as a one-token continuation (one shared prompt).
      const adapter = adapterPath ? await ours.loadLora(adapterPath) : undefined;
      const candidates = [...probs.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 200)
        .map(([t]) => t);
      const scored = await ours.createScorer({ sequences: 64 }).score(
        candidates.map((t) => ({ prompt: tokens, continuation: [t] })),
        { lora: adapter ? [{ adapter, scale: 1 }] : undefined },
      );
      for (let i = 0; i < candidates.length; i++) {
        expect(Math.abs(Math.exp(scored[i]!.logprob) - probs.get(candidates[i]!)!)).toBeLessThan(1e-4);
      }
    });
  }
});
