// Builds report.html from a run folder's files (metrics.json, predictions.jsonl, train.jsonl, rl.jsonl,
// dataset/stats.json, config.json). Missing optional files give empty panels, not errors.
import { existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseJsonLines } from "../util/jsonl.js";
import { runLayout } from "../run/layout.js";
import type { MetricsFile, PredictionRecord, TrainLogLine } from "../run/results.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { renderReport, type ReportData } from "./html.js";
import type { GrpoLogLine } from "../train/grpo.js";

export { renderReport, type ReportData } from "./html.js";

function readJson<T>(path: string): T | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message}); re-run the stage that writes it`);
  }
}

function readLines<T>(path: string): T[] {
  return existsSync(path) ? parseJsonLines<T>(readFileSync(path, "utf8"), path) : [];
}

/** Collects a run folder's results; throws if metrics.json is missing (run the eval stage first). */
export function collectReportData(runDir: string): ReportData {
  const L = runLayout(runDir);
  const metrics = readJson<MetricsFile>(L.metrics);
  if (!metrics)
    throw new Error(
      `${L.metrics} not found: run \`msr-rec pipeline --config <run.json> --only eval\` (or \`msr-rec evaluate\`) first`,
    );
  return {
    title: `MSR-Rec run: ${basename(runDir)}`,
    stats: readJson<Record<string, unknown>>(`${L.dataset}/stats.json`) ?? {},
    metrics,
    trainLog: readLines<TrainLogLine>(L.trainLog),
    rlLog: readLines<GrpoLogLine>(L.rlLog),
    predictions: readLines<PredictionRecord>(L.predictions),
    config: readJson<unknown>(L.config),
  };
}

/** Writes `<runDir>/report.html` and returns its path. */
export function writeReport(runDir: string): string {
  const L = runLayout(runDir);
  writeFileAtomic(L.report, renderReport(collectReportData(runDir)));
  return L.report;
}
