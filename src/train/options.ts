// Fine-tuning options: the one table of defaults, the one mapping onto the engine Trainer's
// options, and the check of a run's options, which reports the rules of their owners (the engine
// Trainer's, the training loop's) under the run's option names; `msr-rec train` and the run
// config rename them once more to flags and config fields.
import { DEFAULT_LORA_TARGETS, trainerOptionIssues, type LoraTarget, type TrainerOptions } from "../engine/trainer.js";
import type { ScheduleKind } from "../engine/schedule.js";
import type { TrainDevice } from "../engine/bindings.js";
import { renameIssues, throwIssues, type OptionIssue, type OptionNames } from "../util/options.js";
import { DEFAULT_CHECKPOINT_EVERY, loopOptionIssues, type StepLog } from "./loop.js";

export interface TrainRunOptions {
  model: string;
  data: string;
  /** adapter.gguf (LoRA) or model.gguf (full). */
  out: string;
  mode: "lora" | "full";
  epochs: number;
  batchSize: number;
  alpha: number;
  beta: number;
  lr: number;
  /** Linear warmup steps, or "auto": min(10, ceil(total steps / 10)). */
  warmupSteps: number | "auto";
  schedule: ScheduleKind;
  rank: number;
  loraAlpha: number;
  targets: readonly LoraTarget[];
  seed: number;
  microBatchTokens: number;
  weightDecay: number;
  clipGradNorm: number;
  threads?: number;
  /** "auto" (default): the GPU when the addon has one (the model is then loaded onto it), else the CPU. */
  device?: TrainDevice;
  logPath?: string;
  /** Default: `<out>.ckpt`. */
  checkpointPath?: string;
  checkpointEvery: number;
  resume: boolean;
  maxSteps?: number;
  /** Also write `<out without .gguf>.epoch<N>.gguf` after every epoch. */
  saveEachEpoch: boolean;
  /** Full mode on a quantized model: train F32 copies of its weights (refused without it). */
  dequantize?: boolean;
  onStep?: (log: StepLog, totalSteps: number) => void;
}

/**
 * The one set of fine-tuning defaults, read by `msr-rec train`, the run config's train section and
 * the base stage's pretraining. The paper's: LoRA rank 8, alpha 32, 5 epochs, batch 32, α/β
 * 0.7/0.3. The paper leaves open, and these choose (docs/method.md): LoRA on all seven projections,
 * AdamW at learning rate 2e-4, a cosine decay after a short linear warmup (min(10, a tenth of the
 * steps)), global gradient-norm clipping at 1, no weight decay, 512-token micro-batches. (The engine Trainer's own defaults are neutral where
 * these choose: constant rate, no warmup, no clipping; see src/engine/trainer.ts.)
 */
export const TRAIN_DEFAULTS = {
  mode: "lora" as const,
  epochs: 5,
  batchSize: 32,
  alpha: 0.7,
  beta: 0.3,
  lr: 2e-4,
  warmupSteps: "auto" as number | "auto",
  schedule: "cosine" as ScheduleKind,
  rank: 8,
  loraAlpha: 32,
  targets: DEFAULT_LORA_TARGETS,
  seed: 0,
  microBatchTokens: 512,
  weightDecay: 0,
  clipGradNorm: 1,
  checkpointEvery: DEFAULT_CHECKPOINT_EVERY,
  resume: false,
  saveEachEpoch: false,
};

/** Warmup steps for a run of `totalSteps` updates ("auto": min(10, ceil(totalSteps / 10))). */
export function warmupStepsFor(warmup: number | "auto", totalSteps: number): number {
  return warmup === "auto" ? Math.min(10, Math.ceil(totalSteps / 10)) : warmup;
}

/** What the optimizer and trainer get from the options above: one mapping for both paths. */
export function trainerOptionsFor(
  o: Pick<
    TrainRunOptions,
    | "mode"
    | "rank"
    | "loraAlpha"
    | "targets"
    | "seed"
    | "lr"
    | "warmupSteps"
    | "schedule"
    | "weightDecay"
    | "clipGradNorm"
    | "microBatchTokens"
  >,
  totalSteps: number,
): TrainerOptions {
  return {
    mode: o.mode,
    lora: { rank: o.rank, alpha: o.loraAlpha, targets: o.targets, seed: o.seed },
    optimizer: {
      lr: o.lr,
      warmupSteps: warmupStepsFor(o.warmupSteps, totalSteps),
      schedule: o.schedule,
      totalSteps,
      weightDecay: o.weightDecay,
      clipGradNorm: o.clipGradNorm,
    },
    microBatchTokens: o.microBatchTokens,
  };
}

/** The options a run's check covers: the trainer's and the loop's, under the run's names. */
export type TrainSettings = Pick<
  TrainRunOptions,
  | "mode"
  | "epochs"
  | "batchSize"
  | "alpha"
  | "beta"
  | "lr"
  | "warmupSteps"
  | "schedule"
  | "rank"
  | "loraAlpha"
  | "targets"
  | "seed"
  | "microBatchTokens"
  | "weightDecay"
  | "clipGradNorm"
  | "checkpointEvery"
> &
  Partial<Pick<TrainRunOptions, "device" | "maxSteps">>;

/** The engine Trainer's option paths under the names of TrainRunOptions. */
const TRAINER_KEYS: Record<string, string> = {
  "lora.rank": "rank",
  "lora.alpha": "loraAlpha",
  "lora.targets": "targets",
  "lora.seed": "seed",
  "optimizer.lr": "lr",
  "optimizer.schedule": "schedule",
  "optimizer.warmupSteps": "warmupSteps",
  "optimizer.weightDecay": "weightDecay",
  "optimizer.clipGradNorm": "clipGradNorm",
};

/** What is wrong with a run's options, keyed by TrainRunOptions names. */
export function trainRunOptionIssues(o: TrainSettings): OptionIssue[] {
  const trainer = renameIssues(trainerOptionIssues({ ...trainerOptionsFor(o, 1), device: o.device }), TRAINER_KEYS);
  return [...trainer, ...loopOptionIssues(o)];
}

/** Throws on bad run options, naming them as `name` does (e.g. as command-line flags). */
export function checkTrainRunOptions(o: TrainSettings, name?: OptionNames): void {
  throwIssues(trainRunOptionIssues(o), name);
}
