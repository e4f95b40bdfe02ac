// Learning-rate schedules as small pure functions of the optimizer step (0-based): linear warmup
// to the peak, then constant, linear decay or cosine decay to `minLrRatio`·peak at `totalSteps`.
// Generic, so the engine owns it: the Trainer takes a schedule among its options and computes each
// update's rate from its own step count (restored with a checkpoint), rather than taking a rate
// per step from its caller.

export type ScheduleKind = "constant" | "linear" | "cosine";

export interface ScheduleOptions {
  lr: number;
  warmupSteps: number;
  schedule: ScheduleKind;
  /** Needed by linear/cosine; steps past it stay at the floor. */
  totalSteps?: number;
  /** Floor of the decay as a fraction of the peak (default 0.1). */
  minLrRatio?: number;
}

/** Learning rate for optimizer step `step` (the first update is step 0). */
export function learningRate(step: number, o: ScheduleOptions): number {
  if (o.warmupSteps > 0 && step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  if (o.schedule === "constant" || !o.totalSteps || o.totalSteps <= o.warmupSteps) return o.lr;
  const floor = o.lr * (o.minLrRatio ?? 0.1);
  const progress = Math.min(1, (step - o.warmupSteps) / (o.totalSteps - o.warmupSteps));
  const shape = o.schedule === "linear" ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
  return floor + (o.lr - floor) * shape;
}
