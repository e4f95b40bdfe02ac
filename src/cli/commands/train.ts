// `msr-rec train`: LoRA (or full) fine-tuning on SFT JSON lines with the α·reasoning +
// β·recommendation loss; per-step JSON log, progress bar, checkpoints and --resume.
// The work is in src/train/run.ts.
import type { Command } from "commander";
import { ProgressBar } from "../../util/progress.js";
import { runTraining, TRAIN_DEFAULTS, type TrainRunOptions } from "../../train/run.js";
import { DEFAULT_LORA_TARGETS, type LoraTarget } from "../../engine/trainer.js";
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

function num(v: string, flag: string, { int = false, min = -Infinity } = {}): number {
  const n = Number(v);
  if (!Number.isFinite(n) || (int && !Number.isInteger(n)) || n < min) {
    throw new Error(`${flag} must be ${int ? "an integer" : "a number"}${min > -Infinity ? ` >= ${min}` : ""}, got "${v}"`);
  }
  return n;
}

/** The command line's options as the training run takes them (validated). */
export function trainRunOptions(o: TrainCliOptions): TrainRunOptions {
  if (o.mode !== "lora" && o.mode !== "full") throw new Error(`--mode must be lora or full, got "${o.mode}"`);
  if (!["auto", "cpu", "gpu"].includes(o.device)) throw new Error(`--device must be auto, cpu or gpu, got "${o.device}"`);
  if (!["constant", "linear", "cosine"].includes(o.schedule)) throw new Error(`--schedule must be constant, linear or cosine, got "${o.schedule}"`);
  const targets = o.targets.split(",").map((t) => t.trim()).filter(Boolean);
  for (const t of targets) {
    if (!DEFAULT_LORA_TARGETS.includes(t as LoraTarget)) throw new Error(`--targets: unknown target "${t}" (use ${DEFAULT_LORA_TARGETS.join(",")})`);
  }
  return {
    model: o.model,
    data: o.data,
    out: o.out,
    mode: o.mode,
    epochs: num(o.epochs, "--epochs", { int: true, min: 1 }),
    batchSize: num(o.batch, "--batch", { int: true, min: 1 }),
    alpha: num(o.alpha, "--alpha", { min: 0 }),
    beta: num(o.beta, "--beta", { min: 0 }),
    lr: num(o.lr, "--lr", { min: 0 }),
    warmupSteps: o.warmup === "auto" ? "auto" : num(o.warmup, "--warmup", { int: true, min: 0 }),
    schedule: o.schedule as ScheduleKind,
    rank: num(o.rank, "--rank", { int: true, min: 1 }),
    loraAlpha: num(o.loraAlpha, "--lora-alpha", { min: 0 }),
    targets: targets as LoraTarget[],
    seed: num(o.seed, "--seed", { int: true, min: 0 }),
    microBatchTokens: num(o.microBatchTokens, "--micro-batch-tokens", { int: true, min: 1 }),
    weightDecay: num(o.weightDecay, "--weight-decay", { min: 0 }),
    clipGradNorm: num(o.clip, "--clip", { min: 0 }),
    threads: o.threads ? num(o.threads, "--threads", { int: true, min: 1 }) : undefined,
    device: o.device as TrainDevice,
    logPath: o.log,
    checkpointPath: o.checkpoint,
    checkpointEvery: num(o.checkpointEvery, "--checkpoint-every", { int: true, min: 1 }),
    resume: !!o.resume,
    maxSteps: o.maxSteps ? num(o.maxSteps, "--max-steps", { int: true, min: 1 }) : undefined,
    saveEachEpoch: !!o.saveEachEpoch,
    dequantize: !!o.dequantize,
  };
}

export async function runTrainCli(o: TrainCliOptions): Promise<void> {
  let bar: ProgressBar | undefined;
  const { out } = await runTraining({
    ...trainRunOptions(o),
    onStep: (l, total) => {
      bar ??= new ProgressBar("train", total);
      bar.tick(1, { loss: l.loss, rea: l.lossReasoning, rec: l.lossRecommendation, "tok/s": l.tokensPerSecond, lr: l.lr });
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
