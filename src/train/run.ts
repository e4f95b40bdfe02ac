// One training run from files: load the model, read and tokenize the SFT data, run the loop with
// checkpoints and a JSON-lines log, and write the adapter (LoRA) or the model (full). Used by
// `msr-rec train` and by the pipeline.
import { existsSync } from "node:fs";
import { loadModel } from "../engine/model.js";
import { openTrainer, type LoraTarget, type Trainer, type TrainerOptions, DEFAULT_LORA_TARGETS } from "../engine/trainer.js";
import type { ScheduleKind } from "../engine/schedule.js";
import type { TrainDevice } from "../engine/bindings.js";
import { runTrainingLoop, stepsPerEpoch, type StepLog } from "./loop.js";
import { readSftJsonl } from "./sft-data.js";
import { modelSampleTokenizer, tokenizeSamples } from "./samples.js";

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
 * The one set of fine-tuning defaults, for `msr-rec train` and the pipeline's train stage alike
 * (the pipeline config's train section defaults to these). The paper's: LoRA rank 8, alpha 32 on
 * every projection, 5 epochs, batch 32, α/β 0.7/0.3, AdamW at 2e-4. The paper leaves open, and
 * these choose: a cosine decay after a short linear warmup (min(10, a tenth of the steps)),
 * global gradient-norm clipping at 1, no weight decay, 512-token micro-batches.
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
  checkpointEvery: 50,
  resume: false,
  saveEachEpoch: false,
};

/** Warmup steps for a run of `totalSteps` updates ("auto": min(10, ceil(totalSteps / 10))). */
export function warmupStepsFor(warmup: number | "auto", totalSteps: number): number {
  return warmup === "auto" ? Math.min(10, Math.ceil(totalSteps / 10)) : warmup;
}

/** What the optimizer and trainer get from the options above: one mapping for both paths. */
export function trainerOptionsFor(
  o: Pick<TrainRunOptions, "mode" | "rank" | "loraAlpha" | "targets" | "seed" | "lr" | "warmupSteps" | "schedule" | "weightDecay" | "clipGradNorm" | "microBatchTokens">,
  totalSteps: number,
): TrainerOptions {
  return {
    mode: o.mode,
    lora: { rank: o.rank, alpha: o.loraAlpha, targets: o.targets, seed: o.seed },
    optimizer: { lr: o.lr, warmupSteps: warmupStepsFor(o.warmupSteps, totalSteps), schedule: o.schedule, totalSteps, weightDecay: o.weightDecay, clipGradNorm: o.clipGradNorm },
    microBatchTokens: o.microBatchTokens,
  };
}

export async function runTraining(o: TrainRunOptions): Promise<{ logs: StepLog[]; out: string }> {
  if (!existsSync(o.model)) throw new Error(`--model: no model file at ${o.model}`);
  const records = readSftJsonl(o.data);
  const device = o.device ?? "auto";
  // Offloading every layer is a no-op without a GPU backend, so "auto" trains on the CPU there.
  // repack: false: the trainer uses quantized weights in place instead of copying repacked ones.
  const model = await loadModel(o.model, { ...(o.threads ? { threads: o.threads } : {}), gpuLayers: device === "cpu" ? 0 : 999, repack: false });
  const totalSteps = o.epochs * stepsPerEpoch(records.length, o.batchSize);
  let trainer: Trainer;
  try {
    // Built off the JS thread: a progress bar or a host application keeps running meanwhile.
    trainer = await openTrainer(model, { ...trainerOptionsFor(o, totalSteps), device, ...(o.dequantize ? { dequantize: true } : {}) });
  } catch (e) {
    model.dispose();
    // The engine's refusal names the library option; say the command line's too.
    if (e instanceof Error && /dequantize: true/.test(e.message)) throw new Error(`${e.message} (msr-rec train: --dequantize)`);
    throw e;
  }
  try {
    const samples = tokenizeSamples(modelSampleTokenizer(model), records);
    const save = (path: string) => (o.mode === "lora" ? trainer.saveAdapter(path) : trainer.saveModel(path));
    const logs = await runTrainingLoop(trainer, samples, {
      epochs: o.epochs,
      batchSize: o.batchSize,
      seed: o.seed,
      alpha: o.alpha,
      beta: o.beta,
      logPath: o.logPath,
      checkpointPath: o.checkpointPath ?? `${o.out}.ckpt`,
      checkpointEvery: o.checkpointEvery,
      resume: o.resume,
      maxSteps: o.maxSteps,
      onStep: (l) => o.onStep?.(l, totalSteps),
      onEpochEnd: o.saveEachEpoch ? (e) => save(o.out.replace(/\.gguf$/i, "") + `.epoch${e + 1}.gguf`) : undefined,
    });
    await save(o.out);
    return { logs, out: o.out };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}
