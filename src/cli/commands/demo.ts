// `msr-rec demo` (what `npm start` runs): the whole method on a machine with nothing supplied and
// no network — a synthetic catalog, a freshly initialised tiny model pretrained on the catalog
// and its training sequences, rule-based teacher reasoning, LoRA fine-tuning (with the ablations
// and the α/β sweep), bidirectional inference with PPL fusion, evaluation and report.html, in
// runs/demo/. Sized for 2 CPU cores in under 10 minutes.
import type { Command } from "commander";
import { rmSync } from "node:fs";
import { presetConfig, trainVariants } from "../../pipeline/config.js";
import { runPipeline } from "../../pipeline/run.js";
import { renderResultsTable } from "../../run/results.js";
import { runLayout } from "../../run/layout.js";

interface DemoCliOptions {
  runDir: string;
  fresh?: boolean;
  rl?: boolean;
}

export function register(program: Command): void {
  program
    .command("demo")
    .description("end-to-end MSR-Rec demo on a synthetic catalog (no data, model or network needed); writes runs/demo/")
    .option("--run-dir <dir>", "where to write the run", "runs/demo")
    .option("--fresh", "delete the run folder first instead of resuming it")
    .option("--rl", "also refine the MSR-Rec adapter with GRPO (the rl stage) and report the MSR-Rec + GRPO rows")
    .action(async (o: DemoCliOptions) => {
      const c = presetConfig("demo", { runDir: o.runDir, ...(o.rl ? { rl: { enabled: true } } : {}) });
      if (o.fresh) rmSync(c.runDir, { recursive: true, force: true });
      const log = (m: string) => process.stderr.write(`${m}\n`);
      log(
        `msr-rec demo → ${c.runDir} (${c.dataset.users} synthetic users, ${c.model.initSize} model, adapters: ${trainVariants(
          c,
        )
          .map((v) => v.name)
          .join(", ")})`,
      );
      const t0 = Date.now();
      const s = await runPipeline(c, { log });
      if (!s.metrics) throw new Error(`the demo finished without ${runLayout(c.runDir).metrics}; re-run with --fresh`);
      const out = process.stdout;
      out.write(`\n${renderResultsTable(s.metrics)}\n`);
      if (s.metrics.skipped.length)
        out.write(`\nskipped / notes:\n${s.metrics.skipped.map((x) => `  - ${x}`).join("\n")}\n`);
      const fused = s.metrics.rows.find((r) => r.name === "MSR-Rec");
      if (fused && fused.validRatio < 0.5) {
        out.write(
          `\nnote: the demo's ${c.model.initSize} model is trained from random weights for a few minutes on 2 cores, so most of its\n` +
            "free-form answers do not name a candidate yet (low ValidRatio); the constrained row decodes the answer under a\n" +
            "grammar of the candidate titles. `node scripts/candidate-likelihood.mjs " +
            c.runDir +
            "` shows how well it ranks the candidates\n" +
            "by likelihood. For meaningful numbers run `msr-rec pipeline` with model.path set to a real base model.\n",
        );
      }
      const L = runLayout(c.runDir);
      out.write(
        `\nmetrics: ${L.metrics}\nresults: ${L.results}\nreport:  ${L.report}\n(${((Date.now() - t0) / 1000).toFixed(0)} s)\n`,
      );
    });
}
