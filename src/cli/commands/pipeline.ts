// `msr-rec pipeline`: runs (or resumes) prepare → base → synthesize → sft → train → infer → eval →
// report in one run folder. Finished stages are skipped; --only / --from pick stages.
import type { Command } from "commander";
import { resolveCliConfig } from "../../pipeline/config.js";
import { runPipeline } from "../../pipeline/run.js";
import { renderResultsTable } from "../../run/results.js";
import { STAGES, parseStageName } from "../../pipeline/stages.js";
import { runLayout } from "../../run/layout.js";
import { parseShardSpec } from "../../util/scheduler-shard.js";
import { shardCommandLine } from "../parse.js";

interface PipelineCliOptions {
  config?: string;
  preset?: string;
  runDir?: string;
  only?: string;
  from?: string;
  to?: string;
  force?: boolean;
  shard?: string;
  merge?: boolean;
}

export function register(program: Command): void {
  program
    .command("pipeline")
    .description(`run the MSR-Rec pipeline in one run folder (stages: ${STAGES.join(" → ")})`)
    .option(
      "--config <file>",
      'run config JSON (see src/pipeline/config.ts; {"preset": "demo", ...} starts from a preset)',
    )
    .option("--preset <name>", "paper | demo | tiny, when no --config is given", "paper")
    .option("--run-dir <dir>", "override the config's runDir")
    .option("--only <stage>", "run just this stage (earlier ones must be finished)")
    .option("--from <stage>", "run this stage and every later one")
    .option("--to <stage>", "stop after this stage (e.g. --to train, then infer elsewhere)")
    .option("--force", "re-run the selected stages even when finished")
    .option(
      "--shard <i/N|auto>",
      "with --only synthesize|infer: run shard i of N of its users (auto: from a Slurm array or Kubernetes Indexed Job)",
    )
    .option("--merge", "with --only synthesize|infer: join the N finished shards (equal to a single-process run)")
    .action(async (o: PipelineCliOptions) => {
      if (o.only && o.from) throw new Error("use either --only or --from, not both");
      const c = resolveCliConfig(o);
      const t0 = Date.now();
      const s = await runPipeline(c, {
        ...(o.only ? { only: parseStageName(o.only, "--only") } : {}),
        ...(o.from ? { from: parseStageName(o.from, "--from") } : {}),
        ...(o.to ? { to: parseStageName(o.to, "--to") } : {}),
        force: o.force === true || o.merge === true,
        ...(o.shard ? { shard: parseShardSpec(o.shard) } : {}),
        ...(o.merge ? { mergeShards: true, shardCommand: (_stage, s) => shardCommandLine()(s) } : {}),
        log: (m) => process.stderr.write(`${m}\n`),
      });
      process.stderr.write(
        `ran: ${s.ran.join(", ") || "nothing"}; up to date: ${s.skipped.join(", ") || "none"} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`,
      );
      if (s.metrics)
        process.stdout.write(`${renderResultsTable(s.metrics)}\n\nreport: ${runLayout(c.runDir).report}\n`);
    });
}
