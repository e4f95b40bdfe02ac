// Eval stage: every inference variant → rows of metrics.json (HitRatio@1 hits/all and hits/valid,
// ValidRatio, strict HitRatio@1, reasoning-quality scores where computable), the classic
// baselines and the teacher's stored zero-shot answers on the same test users, results.md and
// predictions.jsonl (the fused MSR-Rec run).
// The references for the reasoning metrics are the teacher's kept test-split paths.
import { existsSync, readFileSync } from "node:fs";
import { buildBaseline, BASELINES } from "../../eval/baselines.js";
import type { RecommendationOutcome } from "../../eval/metrics.js";
import { readInferRecords, reviveSide, type InferRecord } from "../../infer/records.js";
import type { SideResult } from "../../infer/bidirectional.js";
import type { FusionDecision } from "../../infer/fusion.js";
import { writeFileAtomic } from "../../util/atomic-write.js";
import type { RunConfig } from "../config.js";
import { runLayout, RL_VARIANT } from "../../run/layout.js";
import { parseJsonLines, toJsonLines } from "../../util/jsonl.js";
import type { MetricsFile, MetricsRow, PredictionRecord, RowKind } from "../../run/results.js";
import { GPTSCORE_NOTE, metricsRowOf, renderResultsMarkdown } from "../../run/results.js";
import { loadRunDataset } from "../run-data.js";
import { sampleFor } from "../../prompts/dataset.js";
import { truncationNotes } from "../sft-fit.js";
import { inferVariants, testUsers, type InferVariant } from "../variants.js";
import type { ReasoningRecord } from "../../teacher/synthesize.js";
import { reasoningQuality } from "../reasoning-quality.js";
import { teacherRow } from "../teacher-row.js";
import type { StageContext, StageSpec } from "../stages.js";
import { selectReasoningSteps } from "./sft.js";

/** One generated reasoning, the teacher's reference for the same user, and the user's context. */
export interface ReasoningPair {
  candidate: string;
  reference: string;
  /** History and candidates as text (GPTScore's conditioning). */
  context: string;
}

/**
 * Scorers of reasoning quality; each returns the mean over the pairs it is given (users with a
 * reasoning). The eval stage turns METEOR and BERTScore into means over all users with a
 * reference, a missing reasoning scoring the metric's floor: METEOR 0, BERTScore the rescaled
 * value of F1 = 0 (a rescaled 0 would be baseline-level similarity, which beats a poor
 * reasoning). GPTScore, a log-probability with 0 as its best value, stays a mean over the users
 * with a reasoning.
 */
export interface ReasoningQuality {
  meteor?: (pairs: ReasoningPair[]) => Promise<number>;
  bertscore?: (pairs: ReasoningPair[]) => Promise<number>;
  /** BERTScore of a missing reasoning in a row of these pairs: F1 = 0 rescaled as the row is (0 when absent). */
  bertscoreMissing?: (pairs: ReasoningPair[]) => Promise<number>;
  gptscore?: (pairs: ReasoningPair[]) => Promise<number>;
}

/** What one row picks from a record: the answer text judged by LLaRA's rule and its reasoning. */
type Pick = (r: InferRecord) => { answer: string; reasoning: string } | null;

const sideOf = (r: InferRecord, d: FusionDecision | undefined): SideResult | undefined =>
  d?.side === "user" ? r.userSide : d?.side === "item" ? r.itemSide : undefined;

export const pickUser: Pick = (r) =>
  r.userSide ? { answer: r.userSide.answer, reasoning: r.userSide.reasoning } : null;
export const pickItem: Pick = (r) =>
  r.itemSide ? { answer: r.itemSide.answer, reasoning: r.itemSide.reasoning } : null;
export const pickSingle: Pick = (r) => (r.single ? { answer: r.single.answer, reasoning: r.single.reasoning } : null);
export const pickFused: Pick = (r) => {
  if (!r.fused) return null;
  const s = sideOf(r, r.fused);
  return { answer: s?.answer ?? "", reasoning: s?.reasoning ?? "" };
};
export const pickEq3: Pick = (r) => {
  if (!r.fusedEq3) return null;
  const s = sideOf(r, r.fusedEq3);
  return { answer: s?.answer ?? "", reasoning: s?.reasoning ?? "" };
};
export const pickConstrained: Pick = (r) => {
  if (!r.constrained) return null;
  const s = sideOf(r, r.constrained);
  const idx = r.constrained.choice === null ? -1 : r.candidateIds.indexOf(r.constrained.choice);
  return { answer: idx >= 0 ? r.candidateTitles[idx]! : "", reasoning: s?.reasoning ?? "" };
};

