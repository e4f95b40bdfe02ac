// The comparison both node-llama-cpp adapter tests make: train a LoRA adapter for 15 steps on one
// sample, save it, and give the trainer's own next-token log-probs after the sample's first 9
// tokens beside node-llama-cpp's top-50 next-token probabilities with that adapter loaded (its own
// prebuilt llama.cpp, in this process).
import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Token } from "node-llama-cpp";
import { expect } from "vitest";
import type { NativeModel } from "../../src/engine/bindings.js";
import { createTrainer } from "../../src/engine/trainer.js";
import { trainingLogits } from "./dev.js";

export interface AdapterComparison {
  /** The trainer graph's log softmax for `tok` at the compared position. */
  ours(tok: number): number;
  /** node-llama-cpp's 50 most likely next tokens with their probabilities, most likely first. */
  top: [number, number][];
}

export async function compareTrainedAdapter(
  model: NativeModel,
  modelPath: string,
  sample: { tokens: Int32Array; segments: Uint8Array },
  adapterPath: string,
): Promise<AdapterComparison> {
  const { tokens } = sample;
  const t = createTrainer(model, { lora: { rank: 8, alpha: 32, seed: 2 }, optimizer: { lr: 3e-3 } });
  try {
    for (let i = 0; i < 15; i++) await t.step([sample]);
    await t.saveAdapter(adapterPath);
    const prefix = tokens.slice(0, 9);
    const logits = await trainingLogits(t, prefix);
    const V = t.info.vocabSize;
    const last = logits.slice((prefix.length - 1) * V, prefix.length * V);
    let m = -Infinity;
    for (const x of last) m = Math.max(m, x);
    let z = 0;
    for (const x of last) z += Math.exp(x - m);
    const ours = (tok: number) => last[tok]! - m - Math.log(z);

    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    const theirs = await llama.loadModel({ modelPath });
    const ctx = await theirs.createContext({
      contextSize: 64,
      threads: 1,
      lora: { adapters: [{ filePath: adapterPath }] },
    });
    const input = Array.from(prefix, (tok, i): ControlledEvaluateInputItem =>
      i === prefix.length - 1 ? [tok as Token, { generateNext: { probabilities: true } }] : (tok as Token),
    );
    const res = await ctx.getSequence().controlledEvaluate(input);
    const probs = res[prefix.length - 1]?.next?.probabilities;
    expect(probs).toBeDefined();
    const top = [...probs!.entries()].sort((a, b) => b[1] - a[1]).slice(0, 50) as [number, number][];
    // The trained target is learned (a peaked distribution), so the comparison is not vacuous.
    expect(top[0]![0]).toBe(tokens[9]);
    expect(top[0]![1]).toBeGreaterThan(0.2);
    await ctx.dispose();
    await theirs.dispose();
    await llama.dispose();
    return { ours, top };
  } finally {
    t.dispose();
  }
}
