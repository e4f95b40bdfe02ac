// The reusable training loop: epochs over tokenized samples in a seeded order, batches of
// `batchSize` samples (one optimizer update each; the trainer packs them into micro-batches by
// token budget), a JSON line per step in the log, a checkpoint every N steps, and exact resume.
//
// Resume is exact because everything that decides the next step is either in the checkpoint
// (parameters, AdamW moments, step count) or a pure function of (seed, epoch, position): the
// sample order of an epoch is a seeded shuffle, and the learning rate is a function of the step.
// A checkpoint is written only after a successful update, so a crash, a kill or a non-finite
// loss leaves the last good checkpoint intact. The checkpoint that closes an epoch is written
// after onEpochEnd has finished, so a run killed inside it (saving an epoch adapter, validating)
// repeats that epoch end on resume instead of skipping it. Callers keep their own running state
// (epoch loss sums, the best validation loss) in the same checkpoint through checkpointState.
import { existsSync, appendFileSync } from "node:fs";
import { keepJsonLines } from "../util/jsonl.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { mulberry32 } from "../util/random.js";
import { issuesOf, rule, throwIssues, type OptionIssue } from "../util/options.js";
import type { TokenizedSample } from "../engine/train-batch.js";

/** What the loop needs from a Trainer (src/engine/trainer.ts). */
export interface LoopTrainer {
  readonly steps: number;
  step(
    samples: readonly TokenizedSample[],
    opts: { alpha: number; beta: number },
  ): Promise<{
    loss: number;
    lossReasoning: number;
    lossRecommendation: number;
    tokens: number;
    gradNorm: number;
    lr: number;
  }>;
  saveCheckpoint(path: string, state: string): Promise<void>;
  loadCheckpoint(path: string): Promise<string>;
}

export interface TrainLoopOptions {
  epochs: number;
  /** Samples per optimizer update. */
  batchSize: number;
  seed: number;
  alpha: number;
  beta: number;
  /** JSON-lines log, one object per step (rewritten up to the checkpoint on resume). */
  logPath?: string;
  checkpointPath?: string;
  /** Steps between checkpoints (default 50); one is also written at the end of every epoch. */
  checkpointEvery?: number;
  /** Continue from checkpointPath when it exists. */
  resume?: boolean;
  /** Stop after this many optimizer steps in total (for tests and time-boxed runs). */
  maxSteps?: number;
  onStep?: (log: StepLog) => void;
  /** Called after each finished epoch (e.g. to save a per-epoch adapter). */
  onEpochEnd?: (epoch: number) => Promise<void>;
  /** The caller's state to store in each checkpoint (JSON-serialisable). */
  checkpointState?: () => unknown;
  /** Called once on resume, before the first step, with what checkpointState returned then. */
  onResume?: (state: unknown, at: { epoch: number; batch: number; steps: number }) => void;
}

export interface StepLog {
  step: number;
  epoch: number;
  loss: number;
  lossReasoning: number;
  lossRecommendation: number;
  gradNorm: number;
  lr: number;
  tokens: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
}

interface LoopState {
  version: 1;
  seed: number;
  epoch: number;
  batch: number;
  samples: number;
  caller?: unknown;
}

/** Steps per epoch for n samples. */
export function stepsPerEpoch(nSamples: number, batchSize: number): number {
  return Math.ceil(nSamples / batchSize);
}

/** A seeded permutation of 0..n-1 (mulberry32 + Fisher–Yates), the same for the same (seed, epoch). */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const rand = mulberry32(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(epoch + 1, 0xc2b2ae35));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** Keeps the log's lines up to and including `step` (a resumed run rewrites what follows). */
function truncateLog(path: string, step: number): void {
  keepJsonLines<{ step?: number }>(path, (l) => l.step! <= step);
}

/** Checkpoint interval when none is given. */
export const DEFAULT_CHECKPOINT_EVERY = 50;

/**
 * What is wrong with the loop's options, keyed by their names here: the one check of epochs,
 * batch size, checkpoint interval, step bound and loss weights, wherever they come from.
 */