/** HitRatio@1 / ValidRatio of one row over the records (every record counts in the denominator). */
export function rowMetrics(name: string, kind: RowKind, records: readonly InferRecord[], pick: Pick): MetricsRow {
  const outcomes: RecommendationOutcome[] = records.map((r) => ({
    answer: pick(r)?.answer ?? "",
    candidates: r.candidateTitles,
    target: r.targetIndex,
  }));
  return metricsRowOf(name, kind, outcomes);
}

/** The context GPTScore conditions on: the user's history and the candidates, in the teacher prompt's words. */
export function reasoningContext(historyTitles: readonly string[], r: InferRecord): string {
  const list = (ts: readonly string[]) => ts.map((t) => `"${t}"`).join(", ");
  return `A user interacted with these items, oldest first: ${list(historyTitles)}\nCandidate items: ${list(r.candidateTitles)}`;
}

async function addReasoningQuality(
  row: MetricsRow,
  records: readonly InferRecord[],
  pick: Pick,
  refs: Map<string, string>,
  histories: Map<string, string[]>,
  q: ReasoningQuality,
): Promise<void> {
  const scorable = records.filter((r) => refs.has(r.user));
  const pairs: ReasoningPair[] = scorable.flatMap((r) => {
    const p = pick(r);
    return p && p.reasoning
      ? [
          {
            candidate: p.reasoning,
            reference: refs.get(r.user)!,
            context: reasoningContext(histories.get(r.user) ?? [], r),
          },
        ]
      : [];
  });
  row.reasoningUsers = pairs.length;
  row.referenceUsers = scorable.length;
  if (scorable.length === 0) return;
  // Means over every user with a reference: a user without a reasoning adds the metric's floor.
  const overAll = (validMean: number, floor: number) =>
    ((pairs.length ? validMean * pairs.length : 0) + floor * (scorable.length - pairs.length)) / scorable.length;
  if (q.meteor) {
    const m = pairs.length ? await q.meteor(pairs) : Number.NaN;
    [row.meteor, row.meteorValid] = [overAll(m, 0), m];
  }
  if (q.bertscore) {
    const b = pairs.length ? await q.bertscore(pairs) : Number.NaN;
    const floor = q.bertscoreMissing ? await q.bertscoreMissing(pairs) : 0;
    [row.bertscore, row.bertscoreValid] = [overAll(b, floor), b];
  }
  if (q.gptscore && pairs.length) row.gptscore = await q.gptscore(pairs);
}

function revive(rs: InferRecord[]): InferRecord[] {
  return rs.map((r) => ({
    ...r,
    userSide: reviveSide(r.userSide),
    itemSide: reviveSide(r.itemSide),
    single: reviveSide(r.single),
  }));
}

function predictionRecords(records: readonly InferRecord[]): PredictionRecord[] {
  const side = (s: SideResult | undefined) => ({
    reasoning: s?.reasoning ?? "",
    text: s?.text ?? "",
    choice: s && s.choiceIndex >= 0 ? s.answer : null,
    ppl: s?.ppl ?? Number.NaN,
    ...(s?.pplOutput !== undefined ? { pplOutput: s.pplOutput } : {}),
  });
  return records.map((r) => {
    const fused = r.fused ?? { side: null, choice: null, case: "none" as const };
    const chosenTitle =
      fused.choice === null ? null : (r.candidateTitles[r.candidateIds.indexOf(fused.choice)] ?? null);
    const us = side(r.userSide),
      is = side(r.itemSide);
    if (r.userSide && r.userSide.choiceIndex >= 0) us.choice = r.candidateTitles[r.userSide.choiceIndex]!;
    if (r.itemSide && r.itemSide.choiceIndex >= 0) is.choice = r.candidateTitles[r.itemSide.choiceIndex]!;
    const title = (id: string | null) => (id === null ? null : (r.candidateTitles[r.candidateIds.indexOf(id)] ?? null));
    return {
      ...(r.fusedEq3
        ? { eq3: { side: r.fusedEq3.side, choice: title(r.fusedEq3.choice), case: r.fusedEq3.case } }
        : {}),
      ...(r.constrained
        ? { constrained: { side: r.constrained.side, choice: title(r.constrained.choice), case: r.constrained.case } }
        : {}),
      user: r.user,
      groundTruth: r.candidateTitles[r.targetIndex]!,
      candidates: r.candidateTitles,
      user_side: us,
      item_side: is,
      fused: { side: fused.side, choice: chosenTitle, case: fused.case },
      hit: fused.choice !== null && fused.choice === r.candidateIds[r.targetIndex],
    };
  });
}

