// Shapes of the run's result files (metrics.json, predictions.jsonl, train.jsonl) and the
// Table-2-style results.md renderer. Below the pipeline and the report, which both use them.

import { recommendationMetrics, type RecommendationOutcome } from "../eval/metrics.js";

export type RowKind = "baseline" | "msr" | "ablation" | "sweep";

/** One row of metrics.json. HitRatio@1 is hits/all (LLaRA's published numbers); hitRatioValid is hits/valid. */
export interface MetricsRow {
  name: string;
  kind: RowKind;
  users: number;
  hits: number;
  valid: number;
  hitRatio: number;
  hitRatioValid: number;
  validRatio: number;
  /** Longest-match resolution of titles that contain each other. */
  strictHitRatio?: number;
  /** Mean over every user with a reference; a missing reasoning scores 0. */
  meteor?: number;
  /** The same over the users with a reasoning only. */
  meteorValid?: number;
  /** Rescaled F1, mean over every user with a reference (a missing reasoning scores F1 = 0 rescaled), one baseline for all rows. */
  bertscore?: number;
  bertscoreValid?: number;
  /** Mean over the users with a reasoning (a log-probability: 0 would be its best value; see GPTSCORE_NOTE). */
  gptscore?: number;
  /** Users with a reasoning and a reference / users with a reference. */
  reasoningUsers?: number;
  referenceUsers?: number;
  alpha?: number;
  beta?: number;
  note?: string;
}

/** A row's HitRatio@1 / ValidRatio columns from its users' outcomes (every user in the denominator). */
export function metricsRowOf(name: string, kind: RowKind, outcomes: readonly RecommendationOutcome[]): MetricsRow {
  const m = recommendationMetrics(outcomes);
  return {
    name,
    kind,
    users: m.users,
    hits: m.hits,
    valid: m.valid,
    hitRatio: m.hitRatioAll,
    hitRatioValid: m.hitRatioValid,
    validRatio: m.validRatio,
    strictHitRatio: m.strict.hitRatioAll,
  };
}

export interface MetricsFile {
  dataset: string;
  users: number;
  rows: MetricsRow[];
  /** What the run did not compute, and why (budget, toggles, missing models). */
  skipped: string[];
}

export interface SidePrediction {
  /** The reasoning text (between the markers when present, else the text before the answer). */
  reasoning: string;
  /** The raw generated text. */
  text: string;
  choice: string | null;
  /** PPL of the reasoning tokens. */
  ppl: number;
  /** PPL of the reasoning and answer tokens (literal Eq. 3), when computed. */
  pplOutput?: number;
}

/** One line of predictions.jsonl. */
export interface PredictionRecord {
  user: string;
  groundTruth: string;
  candidates: string[];
  user_side: SidePrediction;
  item_side: SidePrediction;
  /** This project's fusion rule. */
  fused: { side: "user" | "item" | null; choice: string | null; case: string };
  /** The literal Eq. 3 (PPL of reasoning and answer), when that row ran. */
  eq3?: { side: "user" | "item" | null; choice: string | null; case: string };
  /** Eq. 3 over the grammar-constrained answers (same reasonings and PPLs), when that row ran. */
  constrained?: { side: "user" | "item" | null; choice: string | null; case: string };
  hit: boolean;
}

/** One line of train.jsonl (the loss log). */
export type TrainLogLine =
  | {
      type: "step";
      variant: string;
      epoch: number;
      step: number;
      loss: number;
      lossRea?: number;
      lossRec?: number;
      tokens?: number;
    }
  | {
      type: "epoch";
      variant: string;
      epoch: number;
      trainLoss: number;
      validLoss: number;
      validHitRatio: number;
      validRecNll?: number;
      best: boolean;
    };

/**
 * GPTScore (Fu et al. 2023, and their code: the negated mean token NLL) is a mean log-probability,
 * at most 0. The paper reports 22–92 without saying how; no scale follows from the definition.
 */
export const GPTSCORE_NOTE =
  "GPTScore is Fu et al.'s definition, the mean token log-probability of the reasoning under the evaluator model (at most 0, higher is better): not comparable with the paper's 22–92, whose scale neither paper defines";

function num(v: number | undefined, digits = 4): string {
  return v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits);
}

const KIND_TITLE: Record<RowKind, string> = {
  baseline: "Baselines",
  msr: "MSR-Rec",
  ablation: "Ablations (Table 4)",
  sweep: "α/β sweep (Figure 6)",
};

/** results.md: one table per row kind, Table-2 columns plus reasoning-quality columns. */
export function renderResultsMarkdown(m: MetricsFile): string {
  const out: string[] = [`# Results: ${m.dataset} (${m.users} test users)`, ""];
  out.push(
    "HitRatio@1 = hits / all users (LLaRA's published definition); HR@1 (valid) = hits / valid answers (LLaRA code's `test_hr`).",
    "",
  );
  out.push(`GPTScore (log-prob): ${GPTSCORE_NOTE}.`, "");
  for (const kind of ["baseline", "msr", "ablation", "sweep"] as RowKind[]) {
    const rows = m.rows.filter((r) => r.kind === kind);
    if (rows.length === 0) continue;
    out.push(`## ${KIND_TITLE[kind]}`, "");
    out.push(
      "| model | HitRatio@1 | HR@1 (valid) | ValidRatio | strict HR@1 | METEOR | BERTScore | GPTScore (log-prob, not comparable) | note |",
    );
    out.push("|---|---|---|---|---|---|---|---|---|");
    for (const r of rows) {
      out.push(
        `| ${r.name} | ${num(r.hitRatio)} | ${num(r.hitRatioValid)} | ${num(r.validRatio)} | ${num(r.strictHitRatio)} | ${num(r.meteor)} | ${num(r.bertscore)} | ${num(r.gptscore, 3)} | ${r.note ?? ""} |`,
      );
    }
    out.push("");
  }
  if (m.skipped.length > 0) out.push("## Skipped / notes", "", ...m.skipped.map((s) => `- ${s}`), "");
  return out.join("\n");
}

/** The same table as plain text for the terminal. */
export function renderResultsTable(m: MetricsFile): string {
  const head = ["model", "HR@1", "HR@1(valid)", "Valid", "METEOR", "BERTSc", "GPTSc"];
  const rows = m.rows.map((r) => [
    r.name,
    num(r.hitRatio),
    num(r.hitRatioValid),
    num(r.validRatio),
    num(r.meteor),
    num(r.bertscore),
    num(r.gptscore, 3),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}
