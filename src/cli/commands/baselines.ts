// `msr-rec baselines`: HitRatio@1 of the classic baselines (random, popularity, first-order
// Markov) on a prepared dataset's candidate sets.
import type { Command } from "commander";
import { readDataset } from "../../data/dataset.js";
import { DEFAULT_SEED } from "../../data/protocol.js";
import { issuesOf, rule, throwIssues } from "../../util/options.js";
import { flagNames, numberArg } from "../parse.js";
import { BASELINES, evaluateBaseline, type EvalSplit } from "../../eval/baselines.js";

export function register(program: Command): void {
  program
    .command("baselines")
    .description("HitRatio@1 of the random, popularity and Markov baselines on a prepared dataset")
    .requiredOption("--data <dir>", "prepared dataset folder (from `msr-rec prepare`)")
    .option("--split <split>", "test | valid", "test")
    .option("--seed <n>", "seed of the random baseline (a run's seed)", String(DEFAULT_SEED))
    .action(async (o: { data: string; split: string; seed: string }) => {
      if (o.split !== "test" && o.split !== "valid") throw new Error(`--split must be test or valid, got "${o.split}"`);
      const seed = numberArg(o.seed);
      throwIssues(issuesOf({ seed: [seed, rule.integer] }), flagNames());
      const ds = await readDataset(o.data);
      const rows = BASELINES.map((b) => evaluateBaseline(b, ds.users, o.split as EvalSplit, seed));
      const k = ds.users[0]?.candidates.test.length ?? 0;
      const lines = [
        `baseline     hits  users  HitRatio@1   (${o.split} split, ${k} candidates: random expects ${(1 / Math.max(1, k)).toFixed(4)})`,
      ];
      for (const r of rows)
        lines.push(
          `${r.name.padEnd(10)} ${String(r.hits).padStart(6)} ${String(r.users).padStart(6)}  ${r.hitRatio1.toFixed(4)}`,
        );
      process.stdout.write(lines.join("\n") + "\n");
    });
}
