// The reasoning-synthesis loop (METHOD.md §2): for each sample, ask the teacher, store the raw
// answer (fsync) before parsing it, prune, and stop once τ valid paths exist or the attempt bound
// is reached; samples with no valid path fall back to behavior-only supervision. Answers already
// in the store are reused, so a resumed run pays only for what is missing.
//
// Output (one folder per run or shard): answers.jsonl (the store), reasoning.jsonl (one line per
// kept path, or one behavior-only line per sample without a path) and synthesis-stats.json.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import type { PromptSample, Split } from "../prompts/dataset.js";
import { hashString } from "../util/random.js";
import { prunePath, type RejectReason } from "./prune.js";
import { type AnswerStore, hashPrompt } from "./store.js";
import type { Teacher } from "./types.js";
import { isAuto, parseShardSpec, shardFromScheduler, type Shard } from "../util/scheduler-shard.js";
import { shardDirName, type ShardFolders } from "../util/shard-folders.js";
import type { Fingerprint } from "../util/fingerprint.js";
import { issuesOf, rule, throwIssues, type OptionIssue } from "../util/options.js";

/**
 * METHOD §2: invalid paths are retried up to 3 times per sample, so a sample costs at most
 * τ + 3 teacher calls (τ valid paths and up to 3 invalid ones).
 */
export const DEFAULT_MAX_RETRIES = 3;

export interface SynthesisJob {
  sample: PromptSample;
  prompt: string;
  /** Candidate titles in prompt order (the pruner matches Step 5 against them). */
  candidateTitles: string[];
}

/** One line of reasoning.jsonl. */
export interface ReasoningRecord {
  user: string;
  split: Split;
  prompt: string;
  /** Steps 1–4 with uniform headers; null for behavior-only samples. */
  reasoning: string | null;
  /** The ground-truth title. */
  recommendation: string;
  teacher: string;
  /** True for a kept reasoning path, false for behavior-only supervision. */
  valid: boolean;
  /** The sample's training position when it is not the user's last training item (see PromptSample). */
  position?: number;
}

export interface SynthesisStats {
  teacher: string;
  model: string;
  tau: number;
  maxAttempts: number;
  samples: number;
  /** Teacher answers looked at (new + reused). */
  attempts: number;
  /** New teacher calls made by this run. */
  requested: number;
  /** Answers taken from the store instead of asking again. */
  reused: number;
  accepted: number;
  rejected: Record<RejectReason, number>;
  samplesWithPaths: number;
  behaviorOnly: number;
}

export interface SynthesisOptions {
  teacher: Teacher;
  store: AnswerStore;
  tau: number;
  /** Invalid paths a sample may cost besides its τ valid ones (default 3): at most τ + maxRetries calls. */
  maxRetries?: number;
  /** An explicit bound on calls per sample instead (>= tau); overrides maxRetries. */
  maxAttempts?: number;
  /** Samples in flight at once (the teacher client may bound its own requests further). */
  concurrency?: number;
  signal?: AbortSignal;
  onSampleDone?: (stats: SynthesisStats) => void;
}

/** The store key of one attempt; an earlier training position is `train/<user>@<position>/<attempt>`. */
export function answerKey(s: PromptSample, attempt: number): string {
  return `${s.split}/${s.user}${s.position === undefined ? "" : `@${s.position}`}/${attempt}`;
}

function emptyStats(o: SynthesisOptions, samples: number): SynthesisStats {
  return {
    teacher: o.teacher.name,
    model: o.teacher.model,
    tau: o.tau,
    maxAttempts: attemptBound(o),
    samples,
    attempts: 0,
    requested: 0,
    reused: 0,
    accepted: 0,
    rejected: { empty: 0, "missing-steps": 0, "no-candidate-named": 0, "several-candidates-named": 0, "wrong-item": 0 },
    samplesWithPaths: 0,
    behaviorOnly: 0,
  };
}

const positionOf = (s: PromptSample) => (s.position === undefined ? {} : { position: s.position });

