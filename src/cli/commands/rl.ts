// `msr-rec rl`: the rl stage of a run alone: GRPO on the run's MSR-Rec adapter (or `--adapter`,
// any SFT adapter with the run's LoRA shape), with the run's data, base model and inference
// settings. Earlier stages must be finished; a killed run continues from its last step. Then
// `msr-rec pipeline --from infer` adds the "MSR-Rec + GRPO" rows to the results.
import type { Command } from "commander";
import { resolve } from "node:path";
import { parseRunConfig, resolveCliConfig, type RunConfig } from "../../pipeline/config.js";
import { runPipeline } from "../../pipeline/run.js";
import { runLayout, RL_VARIANT } from "../../run/layout.js";

interface RlCliOptions {
  config?: string;
  preset?: string;
  runDir?: string;
  adapter?: string;
  steps?: string;
  group?: string;
  lr?: string;
  beta?: string;
  fresh?: boolean;
}

function number(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${flag} must be a number, got "${v}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command("rl")
    .description(
      "refine a run's SFT adapter with GRPO (the rl stage alone): rule rewards, optional KL to the SFT adapter",
    )
    .option("--config <file>", "run config JSON")
    .option("--preset <name>", "paper | demo | tiny, when no --config is given", "paper")
    .option("--run-dir <dir>", "override the config's runDir")
    .option("--adapter <file>", "the SFT adapter to refine (default: the run's train/msr/adapter.gguf)")
    .option("--steps <n>", "optimizer steps (rl.steps)")
    .option("--group <n>", "completions per prompt, G (rl.group)")
    .option("--lr <x>", "learning rate (rl.learningRate)")
    .option("--beta <x>", "KL coefficient to the SFT adapter (rl.beta; 0: no KL, no reference pass)")
    .option("--fresh", "start over instead of continuing a killed run")
    .action(async (o: RlCliOptions) => {
      const base = resolveCliConfig(o);
      const over = {
        steps: number("--steps", o.steps),
        group: number("--group", o.group),
        learningRate: number("--lr", o.lr),
        beta: number("--beta", o.beta),
      };
      const rl = { ...base.rl, enabled: true, ...(o.adapter ? { from: resolve(o.adapter) } : {}) };
      for (const [k, v] of Object.entries(over)) if (v !== undefined) Object.assign(rl, { [k]: v });
      // Checked like a config file's rl section (a bad value names its field).
      const c: RunConfig = parseRunConfig({ ...base, rl }, "msr-rec rl's settings");
      const log = (m: string) => process.stderr.write(`${m}\n`);
      await runPipeline(c, { only: "rl", force: o.fresh === true, log });
      const L = runLayout(c.runDir);
      process.stdout.write(
        `adapter: ${L.adapter(RL_VARIANT)}\nlog:     ${L.rlLog}\nnext:    msr-rec pipeline --config ${L.config} --from infer\n`,
      );
    });
}
