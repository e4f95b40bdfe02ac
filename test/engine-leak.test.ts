// No leak: loading and disposing an adapter 200 times and scoring many batches keeps RSS flat.
import { describe, expect, it } from "vitest";
import { loadModel } from "../src/index.js";
import { tinyLoraPath, tinyModelPath } from "./support/models.js";

describe("memory", () => {
  it("keeps RSS bounded over 200 adapter load/dispose cycles and many batches", async () => {
    const model = await loadModel(tinyModelPath(), { threads: 2 });
    const path = tinyLoraPath(1);
    const scorer = model.createScorer({ contextSize: 256 });
    const reqs = Array.from({ length: 4 }, (_, i) => ({ prompt: `user ${i} liked`, continuation: " a phone case and a charger" }));
    const cycle = async () => {
      const a = await model.loadLora(path);
      await scorer.score(reqs, { lora: [{ adapter: a, scale: 1 }] });
      a.dispose();
    };
    for (let i = 0; i < 20; i++) await cycle(); // warm-up: allocator pools, graph caches
    global.gc?.();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 200; i++) await cycle();
    global.gc?.();
    const growth = process.memoryUsage().rss - before;
    // The adapter file is ~100 KB; a leak of one adapter per cycle would add ~20 MB.
    expect(growth).toBeLessThan(8 * 2 ** 20);
    model.dispose();
  });
});