/** What the config turned off, said in the results so a reader knows the table is partial. */
export function configSkips(c: RunConfig): string[] {
  const out: string[] = [];
  if (!c.ablations.sweep)
    out.push(
      `α/β sweep (${c.ablations.sweepPairs.map(([a, b]) => `${a}/${b}`).join(", ")}): not run (ablations.sweep is off; each pair trains its own adapter)`,
    );
  if (!c.ablations.woReason) out.push("MSR-Rec w/o reason: not run (ablations.woReason is off)");
  if (!c.ablations.full) out.push("MSR-Rec (full): not run (ablations.full is off)");
  if (!c.ablations.baseZeroShot) out.push("base model zero-shot: not run (ablations.baseZeroShot is off)");
  if (!c.ablations.tallrec) out.push("TALLRec: not run (ablations.tallrec is off; it trains its own adapter)");
  if (!c.infer.constrained) out.push("constrained decoding row: not run (infer.constrained is off)");
  if (c.train.positions === "last")
    out.push(
      'training samples: one per user, its last training item (train.positions "all" trains on every position, the paper\'s "remaining records", at one teacher prompt per position)',
    );
  if (c.infer.users > 0) out.push(`inference on the first ${c.infer.users} test users only (infer.users)`);
  if (c.train.reasoningSteps.length < 4)
    out.push(
      `reasoning targets keep teacher steps ${c.train.reasoningSteps.join(", ")} of 1–4 (train.reasoningSteps), to fit the generation budget of ${c.infer.maxTokens} tokens`,
    );
  out.push("Caser / GRU4Rec / SASRec: train them in RecBole on `msr-rec export` atomic files");
  out.push(
    "LLaRA and RecSAVER rows of the paper are not reproduced (LLaRA needs its hybrid item embeddings; RecSAVER a 671B reasoner)",
  );
  return out;
}

