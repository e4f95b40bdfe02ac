// `msr-rec train`: LoRA (or full) fine-tuning on SFT JSON lines with the α·reasoning +
// β·recommendation loss; per-step JSON log, progress bar, checkpoints and --resume.
// The work is in src/train/run.ts.
import type { Command } from "commander";
import { ProgressBar } from "../../util/progress.js";
import { runTraining } from "../../train/run.js";
import { checkTrainRunOptions, TRAIN_DEFAULTS, type TrainRunOptions } from "../../train/options.js";
import type { LoraTarget } from "../../engine/trainer.js";
import { issuesOf, rule, throwIssues } from "../../util/options.js";
import { flagNames, numberArg } from "../parse.js";
import type { ScheduleKind } from "../../engine/schedule.js";
import type { TrainDevice } from "../../engine/bindings.js";

export interface TrainCliOptions {
  model: string;
  data: string;
  out: string;
  mode: string;
  epochs: string;
  batch: string;
  alpha: string;
  beta: string;
  lr: string;
  warmup: string;
  schedule: string;
  rank: string;
  loraAlpha: string;
  targets: string;
  seed: string;
  microBatchTokens: string;
  weightDecay: string;
  clip: string;
  threads?: string;
  device: string;
  log?: string;
  checkpoint?: string;
  checkpointEvery: string;
  resume?: boolean;
  maxSteps?: string;
  saveEachEpoch?: boolean;
  dequantize?: boolean;
}

/** The run option each flag sets, where the flag is not the option's name in kebab case. */
const FLAGS = { batchSize: "--batch", warmupSteps: "--warmup", clipGradNorm: "--clip" };

/** The command line's options as the training run takes them, checked by their owners' rules. */
export function trainRunOptions(o: TrainCliOptions): TrainRunOptions {
  const opts: TrainRunOptions = {
    model: o.model,
    data: o.data,
    out: o.out,
    mode: o.mode as TrainRunOptions["mode"],
    epochs: numberArg(o.epochs),
    batchSize: numberArg(o.batch),
    alpha: numberArg(o.alpha),
    beta: numberArg(o.beta),
    lr: numberArg(o.lr),
    warmupSteps: o.warmup === "auto" ? "auto" : numberArg(o.warmup),
    schedule: o.schedule as ScheduleKind,
    rank: numberArg(o.rank),
    loraAlpha: numberArg(o.loraAlpha),
    targets: o.targets
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean) as LoraTarget[],
    seed: numberArg(o.seed),
    microBatchTokens: numberArg(o.microBatchTokens),
    weightDecay: numberArg(o.weightDecay),
    clipGradNorm: numberArg(o.clip),
    threads: numberArg(o.threads),
    device: o.device as TrainDevice,
    logPath: o.log,
    checkpointPath: o.checkpoint,
    checkpointEvery: numberArg(o.checkpointEvery),
    resume: !!o.resume,
    maxSteps: numberArg(o.maxSteps),
    saveEachEpoch: !!o.saveEachEpoch,
    dequantize: !!o.dequantize,
  };
  checkTrainRunOptions(opts, flagNames(FLAGS));
  // --threads sets the model's thread count (loadModel), not a trainer option.
  throwIssues(issuesOf({ threads: [opts.threads, rule.positiveInteger] }), flagNames());
  return opts;
}

export async function runTrainCli(o: TrainCliOptions): Promise<void> {
  let bar: ProgressBar | undefined;
  const { out } = await runTraining({
    ...trainRunOptions(o),
    onStep: (l, total) => {
      bar ??= new ProgressBar("train", total);
      bar.tick(1, {
        loss: l.loss,
        rea: l.lossReasoning,
        rec: l.lossRecommendation,
        "tok/s": l.tokensPerSecond,
        lr: l.lr,
      });
    },
  });
  bar?.finish();
  process.stdout.write(`wrote ${out}\n`);
}

export function register(program: Command): void {
  const d = TRAIN_DEFAULTS;
  program
    .command("train")
    .description("fine-tune a LLaMA-family GGUF on SFT JSON lines (loss = alpha·reasoning + beta·recommendation)")
    .requiredOption("--model <file>", "base model .gguf")
    .requiredOption("--data <file>", 'SFT JSON lines {"prompt","reasoning","recommendation"}')
    .requiredOption("--out <file>", "adapter .gguf (lora) or model .gguf (full)")
    .option("--mode <mode>", "lora | full", d.mode)
    .option("--epochs <n>", "epochs", String(d.epochs))
    .option("--batch <n>", "samples per optimizer step", String(d.batchSize))
    .option("--alpha <x>", "weight of the reasoning loss", String(d.alpha))
    .option("--beta <x>", "weight of the recommendation loss", String(d.beta))
    .option("--lr <x>", "peak learning rate", String(d.lr))
    .option("--warmup <n>", "warmup steps (auto: min(10, a tenth of all steps))", String(d.warmupSteps))
    .option("--schedule <kind>", "constant | linear | cosine", d.schedule)
    .option("--rank <n>", "LoRA rank", String(d.rank))
    .option("--lora-alpha <x>", "LoRA alpha (scale = alpha / rank)", String(d.loraAlpha))
    .option("--targets <list>", "LoRA targets", d.targets.join(","))
    .option("--seed <n>", "seed for the LoRA init and the sample order", String(d.seed))
    .option("--micro-batch-tokens <n>", "tokens per packed micro-batch", String(d.microBatchTokens))
    .option("--weight-decay <x>", "AdamW decoupled weight decay", String(d.weightDecay))
    .option("--clip <x>", "clip the global gradient norm (0 = off)", String(d.clipGradNorm))
    .option("--threads <n>", "CPU threads")
    .option("--device <d>", "auto | cpu | gpu (auto: the GPU when the addon was built with CUDA)", "auto")
    .option("--log <file>", "per-step JSON lines log")
    .option("--checkpoint <file>", "checkpoint path (default <out>.ckpt)")
    .option("--checkpoint-every <n>", "steps between checkpoints", String(d.checkpointEvery))
    .option("--resume", "continue from the checkpoint if it exists")
    .option("--max-steps <n>", "stop after this many optimizer steps")
    .option("--save-each-epoch", "also write <out>.epochN.gguf after every epoch")
    .option("--dequantize", "full mode on a quantized model: train (and write) F32 copies of its weights")
    .action(async (opts: TrainCliOptions) => runTrainCli(opts));
}
