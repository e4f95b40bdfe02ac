// `msr-rec report`: (re)writes report.html of a run folder from its result files.
import type { Command } from "commander";
import { writeReport } from "../../report/index.js";

export function register(program: Command): void {
  program
    .command("report")
    .description(
      "write <run-dir>/report.html (opens without a server) from metrics.json, predictions.jsonl and train.jsonl",
    )
    .requiredOption("--run-dir <dir>", "the run folder")
    .action((o: { runDir: string }) => {
      process.stdout.write(`${writeReport(o.runDir)}\n`);
    });
}
