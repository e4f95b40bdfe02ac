// The synthesize stage split over processes or machines (`msr-rec pipeline --only synthesize
// --shard i/N|auto`, then `--merge`). A shard asks the teacher for its users only and keeps the
// answers in teacher/shards/shard-i-of-N/answers.jsonl. The merge copies every shard's answers
// into the run's own store and then runs the stage as usual: every prompt is found answered, so
// nothing is paid twice and the result is exactly the single-process run's.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { datasetFiles } from "../data/dataset.js";
import { defaultTemplatesDir } from "../prompts/templates.js";
import { AnswerStore, parseStoreText } from "../teacher/store.js";
import { runLayout } from "../run/layout.js";
import type { RunConfig } from "./config.js";

/** The folder of the stage's shard-i-of-N folders (util/shard-folders.ts). */
export function synthesisShardsRoot(runDir: string): string {
  return join(runLayout(runDir).teacher, "shards");
}

/** The files a shard's answers depend on besides the config: the dataset, the teacher template, a local teacher's model. */
export function synthesisInputFiles(c: RunConfig): Record<string, string> {
  const files: Record<string, string> = {
    ...datasetFiles(runLayout(c.runDir).dataset),
    "teacher template": join(defaultTemplatesDir(), "teacher.txt"),
  };
  if (c.teacher.kind === "local" && c.teacher.model) files["teacher model"] = c.teacher.model;
  return files;
}

/** Copies the answers of the finished shards in `dirs` into teacher/answers.jsonl; returns how many were new. */
export function copyShardAnswers(runDir: string, dirs: readonly string[]): number {
  const store = AnswerStore.open(join(runLayout(runDir).teacher, "answers.jsonl"));
  let added = 0;
  try {
    for (const dir of dirs) {
      const file = join(dir, "answers.jsonl");
      if (!existsSync(file)) continue; // a shard without users asks nothing
      for (const a of parseStoreText(readFileSync(file, "utf8"), file).answers) {
        if (store.get(a.key)) continue;
        store.append(a);
        added++;
      }
    }
  } finally {
    store.close();
  }
  return added;
}
