// The addon in worker threads, and the tokenizing pool built on it.
//  - A worker thread loads the addon while the main thread holds a model; after the worker is
//    gone the main thread's model, scorer and adapters still work (class constructors are kept
//    per JS environment, not in process-wide statics that the worker's load would replace).
//  - vocabOnly loads only the tokenizer: same tokens as the full model, and everything that runs
//    the model is refused with a message instead of reaching native code without weights.
//  - tokenizeRecords on real worker threads gives exactly the trainer's own tokenization, in order.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addonPath,
  createTrainer,
  loadModel,
  modelSampleTokenizer,
  tokenizeSamples,
  type Model,
} from "../src/index.js";
import { tokenizeRecords, tokenizeThreads } from "../src/train/tokenize-pool.js";
import type { SftRecord } from "../src/train/samples.js";
import { packageRoot } from "../src/util/paths.js";
import { tinyLoraPath, tinyModelPath } from "./support/models.js";

let model: Model;
beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 1 });
});
afterAll(() => model?.dispose());

const TEXTS = ["Apex Phone Case fits the user's phone", 'ünïcode — "quoted" title, vol. 7', ""];

/** Loads the addon in a worker thread, tokenizes TEXTS with a vocabOnly model there, and exits. */
function tokenizeInWorker(modelPath: string): Promise<number[][]> {
  const code = `
    const { workerData, parentPort } = require("node:worker_threads");
    const addon = require(workerData.addon);
    addon.loadModel(workerData.model, { vocabOnly: true, threads: 1 }).then((m) => {
      parentPort.postMessage(workerData.texts.map((t) => Array.from(m.tokenize(t, {}))));
      m.dispose();
    });`;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { addon: addonPath(), model: modelPath, texts: TEXTS } });
    let out: number[][] | null = null;
    w.on("message", (m: number[][]) => (out = m));
    w.on("error", reject);
    w.on("exit", (code) => (code === 0 && out ? resolve(out) : reject(new Error(`worker exited with ${code}`))));
  });
}

describe("the addon in worker threads", () => {
  it("a worker's load leaves the main thread's model, scorer and adapters working", async () => {
    const before = await model
      .createScorer({ contextSize: 128, sequences: 1 })
      .score([{ prompt: "a b c", continuation: " d e" }]);
    const inWorker = await tokenizeInWorker(tinyModelPath());
    expect(inWorker).toEqual(TEXTS.map((t) => Array.from(model.tokenize(t))));
    // Main-thread objects made after the worker is gone: the class checks still hold.
    const scorer = model.createScorer({ contextSize: 128, sequences: 1 });
    const lora = await model.loadLora(tinyLoraPath());
    const [after] = await scorer.score([{ prompt: "a b c", continuation: " d e" }]);
    expect(after!.logprob).toBe(before[0]!.logprob);
    const [adapted] = await scorer.score([{ prompt: "a b c", continuation: " d e" }], { lora: [{ adapter: lora }] });
    expect(adapted!.logprob).not.toBe(after!.logprob);
    lora.dispose();
    scorer.dispose();
  });

  it("vocabOnly tokenizes like the full model and refuses to run", async () => {
    const v = await loadModel(tinyModelPath(), { vocabOnly: true });
    try {
      for (const t of TEXTS) expect(Array.from(v.tokenize(t))).toEqual(Array.from(model.tokenize(t)));
      expect(v.info.vocabSize).toBe(model.info.vocabSize);
      expect(v.info.eos).toBe(model.info.eos);
      expect(() => v.createScorer({ contextSize: 64 })).toThrow(/vocabOnly/);
      expect(() => createTrainer(v)).toThrow(/vocabOnly/);
      await expect(v.generate(["a"], { maxTokens: 2 })).rejects.toThrow(/vocabOnly/);
      await expect(v.loadLora(tinyLoraPath())).rejects.toThrow(/vocabOnly/);
    } finally {
      v.dispose();
    }
  });
});

// The pool's worker module is the compiled one (dist/, built by `npm install`).
const workerFile = join(packageRoot, "dist", "src", "train", "tokenize-worker.js");
const noWorker = existsSync(workerFile) ? null : `${workerFile} is not built (run \`npm run build:ts\`)`;
if (noWorker) console.log(`skipped tokenizing-pool test: ${noWorker}`);

describe.skipIf(noWorker !== null)("tokenizeRecords", () => {
  const records: SftRecord[] = Array.from({ length: 300 }, (_, i) => ({
    prompt: `User ${i} bought "Item ${i % 17}", then "Item ${(i * 7) % 23}".\nCandidates: "A ${i}", "B ${i % 5}"`,
    reasoning: i % 3 === 0 ? "" : `Step 4 - Summary: "Item ${i % 11}" fits — ünïcode ${i}.`,
    recommendation: `A ${i}`,
  }));

  it("on two worker threads equals the main thread's tokenization, in order", async () => {
    expect(tokenizeThreads(records.length, { threads: 2, chunkSize: 64, workerFile })).toBe(2);
    const pooled = await tokenizeRecords(tinyModelPath(), records, { threads: 2, chunkSize: 64, workerFile });
    const reference = tokenizeSamples(modelSampleTokenizer(model), records);
    expect(pooled).toHaveLength(records.length);
    pooled.forEach((s, i) => {
      expect(Array.from(s.tokens), `record ${i}`).toEqual(Array.from(reference[i]!.tokens));
      expect(Array.from(s.segments), `record ${i}`).toEqual(Array.from(reference[i]!.segments));
    });
    // One thread: the same result without workers.
    const single = await tokenizeRecords(tinyModelPath(), records.slice(0, 10), { threads: 1 });
    expect(single.map((s) => Array.from(s.tokens))).toEqual(pooled.slice(0, 10).map((s) => Array.from(s.tokens)));
  });

  it("a bad record fails the job with the trainer's message", async () => {
    const bad = [...records.slice(0, 100), { prompt: "p", reasoning: "", recommendation: " " }];
    await expect(tokenizeRecords(tinyModelPath(), bad, { threads: 2, chunkSize: 64, workerFile })).rejects.toThrow(
      /empty recommendation/,
    );
  });
});
