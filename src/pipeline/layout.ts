// Where each artifact lives inside a run folder. One place, so the stages, the CLI commands and
// the report agree on paths.
import { join } from "node:path";

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
  adapter: (variant: string) => join(runDir, "train", variant, "adapter.gguf"),
  trainLog: join(runDir, "train.jsonl"),
  infer: join(runDir, "infer"),
  inferOutputs: (variant: string) => join(runDir, "infer", `${variant}.jsonl`),
  inferShard: (variant: string, i: number, n: number) => join(runDir, "infer", "shards", `${variant}.${i}-of-${n}.jsonl`),
  metrics: join(runDir, "metrics.json"),
  results: join(runDir, "results.md"),
  predictions: join(runDir, "predictions.jsonl"),
  report: join(runDir, "report.html"),
});

export type RunLayout = ReturnType<typeof runLayout>;

/** Reads a JSON-lines file into values (blank lines skipped); names the file and line on bad JSON. */
export function parseJsonLines<T>(text: string, path: string): T[] {
  const out: T[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      throw new Error(`${path}:${i + 1}: not valid JSON (${(e as Error).message}); delete the file and re-run its stage`);
    }
  });
  return out;
}

export function toJsonLines(values: readonly unknown[]): string {
  return values.length ? values.map((v) => JSON.stringify(v)).join("\n") + "\n" : "";
}
