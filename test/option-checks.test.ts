// Every option has one check, in the module that uses it; the command line, the run config and
// library calls reach the same rule and report it under their own names. Each case below sets one
// bad value three ways and expects the same problem (written out here) under each name.
import { describe, expect, it } from "vitest";
import { trainRunOptions, type TrainCliOptions } from "../src/cli/commands/train.js";
import { parseRunConfig } from "../src/pipeline/config.js";
import { trainerOptionIssues } from "../src/engine/trainer.js";
import { runTrainingLoop } from "../src/train/loop.js";
import { applyProtocol } from "../src/data/protocol.js";
import { synthesize } from "../src/teacher/synthesize.js";

const cli = (over: Partial<TrainCliOptions>): TrainCliOptions => ({
  model: "m.gguf",
  data: "d.jsonl",
  out: "a.gguf",
  mode: "lora",
  epochs: "5",
  batch: "32",
  alpha: "0.7",
  beta: "0.3",
  lr: "2e-4",
  warmup: "auto",
  schedule: "cosine",
  rank: "8",
  loraAlpha: "32",
  targets: "q,k,v,o,gate,up,down",
  seed: "0",
  microBatchTokens: "512",
  weightDecay: "0",
  clip: "1",
  device: "auto",
  checkpointEvery: "50",
  ...over,
});
const config = (over: Record<string, unknown>) => ({
  dataset: { source: "synthetic" },
  model: { initSize: "tiny" },
  teacher: { kind: "rule" },
  ...over,
});
const message = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return "(no error)";
};

describe("one check per option", () => {
  it("LoRA rank: the trainer's rule, as --rank and train.loraRank", () => {
    const problem = "must be a positive integer (got 0)";
    expect(trainerOptionIssues({ lora: { rank: 0 } })).toEqual([{ key: "lora.rank", problem }]);
    expect(message(() => trainRunOptions(cli({ rank: "0" })))).toBe(`--rank ${problem}`);
    expect(message(() => parseRunConfig(config({ train: { loraRank: 0 } })))).toContain(`train.loraRank: ${problem}`);
  });

  it("learning rate and schedule: the trainer's rules, as --lr / --schedule and the config's fields", () => {
    expect(message(() => trainRunOptions(cli({ lr: "0", schedule: "step" })))).toBe(
      '--lr must be a positive number (got 0); --schedule must be "constant", "linear" or "cosine" (got "step")',
    );
    expect(
      message(() =>
        parseRunConfig(config({ train: { learningRate: -1 }, model: { initSize: "tiny", pretrainLearningRate: 0 } })),
      ),
    ).toMatch(
      /model\.pretrainLearningRate: must be a positive number \(got 0\)[\s\S]*train\.learningRate: must be a positive number \(got -1\)/,
    );
    expect(message(() => trainRunOptions(cli({ targets: "q,qq" })))).toBe(
      "--targets has an unknown LoRA target 'qq' (use q,k,v,o,gate,up,down)",
    );
  });

  it("batch size: the training loop's rule, as --batch, train.batchSize and model.pretrainBatchSize", async () => {
    const problem = "must be a positive integer (got 0)";
    await expect(
      runTrainingLoop({ steps: 0 } as never, [{ tokens: new Int32Array(2), segments: new Uint8Array(2) }], {
        epochs: 1,
        batchSize: 0,
        seed: 0,
        alpha: 1,
        beta: 0,
      }),
    ).rejects.toThrow(`batch size ${problem}`);
    expect(message(() => trainRunOptions(cli({ batch: "0" })))).toBe(`--batch ${problem}`);
    expect(
      message(() =>
        parseRunConfig(config({ train: { batchSize: 0 }, model: { initSize: "tiny", pretrainBatchSize: 0 } })),
      ),
    ).toMatch(
      new RegExp(
        `model\\.pretrainBatchSize: ${problem.replace(/[()]/g, "\\$&")}[\\s\\S]*train\\.batchSize: ${problem.replace(/[()]/g, "\\$&")}`,
      ),
    );
  });

  it("loss weights: both 0 is refused however they are given", () => {
    const problem = "must be > 0 when beta is 0 (with both loss weights 0 nothing is learnt)";
    expect(message(() => trainRunOptions(cli({ alpha: "0", beta: "0" })))).toBe(`--alpha ${problem}`);
    expect(message(() => parseRunConfig(config({ train: { alpha: 0, beta: 0 } })))).toContain(
      `train.alpha: ${problem}`,
    );
    expect(message(() => parseRunConfig(config({ ablations: { sweepPairs: [[0, 0]] } })))).toContain(
      `ablations.sweepPairs.0.0: ${problem}`,
    );
  });

  it("candidates and the seed: the protocol's rules, as --candidates and dataset.candidates", () => {
    expect(message(() => applyProtocol([], new Map(), { candidates: 1 }))).toBe(
      "candidates must be an integer >= 2 (got 1)",
    );
    expect(
      message(() => parseRunConfig(config({ dataset: { source: "synthetic", candidates: 1 }, seed: 0.5 }))),
    ).toMatch(/dataset\.candidates: must be an integer >= 2 \(got 1\)\n {2}seed: must be an integer \(got 0\.5\)\n/);
  });

  it("τ: the synthesis loop's rule, as teacher.tau", async () => {
    await expect(synthesize([], { teacher: {} as never, store: {} as never, tau: 0 })).rejects.toThrow(
      "tau must be a positive integer (got 0)",
    );
    expect(message(() => parseRunConfig(config({ teacher: { kind: "rule", tau: 0 } })))).toContain(
      "teacher.tau: must be a positive integer (got 0)",
    );
  });
});
