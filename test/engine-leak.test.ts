// No leak: 200 cycles each of adapter load/score/dispose, scorer create/score/dispose, generate,
// embed and trainer create/step/dispose keep RSS flat, and the native memory of scorers, adapters
// and the contexts of running generate and embed calls is reported to V8 while they live.
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { native } from "../src/engine/bindings.js";
import { loadModel, type Model } from "../src/index.js";
import { tinyLoraPath, tinyModelPath } from "./support/models.js";

const MB = 2 ** 20;

/** A full collection, then a few turns of the event loop for the finalizers it queued. */
async function collectGarbage(): Promise<void> {
  v8.setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

/** RSS growth over `n` cycles after a warm-up of 20 (allocator pools, graph caches). */
async function rssGrowth(n: number, cycle: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await cycle();
  global.gc?.();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < n; i++) await cycle();
  global.gc?.();
  const growth = process.memoryUsage().rss - before;
  console.log(`RSS growth over ${n} cycles: ${(growth / MB).toFixed(1)} MB`);
  return growth;
}

describe("memory", () => {
  let model: Model;
  const reqs = Array.from({ length: 4 }, (_, i) => ({
    prompt: `user ${i} liked`,
    continuation: " a phone case and a charger",
  }));
  beforeAll(async () => {
    model = await loadModel(tinyModelPath(), { threads: 2 });
  });
  afterAll(() => model?.dispose());

  it("keeps RSS bounded over 200 adapter load/dispose cycles and many batches", async () => {
    const path = tinyLoraPath(1);
    const scorer = model.createScorer({ contextSize: 256 });
    const growth = await rssGrowth(200, async () => {
      const a = await model.loadLora(path);
      await scorer.score(reqs, { lora: [{ adapter: a, scale: 1 }] });
      a.dispose();
    });
    // The adapter file is ~100 KB; a leak of one adapter per cycle would add ~20 MB.
    expect(growth).toBeLessThan(8 * MB);
    scorer.dispose();
  });

  it("keeps RSS bounded over 200 scorer create/score/dispose cycles", async () => {
    const growth = await rssGrowth(200, async () => {
      const s = model.createScorer({ contextSize: 256, batchSize: 64 });
      await s.score(reqs);
      s.dispose();
    });
    // Each scorer holds an 8 MB logits buffer (64 rows × 32k vocabulary): one leaked per cycle
    // would add 1.6 GB.
    expect(growth).toBeLessThan(16 * MB);
  });

  it("keeps RSS bounded over 200 generate and 200 embed calls", async () => {
    const gen = await rssGrowth(200, () =>
      model.generate(["The user bought", "Next"], { maxTokens: 4, temperature: 0.7, seed: 1 }),
    );
    const emb = await rssGrowth(200, () => model.embed(["Apex Phone Case", "a charger"]));
    // Each call makes and frees its own context (several MB of logits and compute buffers).
    expect(gen).toBeLessThan(16 * MB);
    expect(emb).toBeLessThan(16 * MB);
  });

  it("keeps RSS bounded over 200 trainer create/step/dispose cycles", async () => {
    const sample = {
      tokens: Int32Array.from({ length: 24 }, (_, i) => (i === 0 ? 1 : 100 + i)),
      segments: Uint8Array.from({ length: 24 }, (_, i) => (i < 8 ? 0 : i < 16 ? 1 : 2)),
    };
    const growth = await rssGrowth(200, async () => {
      const t = model.createTrainer({ lora: { rank: 2 } });
      await t.step([sample]);
      t.dispose();
    });
    // A trainer holds its LoRA parameters, gradients, AdamW moments and a compute graph (~1 MB
    // here): one leaked per cycle would add ~200 MB.
    expect(growth).toBeLessThan(16 * MB);
  });

  it("reports scorer, adapter and per-call context memory to V8 and releases it", async () => {
    const reported = () => native().reportedExternalMemory();
    // The total is V8's external memory, Node's own buffers included, so compare within a few KB.
    const near = (actual: number, expected: number) => expect(Math.abs(actual - expected)).toBeLessThan(4096);
    // Typed arrays the earlier tests left for the garbage collector leave the total when they are
    // collected, whenever that is: collect them before each phase and measure from there.
    const baseline = async () => {
      await collectGarbage();
      return reported();
    };
    let base = await baseline();
    const s = model.createScorer({ contextSize: 256, batchSize: 64 });
    // The logits rows of one batch (64 × 32000 floats) plus the KV cache: 256 cells × 2 layers × K
    // and V × 32 values (2 KV heads of 16), F32 under invariant numerics (the default), F16 fast.
    near(reported() - base, 64 * 32000 * 4 + 256 * 2 * 2 * 32 * 4);
    s.dispose();
    near(reported(), base);
    const f = model.createScorer({ contextSize: 256, batchSize: 64, numerics: "fast" });
    near(reported() - base, 64 * 32000 * 4 + 256 * 2 * 2 * 32 * 2);
    f.dispose();
    near(reported(), base);
    base = await baseline();
    const a = await model.loadLora(tinyLoraPath(1));
    // Every lora_a / lora_b tensor of the rank-4 adapter on all 7 targets of both layers, in F32.
    const perLayer = 64 + 64 + (64 + 32) + (64 + 32) + (64 + 64) + (64 + 128) + (64 + 128) + (128 + 64);
    near(reported() - base, 2 * perLayer * 4 * 4);
    a.dispose();
    near(reported(), base);
    // A generate or embed call's own context counts while the call runs. The native handle starts
    // the call synchronously (the wrapper queues it for a later tick).
    base = await baseline();
    const gen = model.handle().generate([Int32Array.from([1, 5])], { maxTokens: 4, parallel: 1, temperature: 0 });
    // 6 F32 KV cells (prompt + maxTokens) and one slot's logits row.
    near(reported() - base, 6 * 2 * 2 * 32 * 4 + 32000 * 4);
    await gen;
    near(reported(), base);
    base = await baseline();
    const emb = model.handle().embed([Int32Array.from([1, 5, 6])]);
    // A batch of 2048 tokens (the default batchTokens): KV cells and one 64-wide row each.
    near(reported() - base, 2048 * 2 * 2 * 32 * 2 + 2048 * 64 * 4);
    await emb;
    near(reported(), base);
  });
});
