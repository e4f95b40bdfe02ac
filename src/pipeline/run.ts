// One MSR-Rec run in one folder:
//   prepare → base → synthesize → sft → train → rl → infer → eval → report
// (`base` creates the base model when the config names none, and pretrains it on the catalog
// text in full mode: the demo's model starts from random weights; `rl` refines the MSR-Rec
// adapter with GRPO when rl.enabled, and does nothing otherwise). Each stage is skipped when
// its marker matches its inputs, re-run from scratch otherwise, except that a killed base,
// train or rl stage continues from its checkpoints; `only` / `from` pick stages. Each stage, with the
// inputs its marker hashes, lives in its own file under ./stages/.
import { mkdirSync, readFileSync, existsSync, rmSync } from "node:fs";
import { writeFileAtomic } from "../util/atomic-write.js";
import { runLayout } from "../run/layout.js";
import type { MetricsFile } from "../run/results.js";
import type { RunConfig } from "./config.js";
import { fingerprint } from "../util/fingerprint.js";
import type { Shard, ShardSpec } from "../util/scheduler-shard.js";
import { ShardFolders } from "../util/shard-folders.js";
import {
  STAGES,
  hashInputs,
  markerPath,
  readMarker,
  runStage,
  type StageContext,
  type StageName,
  type StageSpec,
} from "./stages.js";
import { prepareSpec } from "./stages/prepare.js";
import { baseSpec } from "./stages/base.js";
import { synthesizeSpec } from "./stages/synthesize.js";
import { sftSpec } from "./stages/sft.js";
import { trainSpec } from "./stages/train.js";
import { rlSpec } from "./stages/rl.js";
import { inferSpec } from "./stages/infer.js";
import { evalSpec } from "./stages/eval.js";
import { reportSpec } from "./stages/report.js";