/** Runs the eval stage; `references` maps user → the teacher's test-split reasoning. */
export async function evalStage(
  c: RunConfig,
  references: Map<string, string>,
  quality: ReasoningQuality,
  skipped: string[],
): Promise<MetricsFile> {
  const L = runLayout(c.runDir);
  const ds = loadRunDataset(c);
  const users = testUsers(c, ds);
  const rows: MetricsRow[] = [];
  skipped.push(...configSkips(c), ...truncationNotes(L.train));

  // Classic baselines, fitted on every user's training sequence, scored on the inferred users.
  for (const name of BASELINES) {
    const model = buildBaseline(name, ds.users, c.seed);
    let hits = 0;
    for (const u of users) if (model.choose(u, "test") === u.test) hits++;
    const n = users.length;
    const label = name === "markov" ? "Markov (first-order)" : name[0]!.toUpperCase() + name.slice(1);
    rows.push({
      name: label,
      kind: "baseline",
      users: n,
      hits,
      valid: n,
      hitRatio: n ? hits / n : 0,
      hitRatioValid: n ? hits / n : 0,
      validRatio: 1,
    });
  }

  const teacher = teacherRow(c, ds, users);
  if ("row" in teacher) rows.push(teacher.row);
  else skipped.push(teacher.skipped);

  const histories = new Map(
    users.map((u) => [
      u.user,
      sampleFor(u, "test", c.dataset.historyLength).history.map((id) => ds.items.get(id)?.title ?? id),
    ]),
  );
  skipped.push(
    "METEOR and BERTScore average over every test user with a teacher reference, a missing reasoning scoring the metric's floor (METEOR 0; BERTScore the rescaled value of F1 = 0, −b/(1 − b)); the valid-only means are in metrics.json as meteorValid / bertscoreValid; GPTScore averages over the users with a reasoning",
  );
  skipped.push(GPTSCORE_NOTE);
  let fusedRecords: InferRecord[] = [];
  for (const v of inferVariants(c)) {
    const file = L.inferOutputs(v.name);
    if (!existsSync(file)) {
      skipped.push(`${v.label}: no inference output (${v.name}); the infer stage skipped it`);
      continue;
    }
    const records = revive(readInferRecords(file));
    for (const [label, kind, pick, note] of rowsFor(v)) {
      if (pick === pickConstrained && !records.some((r) => r.constrained)) continue;
      if (pick === pickEq3 && !records.some((r) => r.fusedEq3)) continue;
      const row = rowMetrics(label, kind, records, pick);
      if (v.alpha !== undefined) Object.assign(row, { alpha: v.alpha, beta: v.beta });
      if (note ?? v.note) row.note = note ?? v.note;
      if (v.reasoning) await addReasoningQuality(row, records, pick, references, histories, quality);
      rows.push(row);
    }
    if (v.name === "msr") fusedRecords = records;
  }
  const metrics: MetricsFile = { dataset: String(ds.name), users: users.length, rows, skipped };
  writeFileAtomic(L.metrics, JSON.stringify(metrics, null, 2) + "\n");
  writeFileAtomic(L.results, renderResultsMarkdown(metrics));
  writeFileAtomic(L.predictions, toJsonLines(predictionRecords(fusedRecords)));
  return metrics;
}

/** What the main fused rows are, said beside them (fusion.ts has both rules). */
export const FUSION_NOTES = {
  project:
    "this project's fusion: Eq. 3 on the PPL of the reasoning tokens, plus an extension (a side that alone names a candidate is kept)",
  eq3: "Eq. 3 as written: PPL of reasoning and answer tokens, no rule for invalid sides",
} as const;

/** The metrics rows one inference variant yields: label, kind, what it picks, a note. */
function rowsFor(v: InferVariant): Array<[string, RowKind, Pick, string?]> {
  if (v.mode === "single") return [[v.label, v.kind, pickSingle]];
  const rows: Array<[string, RowKind, Pick, string?]> = [
    [v.label, v.kind, pickFused, v.name === "msr" ? FUSION_NOTES.project : undefined],
  ];
  if (v.name === "msr") {
    rows.push(["MSR-Rec (Eq. 3 literal)", "msr", pickEq3, FUSION_NOTES.eq3]);
    rows.push(["MSR-Rec (user)", "ablation", pickUser], ["MSR-Rec (item)", "ablation", pickItem]);
    rows.push(["MSR-Rec (constrained)", "ablation", pickConstrained]);
  }
  if (v.name === RL_VARIANT)
    rows.push([`${v.label} (user)`, "ablation", pickUser], [`${v.label} (item)`, "ablation", pickItem]);
  return rows;
}

/** user → the teacher's kept reasoning for the test split (the reference for reasoning metrics). */
export function testReferences(c: RunConfig): Map<string, string> {
  const L = runLayout(c.runDir);
  const refs = new Map<string, string>();
  if (!existsSync(L.reasoning)) return refs;
  for (const r of parseJsonLines<ReasoningRecord>(readFileSync(L.reasoning, "utf8"), L.reasoning)) {
    if (r.split === "test" && r.valid && r.reasoning && !refs.has(r.user))
      refs.set(r.user, selectReasoningSteps(r.reasoning, c.train.reasoningSteps));
  }
  return refs;
}

export function evalSpec({ c, state }: StageContext): StageSpec {
  return {
    stage: "eval",
    inputs: { eval: c.eval },
    outputs: ["metrics.json", "results.md", "predictions.jsonl"],
    run: async () => {
      const refs = testReferences(c);
      const q = await reasoningQuality(c, state.skipped, [...refs.values()]);
      try {
        state.metrics = await evalStage(c, refs, q.quality, state.skipped);
      } finally {
        q.dispose();
      }
    },
  };
}
