// The epoch loop the base and train stages share: the trainer's seeded loop with a progress bar,
// each epoch's mean training loss, and checkpoints that carry the caller's own state.
import type { Trainer } from "../engine/trainer.js";
import { ProgressBar } from "../util/progress.js";
import { runTrainingLoop, stepsPerEpoch, type StepLog } from "../train/loop.js";
import type { TokenizedSample } from "../engine/train-batch.js";

export interface EpochLoopOptions {
  epochs: number;
  batchSize: number;
  alpha: number;
  beta: number;
  seed: number;
  label: string;
  quiet?: boolean;
  onStep?: (epoch: number, r: StepLog) => void;
  /** Called after each epoch (1-based) with its mean training loss. */
  onEpoch: (epoch: number, trainLoss: number) => Promise<void>;
  /** Checkpoint every `every` steps and at each epoch end to `path`, and continue from it when it exists. */
  checkpoint?: {
    path: string;
    every: number;
    /** The caller's state saved with each checkpoint. */
    state: () => unknown;
    /** Gets that state back on resume, with the optimizer step the run continues after. */
    restore: (state: unknown, steps: number) => void;
  };
}

/** The trainer's loop (seeded epoch order, one update per batch) with a progress bar and epoch means. */
export async function runEpochs(
  trainer: Trainer,
  tokenized: readonly TokenizedSample[],
  o: EpochLoopOptions,
): Promise<void> {
  const perEpoch = stepsPerEpoch(tokenized.length, o.batchSize);
  let bar: ProgressBar | null = null;
  // The running mean of the epoch's loss travels in the checkpoint, so a resumed epoch reports
  // the mean over all its steps.
  let sum = 0,
    n = 0,
    resumedBatch = 0;
  const ck = o.checkpoint;
  await runTrainingLoop(trainer, tokenized, {
    epochs: o.epochs,
    batchSize: o.batchSize,
    seed: o.seed,
    alpha: o.alpha,
    beta: o.beta,
    ...(ck
      ? {
          checkpointPath: ck.path,
          checkpointEvery: ck.every,
          resume: true,
          checkpointState: () => ({ sum, n, caller: ck.state() }),
          onResume: (st, at) => {
            const r = (st ?? {}) as { sum?: number; n?: number; caller?: unknown };
            [sum, n, resumedBatch] = [r.sum ?? 0, r.n ?? 0, at.batch];
            ck.restore(r.caller, at.steps);
          },
        }
      : {}),
    onStep: (log) => {
      const epoch = Math.ceil(log.epoch - 1e-9);
      if (!bar && !o.quiet) bar = new ProgressBar(`${o.label} epoch ${epoch}/${o.epochs}`, perEpoch - resumedBatch);
      resumedBatch = 0;
      bar?.tick(1, { loss: log.loss, "tok/s": log.tokensPerSecond });
      sum += log.loss;
      n++;
      o.onStep?.(epoch, log);
    },
    onEpochEnd: async (epoch) => {
      (bar as ProgressBar | null)?.finish();
      bar = null;
      const mean = n > 0 ? sum / n : Number.NaN;
      sum = 0;
      n = 0;
      await o.onEpoch(epoch + 1, mean);
    },
  });
}
