// `msr-rec evaluate`: the eval stage of a run alone (metrics.json, results.md, predictions.jsonl),
// e.g. after merging sharded inference.
import type { Command } from "commander";
import { resolveCliConfig } from "../../pipeline/config.js";
import { runPipeline } from "../../pipeline/run.js";
import { renderResultsTable } from "../../run/results.js";

export function register(program: Command): void {
  program
    .command("evaluate")
    .description(
      "score a run's inference outputs: HitRatio@1 (hits/all, hits/valid), ValidRatio, METEOR, BERTScore, GPTScore, baselines",
    )
    .option("--config <file>", "run config JSON")
    .option("--preset <name>", "paper | demo | tiny, when no --config is given", "paper")
    .option("--run-dir <dir>", "override the config's runDir")
    .action(async (o: { config?: string; preset?: string; runDir?: string }) => {
      const c = resolveCliConfig(o);
      const s = await runPipeline(c, { only: "eval", force: true, log: (m) => process.stderr.write(`${m}\n`) });
      if (s.metrics) process.stdout.write(`${renderResultsTable(s.metrics)}\n`);
    });
}
