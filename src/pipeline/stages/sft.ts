// SFT stage: reasoning records (kept paths and behavior-only fallbacks) and the behavior data →
// {prompt, reasoning, recommendation} samples for the trainer, one file per split.
import { readFileSync } from "node:fs";
import { loadTemplates } from "../../prompts/templates.js";
import { sampleFor } from "../../prompts/dataset.js";
import type { ReasoningRecord } from "../../teacher/synthesize.js";
import { parseChain, STEP_NAMES } from "../../teacher/prune.js";
import { writeFileAtomic } from "../../util/atomic-write.js";
import { parseJsonLines, toJsonLines } from "../../util/jsonl.js";
import { runLayout } from "../../run/layout.js";
import type { RunConfig } from "../config.js";
import { loadRunDataset, trainCatalog, trainingPrompt, type SftSample } from "../run-data.js";
import type { StageContext, StageSpec } from "../stages.js";

/** Keeps the configured steps of a teacher reasoning (steps 1–4 under uniform headers). */
export function selectReasoningSteps(reasoning: string, keep: readonly number[]): string {
  if (keep.length === 4 && [1, 2, 3, 4].every((s) => keep.includes(s))) return reasoning;
  const { steps } = parseChain(reasoning);
  return [...keep]
    .sort((a, b) => a - b)
    .filter((s) => steps[s - 1])
    .map((s) => `Step ${s} - ${STEP_NAMES[s - 1]}: ${steps[s - 1]}`)
    .join("\n");
}

/** SFT stage: reasoning records (kept paths and behavior-only fallbacks) → trainer samples. */
export async function sftStage(c: RunConfig): Promise<void> {
  const L = runLayout(c.runDir);
  const ds = loadRunDataset(c);
  const templates = loadTemplates();
  const records = parseJsonLines<ReasoningRecord>(readFileSync(L.reasoning, "utf8"), L.reasoning);
  const byUser = new Map(ds.users.map((u) => [u.user, u]));
  const bySplit = { train: [] as SftSample[], valid: [] as SftSample[] };
  for (const r of records) {
    if (r.split !== "train" && r.split !== "valid") continue;
    const u = byUser.get(r.user);
    if (!u) throw new Error(`${L.reasoning}: user ${r.user} is not in the dataset; re-run the synthesize stage`);
    const s = sampleFor(u, r.split, c.dataset.historyLength, trainCatalog(c, ds), r.position);
    const reasoning = r.reasoning ? selectReasoningSteps(r.reasoning, c.train.reasoningSteps) : "";
    bySplit[r.split].push({
      user: r.user,
      ...(r.position !== undefined ? { position: r.position } : {}),
      prompt: trainingPrompt(ds, templates, s),
      reasoning,
      recommendation: r.recommendation,
    });
  }
  if (bySplit.train.length === 0)
    throw new Error(`${L.reasoning} has no training records; re-run the synthesize stage`);
  writeFileAtomic(L.sftSplit("train"), toJsonLines(bySplit.train));
  writeFileAtomic(L.sftSplit("valid"), toJsonLines(bySplit.valid));
}

export function readSftSamples(c: RunConfig, split: "train" | "valid"): SftSample[] {
  const p = runLayout(c.runDir).sftSplit(split);
  return parseJsonLines<SftSample>(readFileSync(p, "utf8"), p);
}

export function sftSpec({ c }: StageContext): StageSpec {
  return {
    stage: "sft",
    inputs: {
      history: c.dataset.historyLength,
      steps: c.train.reasoningSteps,
      ...(c.train.positions !== "last" ? { positions: c.train.positions } : {}),
    },
    outputs: ["sft"],
    run: () => sftStage(c),
  };
}
