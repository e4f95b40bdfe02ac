// `msr-rec export --format recbole`: a prepared dataset as RecBole atomic files + config, so
// SASRec / GRU4Rec / Caser run on the same split (see src/data/export-recbole.ts).
import type { Command } from "commander";
import { readDataset } from "../../data/dataset.js";
import { exportRecbole } from "../../data/export-recbole.js";

export function register(program: Command): void {
  program
    .command("export")
    .description(
      "export a prepared dataset for other toolkits (RecBole atomic files with the same leave-one-out split)",
    )
    .option("--format <format>", "recbole", "recbole")
    .requiredOption("--data <dir>", "prepared dataset folder")
    .requiredOption("--out <dir>", "output folder; its name becomes the RecBole dataset name")
    .action(async (o: { format: string; data: string; out: string }) => {
      if (o.format !== "recbole") throw new Error(`unknown --format "${o.format}"; only recbole is supported`);
      const r = exportRecbole(await readDataset(o.data), o.out);
      process.stdout.write(
        `${r.files.join("\n")}\nrun: python run_recbole.py --model=SASRec --config_files=${r.files.find((f) => f.endsWith(".yaml"))}\n`,
      );
    });
}
