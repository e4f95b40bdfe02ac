// Where each artifact lives inside a run folder. One place, below the pipeline and the report, so
// the stages, the CLI commands and the report agree on paths.
import { join } from "node:path";

/** The inference variant of the reinforcement-refined adapter (the rl stage's output). */
export const RL_VARIANT = "msr-grpo";

export const runLayout = (runDir: string) => ({
  config: join(runDir, "config.json"),
  dataset: join(runDir, "dataset"),
  base: join(runDir, "base"),
  baseModel: join(runDir, "base", "model.gguf"),
  catalogText: join(runDir, "base", "catalog.txt"),
  teacher: join(runDir, "teacher"),
  reasoning: join(runDir, "teacher", "reasoning.jsonl"),
  sft: join(runDir, "sft"),
  sftSplit: (split: "train" | "valid") => join(runDir, "sft", `${split}.jsonl`),
  train: join(runDir, "train"),
  // The rl stage's adapter is the "msr-grpo" variant's (src/pipeline/variants.ts).
  adapter: (variant: string) =>
    variant === RL_VARIANT ? join(runDir, "rl", "adapter.gguf") : join(runDir, "train", variant, "adapter.gguf"),
  rl: join(runDir, "rl"),
  rlCheckpoint: join(runDir, "rl", "trainer.ckpt"),
  rlLog: join(runDir, "rl.jsonl"),
  trainLog: join(runDir, "train.jsonl"),
  infer: join(runDir, "infer"),
  inferOutputs: (variant: string) => join(runDir, "infer", `${variant}.jsonl`),
  metrics: join(runDir, "metrics.json"),
  results: join(runDir, "results.md"),
  predictions: join(runDir, "predictions.jsonl"),
  report: join(runDir, "report.html"),
});

export type RunLayout = ReturnType<typeof runLayout>;