export function loopOptionIssues(
  o: Partial<Pick<TrainLoopOptions, "epochs" | "batchSize" | "checkpointEvery" | "maxSteps" | "alpha" | "beta">>,
): OptionIssue[] {
  const issues = issuesOf({
    alpha: [o.alpha, rule.nonNegative],
    beta: [o.beta, rule.nonNegative],
    epochs: [o.epochs, rule.positiveInteger],
    batchSize: [o.batchSize, rule.positiveInteger],
    checkpointEvery: [o.checkpointEvery, rule.positiveInteger],
    maxSteps: [o.maxSteps, rule.positiveInteger],
  });
  // Both weights 0: every token's loss weight is 0 and nothing is learnt.
  if (o.alpha === 0 && o.beta === 0)
    issues.push({ key: "alpha", problem: "must be > 0 when beta is 0 (with both loss weights 0 nothing is learnt)" });
  return issues;
}

const LOOP_WORDS: Record<string, string> = { batchSize: "batch size" };

export async function runTrainingLoop(
  trainer: LoopTrainer,
  samples: readonly TokenizedSample[],
  o: TrainLoopOptions,
): Promise<StepLog[]> {
  if (samples.length === 0) throw new Error("no training samples: the data file is empty");
  throwIssues(loopOptionIssues(o), (k) => LOOP_WORDS[k] ?? k);
  const every = o.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  const perEpoch = stepsPerEpoch(samples.length, o.batchSize);
  let start = { epoch: 0, batch: 0 };
  if (o.resume && o.checkpointPath && existsSync(o.checkpointPath)) {
    const st = JSON.parse(await trainer.loadCheckpoint(o.checkpointPath)) as LoopState;
    if (st.seed !== o.seed || st.samples !== samples.length) {
      throw new Error(
        `the checkpoint ${o.checkpointPath} was made with seed ${st.seed} on ${st.samples} samples; resume with the same data and seed`,
      );
    }
    start = { epoch: st.epoch, batch: st.batch };
    if (o.logPath) truncateLog(o.logPath, trainer.steps);
    o.onResume?.(st.caller, { ...start, steps: trainer.steps });
  } else if (o.logPath) {
    writeFileAtomic(o.logPath, "");
  }
  const logs: StepLog[] = [];
  const t0 = Date.now();
  const saveAt = (epoch: number, batch: number) => {
    if (!o.checkpointPath) return Promise.resolve();
    const state: LoopState = {
      version: 1,
      seed: o.seed,
      epoch,
      batch,
      samples: samples.length,
      ...(o.checkpointState ? { caller: o.checkpointState() } : {}),
    };
    return trainer.saveCheckpoint(o.checkpointPath, JSON.stringify(state));
  };
  for (let epoch = start.epoch; epoch < o.epochs; epoch++) {
    const order = epochOrder(samples.length, o.seed, epoch);
    for (let b = epoch === start.epoch ? start.batch : 0; b < perEpoch; b++) {
      if (o.maxSteps !== undefined && trainer.steps >= o.maxSteps) return logs;
      const batch = order.slice(b * o.batchSize, (b + 1) * o.batchSize).map((i) => samples[i]!);
      const ts = Date.now();
      const r = await trainer.step(batch, { alpha: o.alpha, beta: o.beta });
      const secs = (Date.now() - ts) / 1000;
      const log: StepLog = {
        step: trainer.steps,
        epoch: epoch + (b + 1) / perEpoch,
        loss: r.loss,
        lossReasoning: r.lossReasoning,
        lossRecommendation: r.lossRecommendation,
        gradNorm: r.gradNorm,
        lr: r.lr,
        tokens: r.tokens,
        tokensPerSecond: secs > 0 ? r.tokens / secs : 0,
        elapsedSeconds: (Date.now() - t0) / 1000,
      };
      logs.push(log);
      if (o.logPath) appendFileSync(o.logPath, JSON.stringify(log) + "\n");
      o.onStep?.(log);
      // The epoch's last update is checkpointed below, once its epoch end has run.
      if (b + 1 < perEpoch && trainer.steps % every === 0) await saveAt(epoch, b + 1);
    }
    if (o.onEpochEnd) await o.onEpochEnd(epoch);
    await saveAt(epoch + 1, 0);
  }
  return logs;
}
