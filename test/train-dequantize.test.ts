// `msr-rec train --mode full` on a quantized model: refused with a message that names both the
// library option and the command-line flag; with --dequantize it trains F32 copies of the weights
// and writes a model that loads and scores.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { trainRunOptions, type TrainCliOptions } from "../src/cli/commands/train.js";
import { quantizeModel } from "../src/engine/model-files.js";
import { loadModel } from "../src/index.js";
import { readGguf } from "../src/gguf/reader.js";
import { ggmlTypeName } from "../src/gguf/types.js";
import { runTraining } from "../src/train/run.js";
import { addonMissing } from "./support/addon.js";
import { tinyModelPath } from "./support/models.js";

const missing = addonMissing("train --dequantize tests");
const dir = mkdtempSync(join(tmpdir(), "msr-dequantize-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cliOptions(over: Partial<TrainCliOptions>): TrainCliOptions {
  return {
    model: "",
    data: "",
    out: "",
    mode: "full",
    epochs: "1",
    batch: "2",
    alpha: "0.7",
    beta: "0.3",
    lr: "1e-3",
    warmup: "0",
    schedule: "constant",
    rank: "8",
    loraAlpha: "32",
    targets: "q,k,v,o,gate,up,down",
    seed: "0",
    microBatchTokens: "512",
    weightDecay: "0",
    clip: "1",
    device: "cpu",
    checkpointEvery: "50",
    threads: "2",
    ...over,
  };
}

describe.skipIf(missing !== null)("msr-rec train --dequantize", () => {
  it("refuses full mode on a Q8_0 model without it, and trains F32 weights with it", async () => {
    const q8 = join(dir, "tiny-q8_0.gguf");
    await quantizeModel(tinyModelPath(), q8, "Q8_0");
    expect(readGguf(q8).tensors.some((t) => ggmlTypeName(t.type) === "Q8_0")).toBe(true);
    const data = join(dir, "sft.jsonl");
    const rec = { prompt: "User bought a phone.", reasoning: "A case protects it.", recommendation: "Apex Phone Case" };
    writeFileSync(data, `${JSON.stringify(rec)}\n${JSON.stringify({ ...rec, recommendation: "Sonix Charger" })}\n`);
    const out = join(dir, "full.gguf");

    await expect(runTraining(trainRunOptions(cliOptions({ model: q8, data, out })))).rejects.toThrow(
      /full mode on a quantized model .*dequantize: true.*\(msr-rec train: --dequantize\)/s,
    );

    const { logs } = await runTraining(trainRunOptions(cliOptions({ model: q8, data, out, dequantize: true })));
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.every((l) => Number.isFinite(l.loss))).toBe(true);
    // The written model holds F32 weights (the trained copies) and loads and scores like any model.
    const types = new Set(readGguf(out).tensors.map((t) => ggmlTypeName(t.type)));
    expect(types.has("Q8_0")).toBe(false);
    expect(types.has("F32")).toBe(true);
    const m = await loadModel(out, { threads: 2 });
    const [r] = await m
      .createScorer({ contextSize: 256 })
      .score([{ prompt: rec.prompt, continuation: ` ${rec.recommendation}` }]);
    expect(Number.isFinite(r!.logprob)).toBe(true);
    m.dispose();
  });
});