/** Teacher calls one sample may cost: τ + maxRetries, unless maxAttempts says otherwise. */
export function attemptBound(o: Pick<SynthesisOptions, "tau" | "maxRetries" | "maxAttempts">): number {
  return o.maxAttempts ?? o.tau + (o.maxRetries ?? DEFAULT_MAX_RETRIES);
}

/** What is wrong with τ and the attempt bound: the one check, for the command line, the run config and synthesize(). */
export function synthesisOptionIssues(o: Pick<SynthesisOptions, "tau" | "maxRetries" | "maxAttempts">): OptionIssue[] {
  const issues = issuesOf({ tau: [o.tau, rule.positiveInteger], maxRetries: [o.maxRetries, rule.integerAtLeast(0)] });
  const maxAttempts = attemptBound(o);
  if (issues.length === 0 && (!Number.isInteger(maxAttempts) || maxAttempts < o.tau))
    issues.push({ key: "maxAttempts", problem: `(${maxAttempts}) must be an integer >= tau (${o.tau})` });
  return issues;
}

export async function synthesize(
  jobs: readonly SynthesisJob[],
  o: SynthesisOptions,
): Promise<{ records: ReasoningRecord[]; stats: SynthesisStats }> {
  throwIssues(synthesisOptionIssues(o));
  const maxAttempts = attemptBound(o);
  const stats = emptyStats(o, jobs.length);
  const perJob: ReasoningRecord[][] = jobs.map(() => []);
  let next = 0;
  let failure: unknown = null;

  const runJob = async (j: number): Promise<void> => {
    const { sample, prompt, candidateTitles } = jobs[j]!;
    const target = candidateTitles[sample.targetIndex]!;
    const kept: ReasoningRecord[] = [];
    const promptHash = hashPrompt(prompt);
    for (let attempt = 0; attempt < maxAttempts && kept.length < o.tau; attempt++) {
      const key = answerKey(sample, attempt);
      let stored = o.store.get(key);
      if (stored) {
        if (stored.promptHash !== promptHash) {
          throw new Error(
            `${o.store.path} holds an answer for ${key} made for a different prompt (templates or data changed); write to a new --out folder or remove that store`,
          );
        }
        stats.reused++;
      } else {
        if (failure !== null || o.signal?.aborted) return;
        const a = await o.teacher.ask({ key, prompt, sample, attempt }, o.signal);
        stored = {
          key,
          promptHash,
          teacher: o.teacher.name,
          model: a.model ?? o.teacher.model,
          content: a.content,
          ...(a.reasoningContent ? { reasoningContent: a.reasoningContent } : {}),
          at: new Date().toISOString(),
        };
        o.store.append(stored); // on disk before it is parsed
        stats.requested++;
      }
      stats.attempts++;
      const r = prunePath(stored.content, candidateTitles, sample.targetIndex);
      if (r.valid) {
        stats.accepted++;
        kept.push({
          user: sample.user,
          split: sample.split,
          prompt,
          reasoning: r.reasoning,
          recommendation: target,
          teacher: o.teacher.name,
          valid: true,
          ...positionOf(sample),
        });
      } else {
        stats.rejected[r.reason]++;
      }
    }
    if (kept.length > 0) stats.samplesWithPaths++;
    else {
      stats.behaviorOnly++;
      kept.push({
        user: sample.user,
        split: sample.split,
        prompt,
        reasoning: null,
        recommendation: target,
        teacher: o.teacher.name,
        valid: false,
        ...positionOf(sample),
      });
    }
    perJob[j] = kept;
    o.onSampleDone?.(stats);
  };

  const worker = async (): Promise<void> => {
    while (failure === null && !o.signal?.aborted && next < jobs.length) {
      const j = next++;
      try {
        await runJob(j);
      } catch (e) {
        if (failure === null) failure = e;
      }
    }
  };
  const lanes = Math.max(1, Math.min(o.concurrency ?? 4, jobs.length));
  await Promise.all(Array.from({ length: lanes }, worker));
  if (failure !== null) throw failure;
  if (o.signal?.aborted) throw new Error("synthesis aborted; stored answers are kept, run again to resume");
  return { records: perJob.flat(), stats };
}

