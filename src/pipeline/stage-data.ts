// The data half of a run: prepare (dataset folder), synthesize (teacher reasoning, pruned by τ)
// and sft (reasoning data + behavior data → {prompt, reasoning, recommendation} samples).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readDatasetSync, writeDataset, USERS_FILE, type DatasetFileStats } from "../data/dataset.js";
import { prepareSynthetic } from "../data/synthetic.js";
import { applyProtocol } from "../data/protocol.js";
import { readSource, type SourceFormat } from "../data/read.js";
import { loadTemplates, type PromptTemplates } from "../prompts/templates.js";
import { fillTemplate } from "../prompts/build.js";
import { contextFor, readPreparedDataset, sampleFor, type PreparedDataset, type PromptSample, type TrainCatalog } from "../prompts/dataset.js";
import { RulesTeacher } from "../teacher/rules.js";
import { AnswerStore } from "../teacher/store.js";
import { createTeacher } from "../teacher/factory.js";
import { inShard, synthesize, writeSynthesisOutput, type ReasoningRecord, type Shard, type SynthesisJob } from "../teacher/synthesize.js";
import { synthesisShardDir } from "./synthesis-shards.js";
import type { Teacher } from "../teacher/types.js";
import { parseChain, STEP_NAMES } from "../teacher/prune.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import type { RunConfig } from "./config.js";
import { parseJsonLines, toJsonLines } from "../util/jsonl.js";
import { runLayout } from "../run/layout.js";
import { testUsers } from "./variants.js";

/** A training sample as the trainer takes it; `reasoning` is "" for behavior-only supervision. */
export interface SftSample {
  user: string;
  prompt: string;
  reasoning: string;
  recommendation: string;
}

/** Config source names → the readers' format names. */
const READER_FORMAT: Record<Exclude<RunConfig["dataset"]["source"], "synthetic">, SourceFormat> = {
  "amazon-2014": "amazon2014",
  "amazon-2018": "amazon2018",
  "amazon-2023": "amazon2023",
  recbole: "recbole",
  llara: "llara",
};

/**
 * Dataset stage: the synthetic catalog, a folder `msr-rec prepare` already wrote, or raw files
 * of a real source read and put through the METHOD §1 protocol (k-core, sampling, leave-one-out,
 * candidates).
 */
export async function prepareStage(c: RunConfig): Promise<void> {
  const L = runLayout(c.runDir);
  const protocol = { kcore: c.dataset.kCore, users: c.dataset.users, candidates: c.dataset.candidates, seed: c.seed };
  if (c.dataset.source === "synthetic") {
    const prepared = prepareSynthetic(
      // Generate more shoppers than kept, so the k-core leaves a dense catalog to sample from.
      { users: Math.max(2 * c.dataset.users, 100), items: c.dataset.syntheticItems, seed: c.seed },
      protocol,
    );
    const stats: DatasetFileStats & { name: string } = { ...prepared.stats, source: prepared.source, name: c.dataset.domain };
    writeDataset(L.dataset, { items: [...prepared.items.values()], users: prepared.users, stats });
    return;
  }
  const p = c.dataset.path!;
  if (existsSync(join(p, USERS_FILE))) {
    const ds = readDatasetSync(p);
    writeDataset(L.dataset, { items: ds.items, users: ds.users, stats: { ...ds.stats, name: c.dataset.domain } });
    return;
  }
  const raw = await readSource(READER_FORMAT[c.dataset.source], p, c.dataset.meta ? { meta: c.dataset.meta } : {});
  const prepared = applyProtocol(raw.interactions, raw.items, protocol);
  const stats = { ...prepared.stats, source: raw.source, name: c.dataset.domain } as DatasetFileStats;
  writeDataset(L.dataset, { items: prepared.items, users: prepared.users, stats });
}

export function loadRunDataset(c: RunConfig): PreparedDataset {
  return readPreparedDataset(runLayout(c.runDir).dataset, c.dataset.domain);
}

/** The train split's negatives come from the whole catalog, seeded by the run (see sampleFor). */
export function trainCatalog(c: RunConfig, ds: PreparedDataset): TrainCatalog {
  return { itemIds: [...ds.items.keys()], seed: c.seed };
}

/** Users whose validation split is used for validation loss / HitRatio (the first N, fixed order). */
export function validationUsers(c: RunConfig, ds: PreparedDataset): PreparedDataset["users"] {
  return c.train.validUsers > 0 ? ds.users.slice(0, c.train.validUsers) : ds.users;
}

