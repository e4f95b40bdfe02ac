// Stage bookkeeping for a run folder. Every stage writes its outputs (atomically, file by file)
// and then `stages/<name>.done.json` with the hash of its inputs: the config slice it reads plus
// the hash of the stage before it, so a change upstream invalidates everything downstream.
// A stage whose marker is missing or stale is re-run from scratch: its declared outputs are
// removed first, so a stage killed half-way never leaves files a later stage could mistake for
// finished work. The exception is a resumable stage (base, train, rl: the long ones) killed half-way
// with unchanged inputs: `stages/<name>.started.json` records the inputs it started with, and
// when they still match its partial outputs are kept for it to continue from its checkpoints.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import { stableStringify } from "../util/fingerprint.js";
import type { MetricsFile } from "../run/results.js";
import type { Shard } from "../util/scheduler-shard.js";
import type { RunConfig } from "./config.js";

export const STAGES = ["prepare", "base", "synthesize", "sft", "train", "rl", "infer", "eval", "report"] as const;
export type StageName = (typeof STAGES)[number];

export interface StageMarker {
  stage: StageName;
  inputsHash: string;
  finishedAt: string;
  seconds: number;
  outputs: string[];
}

export { stableStringify };

export function hashInputs(...parts: unknown[]): string {
  return createHash("sha256").update(stableStringify(parts)).digest("hex").slice(0, 16);
}

export function markerPath(runDir: string, stage: StageName): string {
  return join(runDir, "stages", `${stage}.done.json`);
}

/** Written when a resumable stage starts: the inputs its partial outputs belong to. */
export function startedPath(runDir: string, stage: StageName): string {
  return join(runDir, "stages", `${stage}.started.json`);
}

export function readMarker(runDir: string, stage: StageName): StageMarker | null {
  const p = markerPath(runDir, stage);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, "utf8")) as StageMarker;
  } catch {
    return null; // a torn marker counts as "not finished"
  }
}

export function isStageName(s: string): s is StageName {
  return (STAGES as readonly string[]).includes(s);
}

export function parseStageName(s: string, flag: string): StageName {
  if (!isStageName(s)) throw new Error(`${flag} "${s}" is not a stage; stages, in order: ${STAGES.join(", ")}`);
  return s;
}

export interface StageSpec {
  stage: StageName;
  /** Everything the stage's result depends on besides upstream stages (config slices, file hashes). */
  inputs: unknown;
  /** Paths relative to the run folder that the stage owns; removed before a (re)run. */
  outputs: string[];
  /** The stage continues its own partial outputs (checkpoints) after a kill with unchanged inputs. */
  resumable?: boolean;
  /**
   * Turned off by the config: it writes nothing, so a later stage run alone (--only, --from) need
   * not wait for its marker. Its inputs still count in the later stages' hash, as in a full run.
   */
  disabled?: boolean;
  run: () => Promise<void>;
  /** A stage that can be split into shards of its users (`--shard i/N`, then `--merge`). */
  sharded?: ShardedStage;
}

/**
 * How a stage runs split: each shard into its own folder under `root` (util/shard-folders.ts),
 * then a merge that finishes the stage as a single run would. A shard's fingerprint is the
 * stage's inputs, the earlier stages' settings and the files `files` names, so a merge never
 * joins shards made from different inputs.
 */
export interface ShardedStage {
  root: string;
  /** The files the shards' records depend on, by the name shown in messages → path. */
  files: () => Record<string, string>;
  /** Runs one shard, writing into `dir`. */
  runShard: (shard: Shard, dir: string) => Promise<void>;
  /** Joins the shards in `dirs` (all N, checked, in shard order) into the stage's outputs. */
  merge: (dirs: string[]) => Promise<void>;
}

/** What each stage's spec is made from (src/pipeline/stages/<name>.ts exports `<name>Spec`). */
export interface StageContext {
  c: RunConfig;
  log: (msg: string) => void;
  quiet?: boolean;
  /** What the stages of one run collect: notes for metrics.json, and the metrics once eval ran. */
  state: { skipped: string[]; metrics: MetricsFile | null };
}

export interface RunStageFlags {
  /** Run even when finished with these inputs. */
  rerun: boolean;
  /** Start from scratch even when a resumable stage could continue. */
  fresh: boolean;
}

export type StageOutcome = "ran" | "skipped";

function startedHash(runDir: string, stage: StageName): string | null {
  try {
    return (JSON.parse(readFileSync(startedPath(runDir, stage), "utf8")) as { inputsHash?: string }).inputsHash ?? null;
  } catch {
    return null;
  }
}

/**
 * Runs `spec` unless its marker matches `inputsHash` (= hash of upstream hash + inputs) and
 * `rerun` is false (a boolean `flags` sets both rerun and fresh). Returns the outcome and the
 * hash downstream stages chain on.
 */
export async function runStage(
  runDir: string,
  upstreamHash: string,
  spec: StageSpec,
  flags: boolean | RunStageFlags,
  log: (msg: string) => void,
): Promise<{ outcome: StageOutcome; hash: string }> {
  const { rerun, fresh } = typeof flags === "boolean" ? { rerun: flags, fresh: flags } : flags;
  const hash = hashInputs(upstreamHash, spec.stage, spec.inputs);
  const marker = readMarker(runDir, spec.stage);
  const outputsPresent = spec.outputs.every((o) => existsSync(join(runDir, o)));
  if (!rerun && marker && marker.inputsHash === hash && outputsPresent) {
    log(`[${spec.stage}] up to date (finished ${marker.finishedAt}), skipped`);
    return { outcome: "skipped", hash };
  }
  // A finished stage that is asked to run again starts over; so does one whose inputs changed.
  const resume = spec.resumable === true && !fresh && !marker && startedHash(runDir, spec.stage) === hash;
  rmSync(markerPath(runDir, spec.stage), { force: true });
  if (!resume) {
    for (const o of spec.outputs) rmSync(join(runDir, o), { recursive: true, force: true });
    if (spec.resumable)
      writeFileAtomic(
        startedPath(runDir, spec.stage),
        JSON.stringify({ stage: spec.stage, inputsHash: hash, startedAt: new Date().toISOString() }) + "\n",
      );
  }
  log(`[${spec.stage}] ${resume ? "resuming from its checkpoints" : "running"}`);
  const t0 = Date.now();
  await spec.run();
  rmSync(startedPath(runDir, spec.stage), { force: true });
  const seconds = (Date.now() - t0) / 1000;
  const done: StageMarker = {
    stage: spec.stage,
    inputsHash: hash,
    finishedAt: new Date().toISOString(),
    seconds,
    outputs: spec.outputs,
  };
  writeFileAtomic(markerPath(runDir, spec.stage), JSON.stringify(done, null, 2) + "\n");
  log(`[${spec.stage}] done in ${seconds.toFixed(1)} s`);
  return { outcome: "ran", hash };
}