/** Writes reasoning.jsonl and synthesis-stats.json into `dir` (atomically, each). */
export function writeSynthesisOutput(dir: string, records: readonly ReasoningRecord[], stats: SynthesisStats): void {
  writeFileAtomic(
    join(dir, "reasoning.jsonl"),
    records.map((r) => JSON.stringify(r)).join("\n") + (records.length > 0 ? "\n" : ""),
  );
  writeFileAtomic(join(dir, "synthesis-stats.json"), JSON.stringify(stats, null, 2) + "\n");
}

// ---- sharding -----------------------------------------------------------------------------

export type { Shard };
export { shardDirName };

/**
 * Parses "i/N" (0-based i, 0 <= i < N), or "auto" / "auto/N": the shard of this task of a Slurm job
 * array or Kubernetes Indexed Job, read from `env` (see util/scheduler-shard.ts; without the
 * layout a shards folder records, so a resubmitted task is taken as a whole array).
 */
export function parseShard(s: string, env: Readonly<Record<string, string | undefined>> = process.env): Shard {
  const spec = parseShardSpec(s);
  if (!isAuto(spec)) return spec;
  const { index, count } = shardFromScheduler(s, env);
  return { index, count };
}

/** Users are split by a hash of their id: the same user lands in the same shard on every machine. */
export function inShard(user: string, shard: Shard): boolean {
  return hashString(user) % shard.count === shard.index;
}

const sampleKey = (r: { split: Split; user: string }) => `${r.split}/${r.user}`;

/**
 * Joins the N finished shards in `folders` (each checked against the current inputs `current`:
 * see util/shard-folders.ts) into `outDir`: reasoning.jsonl in the order of `jobs`, the jobs of
 * the whole run, so the file is byte for byte a single run's; their stats summed.
 */
export function mergeShards(
  folders: ShardFolders,
  jobs: readonly SynthesisJob[],
  current: Fingerprint,
  outDir: string,
  log?: (m: string) => void,
): { records: number; stats: SynthesisStats } {
  const dirs = folders.readyForMerge(current, log);
  const bySample = new Map<string, string[]>();
  let merged: SynthesisStats | null = null;
  for (const dir of dirs) {
    const st = JSON.parse(readFileSync(join(dir, "synthesis-stats.json"), "utf8")) as SynthesisStats;
    for (const line of readFileSync(join(dir, "reasoning.jsonl"), "utf8").split("\n")) {
      if (!line.trim()) continue;
      const key = sampleKey(JSON.parse(line) as ReasoningRecord);
      const lines = bySample.get(key) ?? bySample.set(key, []).get(key)!;
      lines.push(line);
    }
    if (!merged) merged = { ...st, rejected: { ...st.rejected } };
    else {
      for (const k of [
        "samples",
        "attempts",
        "requested",
        "reused",
        "accepted",
        "samplesWithPaths",
        "behaviorOnly",
      ] as const)
        merged[k] += st[k];
      for (const k of Object.keys(merged.rejected) as RejectReason[]) merged.rejected[k] += st.rejected[k] ?? 0;
    }
  }
  const lines: string[] = [];
  for (const j of jobs) {
    const own = bySample.get(sampleKey(j.sample));
    if (!own)
      throw new Error(
        `no shard in ${folders.root} holds the sample ${sampleKey(j.sample)}; the shards were made for another sample set: redo them`,
      );
    lines.push(...own);
    bySample.delete(sampleKey(j.sample));
  }
  if (bySample.size > 0)
    throw new Error(
      `the shards in ${folders.root} hold samples this run does not have (${[...bySample.keys()].slice(0, 3).join(", ")}); redo them`,
    );
  writeFileAtomic(join(outDir, "reasoning.jsonl"), lines.join("\n") + (lines.length ? "\n" : ""));
  writeFileAtomic(join(outDir, "synthesis-stats.json"), JSON.stringify(merged, null, 2) + "\n");
  return { records: lines.length, stats: merged! };
}