async function makeTeacher(c: RunConfig, ds: PreparedDataset): Promise<Teacher> {
  if (c.teacher.kind === "rule") return new RulesTeacher(ds.items, ds.users);
  if (c.teacher.kind === "openai" && !c.teacher.endpoint) {
    throw new Error('teacher.kind "openai" needs teacher.endpoint (e.g. "https://api.deepseek.com") and teacher.model (e.g. "deepseek-reasoner")');
  }
  return createTeacher({
    kind: c.teacher.kind,
    dataset: ds,
    baseUrls: c.teacher.endpoint ? [c.teacher.endpoint] : [],
    model: c.teacher.model,
    apiKeyEnv: c.teacher.apiKeyEnv,
  });
}

/**
 * Synthesis stage: teacher prompts for every user's train split, the validation users and the test
 * users. With a shard, only that shard's users, into teacher/shards/ (see synthesis-shards.ts).
 */
export async function synthesizeStage(c: RunConfig, shard?: Shard): Promise<void> {
  const L = runLayout(c.runDir);
  const ds = loadRunDataset(c);
  const templates = loadTemplates();
  const samples: PromptSample[] = [
    ...ds.users.filter((u) => u.train.length > 0).map((u) => sampleFor(u, "train", c.dataset.historyLength, trainCatalog(c, ds))),
    ...validationUsers(c, ds).map((u) => sampleFor(u, "valid", c.dataset.historyLength)),
    // Test-split paths are never trained on: they are the references for METEOR / BERTScore.
    ...testUsers(c, ds).map((u) => sampleFor(u, "test", c.dataset.historyLength)),
  ];
  const jobs: SynthesisJob[] = samples.filter((sample) => !shard || inShard(sample.user, shard)).map((sample) => {
    const ctx = contextFor(ds, sample);
    return { sample, prompt: fillTemplate(templates.teacher, ctx), candidateTitles: [...ctx.candidates] };
  });
  // The answer store lives outside the stage's declared outputs: paid answers survive a re-run.
  const outDir = shard ? synthesisShardDir(c.runDir, shard) : L.teacher;
  const store = AnswerStore.open(join(outDir, "answers.jsonl"));
  const teacher = await makeTeacher(c, ds);
  try {
    const { records, stats } = await synthesize(jobs, { teacher, store, tau: c.teacher.tau, maxRetries: c.teacher.maxRetries });
    writeSynthesisOutput(outDir, records, stats);
  } finally {
    store.close();
    await teacher.close?.();
  }
}

/** The Figure-4 training input for a sample (the `train` template). */
export function trainingPrompt(ds: PreparedDataset, templates: PromptTemplates, s: PromptSample): string {
  return fillTemplate(templates.train, contextFor(ds, s));
}

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
    const s = sampleFor(u, r.split, c.dataset.historyLength, trainCatalog(c, ds));
    const reasoning = r.reasoning ? selectReasoningSteps(r.reasoning, c.train.reasoningSteps) : "";
    bySplit[r.split].push({ user: r.user, prompt: trainingPrompt(ds, templates, s), reasoning, recommendation: r.recommendation });
  }
  if (bySplit.train.length === 0) throw new Error(`${L.reasoning} has no training records; re-run the synthesize stage`);
  writeFileAtomic(L.sftSplit("train"), toJsonLines(bySplit.train));
  writeFileAtomic(L.sftSplit("valid"), toJsonLines(bySplit.valid));
}

export function readSftSamples(c: RunConfig, split: "train" | "valid"): SftSample[] {
  const p = runLayout(c.runDir).sftSplit(split);
  return parseJsonLines<SftSample>(readFileSync(p, "utf8"), p);
}

/** user → the teacher's kept reasoning for the test split (the reference for reasoning metrics). */
export function testReferences(c: RunConfig): Map<string, string> {
  const L = runLayout(c.runDir);
  const refs = new Map<string, string>();
  if (!existsSync(L.reasoning)) return refs;
  for (const r of parseJsonLines<ReasoningRecord>(readFileSync(L.reasoning, "utf8"), L.reasoning)) {
    if (r.split === "test" && r.valid && r.reasoning && !refs.has(r.user)) refs.set(r.user, selectReasoningSteps(r.reasoning, c.train.reasoningSteps));
  }
  return refs;
}
