// The teacher zero-shot row (the paper's DeepSeek-R1 row): the teacher's first stored answer for
// each test user (attempt 0, before any pruning or retry), its recommendation read as the
// student's is (Step 5, see teacherRecommendation) and judged by the same title rules. No call is
// made here: the synthesize stage stored these answers as references for the reasoning metrics.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sampleFor, type PreparedDataset } from "../prompts/dataset.js";
import { teacherRecommendation } from "../teacher/prune.js";
import { parseStoreText } from "../teacher/store.js";
import { answerKey } from "../teacher/synthesize.js";
import { metricsRowOf, type MetricsRow } from "../run/results.js";
import { runLayout } from "../run/layout.js";
import type { RunConfig } from "./config.js";

/** The teacher row over `users`, or why there is none. */
export function teacherRow(
  c: RunConfig,
  ds: PreparedDataset,
  users: PreparedDataset["users"],
): { row: MetricsRow } | { skipped: string } {
  const store = join(runLayout(c.runDir).teacher, "answers.jsonl");
  if (!existsSync(store)) return { skipped: `teacher zero-shot row: no stored teacher answers (${store})` };
  const answers = new Map(parseStoreText(readFileSync(store, "utf8"), store).answers.map((a) => [a.key, a]));
  const outcomes = users.map((u) => {
    const s = sampleFor(u, "test", c.dataset.historyLength);
    const a = answers.get(answerKey(s, 0));
    return {
      answer: a ? teacherRecommendation(a.content) : "",
      candidates: s.candidates.map((id) => ds.items.get(id)?.title ?? id),
      target: s.targetIndex,
      found: a !== undefined,
    };
  });
  const found = outcomes.filter((o) => o.found).length;
  if (found === 0) return { skipped: `teacher zero-shot row: ${store} holds no test-split answers` };
  const model = [...answers.values()][0]!.model;
  const notes = [
    `the teacher's first stored answer per test user (${model}), Step 5 judged by the same title rules; the paper's DeepSeek-R1 row`,
  ];
  if (c.teacher.kind === "rule") notes.push("the rule teacher is not an LLM");
  if (found < users.length) notes.push(`${users.length - found} users without a stored answer count as invalid`);
  return {
    row: { ...metricsRowOf(`Teacher zero-shot (${model})`, "baseline", outcomes), note: notes.join("; ") },
  };
}
