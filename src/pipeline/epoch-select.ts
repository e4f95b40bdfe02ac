// Which epoch's adapter a variant keeps. One criterion for every variant (METHOD §4): validation
// HitRatio@1, ties broken by the unweighted recommendation NLL (mean NLL of the title tokens from
// `[reasoning_end]` on). Never the variant's own α/β-weighted loss: the sweep and the ablations
// weight their losses differently, so that loss would select them by different yardsticks.
// The HitRatio@1 is measured by candidate likelihood or by greedy generation (train.selectBy).
import { loadTemplates } from "../prompts/templates.js";
import { sampleFor } from "../prompts/dataset.js";
import { candidateRequests, trainedPrefix, type SampleTokenizer } from "../train/samples.js";
import { parseOutput } from "../infer/parse.js";
import type { RunConfig, TrainVariant } from "./config.js";
import { loadRunDataset, tallrecPrompt, trainingPrompt, validationUsers } from "./run-data.js";
import { loadAdapter, type EngineModel } from "./engine.js";

export interface EpochScore {
  /** Validation HitRatio@1 (NaN when there are no validation users). */
  hitRatio: number;
  /** Mean recommendation NLL over the validation samples (NaN when there are none). */
  recommendationNll: number;
}

const orNeg = (x: number) => (Number.isNaN(x) ? -Infinity : x);
const orPos = (x: number) => (Number.isNaN(x) ? Infinity : x);

/** True when `e` beats `best` (null: nothing kept yet). Exact ties keep the earlier epoch. */
export function betterEpoch(e: EpochScore, best: EpochScore | null): boolean {
  if (best === null) return true;
  const [h, hb] = [orNeg(e.hitRatio), orNeg(best.hitRatio)];
  if (h !== hb) return h > hb;
  return orPos(e.recommendationNll) < orPos(best.recommendationNll);
}

/** What both selection rules read: the run's dataset, templates, validation users and tokenizer. */
function validationSet(model: EngineModel, c: RunConfig) {
  const ds = loadRunDataset(c);
  const tokenize: SampleTokenizer["tokenize"] = (t, o) => model.tokenize(t, o);
  return { ds, templates: loadTemplates(), users: validationUsers(c, ds), tokenize };
}

/**
 * Validation HitRatio@1 by candidate likelihood: each validation user's candidates are scored in
 * the layout training gives a recommendation, after `[reasoning_start]\n[reasoning_end] ` (the
 * behavior-only target every variant trains on; the title right after the prompt would follow
 * where a reasoning adapter writes `[reasoning_start]`), token for token as training lays it out
 * (candidateRequests); TALLRec's candidates follow its own prompt, as its training puts them.
 * One batched scorer call; the candidate with the lowest per-token PPL is the prediction (per
 * token, so short titles are not favoured for being short). Cheap, but blind to the reasoning.
 */
async function validationHitRatio(
  model: EngineModel,
  adapterPath: string,
  c: RunConfig,
  v: TrainVariant,
): Promise<number> {
  const { ds, templates, users, tokenize } = validationSet(model, c);
  if (users.length === 0) return Number.NaN;
  const lora = await loadAdapter(model, adapterPath);
  const scorer = model.createScorer({ contextSize: c.model.contextSize });
  const reqs: Array<{ prompt: Int32Array; continuation: Int32Array }> = [];
  const meta: Array<{ n: number; target: number }> = [];
  for (const u of users) {
    const s = sampleFor(u, "valid", c.dataset.historyLength);
    const titles = s.candidates.map((id) => ds.items.get(id)?.title ?? id);
    const r =
      v.format === "tallrec"
        ? candidateRequests(tokenize, tallrecPrompt(ds, s), titles, "plain")
        : candidateRequests(tokenize, trainingPrompt(ds, templates, s), titles);
    for (const k of r.continuations) reqs.push({ prompt: r.context, continuation: k });
    meta.push({ n: s.candidates.length, target: s.targetIndex });
  }
  const scores = await scorer.score(reqs, { lora });
  scorer.dispose();
  for (const l of lora) l.adapter.dispose();
  let off = 0,
    hits = 0;
  for (const m of meta) {
    let best = 0;
    for (let k = 1; k < m.n; k++) if (scores[off + k]!.ppl < scores[off + best]!.ppl) best = k;
    if (best === m.target) hits++;
    off += m.n;
  }
  return hits / users.length;
}

/**
 * Validation HitRatio@1 by generation (train.selectBy "generation"): each validation user's
 * prompt in the variant's own layout (the training prompt and `[reasoning_start]`, or
 * `[reasoning_start]\n` for w/o reason; TALLRec's bare prompt), decoded greedily for up to
 * train.selectMaxTokens tokens in one batched call, the answer judged by LLaRA's rule as the infer
 * and eval stages judge it. An answer past the budget names no title and counts as a miss.
 */
export async function generatedHitRatio(
  model: EngineModel,
  adapterPath: string,
  c: RunConfig,
  v: TrainVariant,
): Promise<number> {
  const { ds, templates, users, tokenize } = validationSet(model, c);
  if (users.length === 0) return Number.NaN;
  const samples = users.map((u) => sampleFor(u, "valid", c.dataset.historyLength));
  const prompts = samples.map((s) =>
    v.format === "tallrec"
      ? tokenize(tallrecPrompt(ds, s), { addBos: true })
      : trainedPrefix(tokenize, trainingPrompt(ds, templates, s), v.withoutReasoning),
  );
  const lora = await loadAdapter(model, adapterPath);
  try {
    const out = await model.generate(prompts, {
      maxTokens: c.train.selectMaxTokens,
      temperature: 0,
      seed: c.seed,
      parallel: c.infer.batchSize,
      lora,
    });
    const hits = out.filter(
      (g, i) =>
        parseOutput(
          g.text,
          samples[i]!.candidates.map((id) => ds.items.get(id)?.title ?? id),
        ).choiceIndex === samples[i]!.targetIndex,
    ).length;
    return hits / users.length;
  } finally {
    for (const l of lora) l.adapter.dispose();
  }
}

/** The configured validation HitRatio@1 of an epoch's adapter (train.selectBy). */
export function epochHitRatio(model: EngineModel, adapterPath: string, c: RunConfig, v: TrainVariant): Promise<number> {
  return c.train.selectBy === "generation"
    ? generatedHitRatio(model, adapterPath, c, v)
    : validationHitRatio(model, adapterPath, c, v);
}

/** What selected a variant's epoch, as done.json records it. */
export function selectionName(c: RunConfig): string {
  const how =
    c.train.selectBy === "generation"
      ? `greedy generations of up to ${c.train.selectMaxTokens} tokens`
      : "candidate likelihood";
  return `validation HitRatio@1 (${how}), ties by recommendation NLL`;
}
