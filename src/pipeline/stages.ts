// Stage bookkeeping for a run folder. Every stage writes its outputs (atomically, file by file)
// and then `stages/<name>.done.json` with the hash of its inputs: the config slice it reads plus
// the hash of the stage before it, so a change upstream invalidates everything downstream.
// A stage whose marker is missing or stale is re-run from scratch: its declared outputs are
// removed first, so a stage killed half-way never leaves files a later stage could mistake for
// finished work.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";

export const STAGES = ["prepare", "base", "synthesize", "sft", "train", "infer", "eval", "report"] as const;
export type StageName = (typeof STAGES)[number];

export interface StageMarker {
  stage: StageName;
  inputsHash: string;
  finishedAt: string;
  seconds: number;
  outputs: string[];
}

/** JSON with sorted keys, so equal values hash equally whatever their key order. */
export function stableStringify(v: unknown): string {
  if (v === undefined) return "null";
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
    .join(",")}}`;
}

export function hashInputs(...parts: unknown[]): string {
  return createHash("sha256").update(stableStringify(parts)).digest("hex").slice(0, 16);
}

export function markerPath(runDir: string, stage: StageName): string {
  return join(runDir, "stages", `${stage}.done.json`);
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
  run: () => Promise<void>;
}

export type StageOutcome = "ran" | "skipped";

/**
 * Runs `spec` unless its marker matches `inputsHash` (= hash of upstream hash + inputs) and `force`
 * is false. Returns the outcome and the hash downstream stages chain on.
 */
export async function runStage(runDir: string, upstreamHash: string, spec: StageSpec, force: boolean, log: (msg: string) => void): Promise<{ outcome: StageOutcome; hash: string }> {
  const hash = hashInputs(upstreamHash, spec.stage, spec.inputs);
  const marker = readMarker(runDir, spec.stage);
  const outputsPresent = spec.outputs.every((o) => existsSync(join(runDir, o)));
  if (!force && marker && marker.inputsHash === hash && outputsPresent) {
    log(`[${spec.stage}] up to date (finished ${marker.finishedAt}), skipped`);
    return { outcome: "skipped", hash };
  }
  rmSync(markerPath(runDir, spec.stage), { force: true });
  for (const o of spec.outputs) rmSync(join(runDir, o), { recursive: true, force: true });
  log(`[${spec.stage}] running`);
  const t0 = Date.now();
  await spec.run();
  const seconds = (Date.now() - t0) / 1000;
  const done: StageMarker = { stage: spec.stage, inputsHash: hash, finishedAt: new Date().toISOString(), seconds, outputs: spec.outputs };
  writeFileAtomic(markerPath(runDir, spec.stage), JSON.stringify(done, null, 2) + "\n");
  log(`[${spec.stage}] done in ${seconds.toFixed(1)} s`);
  return { outcome: "ran", hash };
}
