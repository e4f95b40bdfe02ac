// `msr-rec train` and the pipeline's train stage fine-tune with one set of defaults: the same
// trainer options from the command line's defaults and from the paper config's, and both equal
// the values written out here (the paper's LoRA and batch settings, and the stated choices for
// what it leaves open: warmup, clipping, weight decay, micro-batches).
import { describe, expect, it } from "vitest";
import { Command } from "commander";
import { register, trainRunOptions, type TrainCliOptions } from "../src/cli/commands/train.js";
import { parseRunConfig } from "../src/pipeline/config.js";
import { variantTrainerOptions } from "../src/pipeline/stages/train.js";
import { trainerOptionsFor } from "../src/train/options.js";

async function cliDefaults(): Promise<TrainCliOptions> {
  const program = new Command().exitOverride();
  register(program);
  let got: TrainCliOptions | undefined;
  // Replace the handler: only the parsed options are wanted, not a training run.
  program.commands.find((c) => c.name() === "train")!.action((o: TrainCliOptions) => void (got = o));
  await program.parseAsync(["node", "msr-rec", "train", "--model", "m.gguf", "--data", "d.jsonl", "--out", "a.gguf"]);
  return got!;
}

const paper = {
  seed: 0,
  dataset: { source: "amazon-2014", path: "r.json.gz" },
  model: { path: "m.gguf" },
  teacher: { kind: "rule" },
} as const;

describe("one set of training defaults", () => {
  it("the command line and the pipeline give the trainer the same options, the stated ones", async () => {
    const steps = 137;
    const cli = trainerOptionsFor(trainRunOptions(await cliDefaults()), steps);
    const pipeline = variantTrainerOptions(parseRunConfig(paper), steps);
    const stated = {
      mode: "lora",
      lora: { rank: 8, alpha: 32, targets: ["q", "k", "v", "o", "gate", "up", "down"], seed: 0 },
      optimizer: { lr: 2e-4, warmupSteps: 10, schedule: "cosine", totalSteps: steps, weightDecay: 0, clipGradNorm: 1 },
      microBatchTokens: 512,
    };
    expect(cli).toEqual(stated);
    expect(pipeline).toEqual(stated);
    const c = parseRunConfig(paper);
    expect([c.train.epochs, c.train.batchSize, c.train.alpha, c.train.beta]).toEqual([5, 32, 0.7, 0.3]);
  });

  it("auto warmup is a tenth of a short run, at most 10 steps; an explicit one is kept", () => {
    const o = (warmupSteps: number | "auto", steps: number) =>
      variantTrainerOptions(parseRunConfig({ ...paper, train: { warmupSteps } }), steps).optimizer!.warmupSteps;
    expect([o("auto", 25), o("auto", 100), o("auto", 5000), o(0, 100), o(3, 100)]).toEqual([3, 10, 10, 0, 3]);
  });
});
