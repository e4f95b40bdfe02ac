// `msr-rec infer`: the inference stage of a run alone — every variant (bidirectional with PPL
// fusion, the full chain, w/o reason, sweep adapters, base zero-shot) on the test users.
// `--shard i/N` runs one shard (users split by a hash of their id) into infer/shards/, for
// several processes or machines; `--merge` joins all N shards and marks the stage finished.
import type { Command } from "commander";
import { resolveCliConfig } from "../../pipeline/config.js";
import { runPipeline } from "../../pipeline/run.js";
import { parseShardSpec } from "../../util/scheduler-shard.js";
import { shardCommandLine } from "../parse.js";

interface InferCliOptions {
  config?: string;
  preset?: string;
  runDir?: string;
  shard?: string;
  merge?: boolean;
  force?: boolean;
}

export function register(program: Command): void {
  program
    .command("infer")
    .description("bidirectional (user + item side) reasoning inference with Eq. 3 PPL fusion for a run's test users")
    .option("--config <file>", "run config JSON")
    .option("--preset <name>", "paper | demo | tiny, when no --config is given", "paper")
    .option("--run-dir <dir>", "override the config's runDir")
    .option(
      "--shard <i/N|auto>",
      "infer only shard i of N (0-based; auto: from a Slurm array or Kubernetes Indexed Job) into infer/shards/",
    )
    .option("--merge", "merge the N finished shards into infer/<variant>.jsonl")
    .option("--force", "re-run even when the infer stage is finished")
    .action(async (o: InferCliOptions) => {
      if (o.shard && o.merge) throw new Error("use --shard to run a shard and --merge afterwards, not both at once");
      const c = resolveCliConfig(o);
      const log = (m: string) => process.stderr.write(`${m}\n`);
      await runPipeline(c, {
        only: "infer",
        force: o.force === true || o.merge === true,
        log,
        ...(o.shard ? { shard: parseShardSpec(o.shard) } : {}),
        ...(o.merge ? { mergeShards: true, shardCommand: (_stage, s) => shardCommandLine()(s) } : {}),
      });
    });
}