export interface RunOptions {
  /** Run just this stage (it runs even when finished; earlier stages must be finished). */
  only?: StageName;
  /** Run this stage (even when finished) and every later one that is stale. */
  from?: StageName;
  /** Stop after this stage (with `from`: the stages from one to the other). */
  to?: StageName;
  /** Re-run every selected stage even when its marker matches. */
  force?: boolean;
  log?: (msg: string) => void;
  quiet?: boolean;
  /**
   * With only "synthesize" or "infer": run just this shard's users (i/N, or auto from the
   * scheduler), into teacher/shards/ or infer/shards/ (no stage marker; merge afterwards).
   */
  shard?: ShardSpec;
  /**
   * With only "synthesize" or "infer": merge the finished shards (synthesize then runs, paying
   * nothing). Shards made from other inputs than the current ones are refused.
   */
  mergeShards?: boolean;
  /** The command that runs one shard, named when a merge refuses it (default: `msr-rec pipeline` on the run's config.json). */
  shardCommand?: (stage: StageName, shard: Shard) => string;
  /** The scheduler's variables for --shard auto (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface RunSummary {
  ran: StageName[];
  skipped: StageName[];
  metrics: MetricsFile | null;
}

/** Each stage's spec (src/pipeline/stages/<name>.ts: its inputs, outputs and work), in run order. */
const STAGE_SPECS: Record<StageName, (x: StageContext) => StageSpec> = {
  prepare: prepareSpec,
  base: baseSpec,
  synthesize: synthesizeSpec,
  sft: sftSpec,
  train: trainSpec,
  rl: rlSpec,
  infer: inferSpec,
  eval: evalSpec,
  report: reportSpec,
};

/** Runs (or resumes) the pipeline for `c` in `c.runDir`. */
export async function runPipeline(c: RunConfig, o: RunOptions = {}): Promise<RunSummary> {
  const L = runLayout(c.runDir);
  mkdirSync(c.runDir, { recursive: true });
  const log = o.log ?? (() => {});
  const state = { skipped: [] as string[], metrics: null as MetricsFile | null };
  const x: StageContext = { c, log, quiet: o.quiet, state };
  const specs = STAGES.map((stage) => STAGE_SPECS[stage](x));
  const first = o.only ?? o.from;
  const startAt = first ? STAGES.indexOf(first) : 0;
  if (o.to && o.only) throw new Error("use either --only or --to, not both");
  const split = o.shard !== undefined || o.mergeShards === true;
  const target = split ? specs.find((s) => s.stage === o.only)?.sharded : undefined;
  if (split && !target) {
    throw new Error(
      "shards split the synthesize and infer stages only: use --shard / --merge with --only synthesize or --only infer",
    );
  }
  if (o.shard && o.mergeShards) throw new Error("use --shard to run a shard and --merge afterwards, not both at once");
  const shardCommand =
    o.shardCommand ??
    ((stage: StageName, s: Shard) =>
      `msr-rec pipeline --config ${L.config} --only ${stage} --shard ${s.index}/${s.count}`);
  const folders = target ? new ShardFolders(target.root, o.only!, (s) => shardCommand(o.only!, s)) : undefined;
  // Found before anything runs, so that a task of a badly shaped array stops at once.
  const resolved = o.shard && folders ? folders.resolve(o.shard, o.env) : undefined;
  if (o.to && STAGES.indexOf(o.to) < startAt)
    throw new Error(`--to ${o.to} comes before --from ${first}; stages, in order: ${STAGES.join(", ")}`);
  const summary: RunSummary = { ran: [], skipped: [], metrics: null };
  let hash = "";
  let upstreamRan = false;
  for (const [i, spec] of specs.entries()) {
    const selected = o.only ? spec.stage === o.only : i >= startAt;
    if (!selected) {
      if (i > startAt) break; // after --only's stage: nothing more to do
      // Before the selected stages: they must be finished with this config; they give the hash.
      hash = hashInputs(hash, spec.stage, spec.inputs);
      if (spec.disabled) continue;
      const m = readMarker(c.runDir, spec.stage);
      if (!m || m.inputsHash !== hash) {
        throw new Error(
          `stage "${spec.stage}" has not finished with this config in ${c.runDir}; run \`msr-rec pipeline --from ${spec.stage}\` (or without --only/--from) first`,
        );
      }
      continue;
    }
    // Written once the prerequisites hold, so a refused run leaves the folder's config alone.
    if (i === startAt || (o.only && spec.stage === o.only))
      writeFileAtomic(L.config, JSON.stringify(c, null, 2) + "\n");
    if (folders && spec.sharded) {
      // The shards' inputs: this stage's settings, the earlier stages' (their chained hash) and the files it reads.
      const current = fingerprint({ ...(spec.inputs as object), "earlier stages": hash }, spec.sharded.files());
      if (resolved) {
        // A shard is part of a stage, not a finished one: no marker until the shards are merged.
        const { shard, how, layout } = resolved;
        log(`[${spec.stage}] shard ${shard.index}/${shard.count}${how ? ` (${how})` : ""}`);
        const dir = folders.begin(shard, current, layout);
        await spec.sharded.runShard(shard, dir);
        folders.finish(shard, current, how);
        summary.ran.push(spec.stage);
        break;
      }
      const dirs = folders.readyForMerge(current, log);
      const merge = spec.sharded.merge;
      const r = await runStage(c.runDir, hash, { ...spec, run: () => merge(dirs) }, true, log);
      hash = r.hash;
      upstreamRan = true;
      summary.ran.push(spec.stage);
      continue;
    }
    // Once a stage has re-run, everything after it re-runs too, from scratch: its inputs are new
    // files. A stage named by --only / --from runs even when finished: that is what was asked
    // for; unfinished, it continues from its checkpoints like any killed stage.
    const fresh = o.force === true || upstreamRan;
    const r = await runStage(c.runDir, hash, spec, { rerun: fresh || spec.stage === first, fresh }, log);
    hash = r.hash;
    if (r.outcome === "ran") upstreamRan = true;
    (r.outcome === "ran" ? summary.ran : summary.skipped).push(spec.stage);
    if (spec.stage === o.to) break;
  }
  if (o.only && upstreamRan) {
    // What came after the re-run stage is stale now: a later full run must redo it.
    for (const later of STAGES.slice(STAGES.indexOf(o.only) + 1)) rmSync(markerPath(c.runDir, later), { force: true });
  }
  summary.metrics =
    state.metrics ?? (existsSync(L.metrics) ? (JSON.parse(readFileSync(L.metrics, "utf8")) as MetricsFile) : null);
  return summary;
}
