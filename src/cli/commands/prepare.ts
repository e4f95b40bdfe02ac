// `msr-rec prepare`: raw data (Amazon 2014/2018/2023, RecBole, LLaRA) or the synthetic catalog →
// a prepared dataset folder (items.jsonl, users.jsonl, stats.json) via the METHOD.md §1 protocol;
// prints the Table-1 statistics.
import type { Command } from "commander";
import { basename } from "node:path";
import { formatStatsTable, writeDataset, type DatasetFileStats } from "../../data/dataset.js";
import {
  DEFAULT_CANDIDATES,
  DEFAULT_KCORE,
  DEFAULT_SEED,
  DEFAULT_USERS,
  applyProtocol,
  protocolOptionIssues,
} from "../../data/protocol.js";
import { issuesOf, rule, throwIssues } from "../../util/options.js";
import { flagNames, numberArg } from "../parse.js";
import { SOURCE_FORMATS, readSource, type SourceFormat } from "../../data/read.js";
import { prepareSynthetic } from "../../data/synthetic.js";
import type { ReadOptions } from "../../data/types.js";
import { ProgressBar } from "../../util/progress.js";

interface PrepareCliOptions {
  format: string;
  input?: string;
  meta?: string;
  out: string;
  users: string;
  kcore: string;
  candidates: string;
  seed: string;
  skipBad?: boolean;
  threads?: string;
  syntheticUsers?: string;
  items: string;
  minLength: string;
  maxLength: string;
}

/** One progress bar per big file, counted in MB read (compressed MB for .gz). */
function progressBars(): NonNullable<ReadOptions["onProgress"]> {
  const bars = new Map<string, { bar: ProgressBar; mb: number; finished: boolean }>();
  return (file, bytesRead, fileBytes) => {
    let b = bars.get(file);
    if (!b)
      bars.set(
        file,
        (b = {
          bar: new ProgressBar(`${basename(file)} (MB)`, Math.max(1, Math.round(fileBytes / 1e6))),
          mb: 0,
          finished: false,
        }),
      );
    const mb = Math.round(bytesRead / 1e6);
    b.bar.tick(mb - b.mb);
    b.mb = mb;
    if (bytesRead >= fileBytes && !b.finished) {
      b.finished = true;
      b.bar.finish();
    }
  };
}

/** A count only this command takes (catalog sizes, parser threads): a positive integer. */
function positiveIntegerArg(flag: string, v: string | undefined): number | undefined {
  const n = numberArg(v);
  throwIssues(issuesOf({ [flag]: [n, rule.positiveInteger] }));
  return n;
}

export function register(program: Command): void {
  program
    .command("prepare")
    .description(
      "read raw data (or generate the synthetic catalog), apply k-core, sampling, leave-one-out and candidates, write a dataset folder",
    )
    .requiredOption("--format <format>", `${SOURCE_FORMATS.join(" | ")} | synthetic`)
    .option("--input <path>", "reviews file (amazon*), folder or .inter file (recbole), folder (llara)")
    .option("--meta <path>", "metadata file (amazon* formats)")
    .requiredOption("--out <dir>", "output dataset folder")
    .option("--users <n>", "users to sample after the k-core", String(DEFAULT_USERS))
    .option("--kcore <k>", "iterative k-core threshold for users and items", String(DEFAULT_KCORE))
    .option("--candidates <n>", "candidate-set size, ground truth included", String(DEFAULT_CANDIDATES))
    .option("--seed <n>", "seed for sampling and candidates", String(DEFAULT_SEED))
    .option("--skip-bad", "skip malformed lines (counted in stats.json) instead of stopping at the first")
    .option(
      "--threads <n>",
      "parser worker threads (default: the CPUs this process may use, at most 8, for inputs over 16 MB; 1 = main thread)",
    )
    .option("--synthetic-users <n>", "synthetic: shoppers to generate (default: --users)")
    .option("--items <n>", "synthetic: catalog size", "600")
    .option("--min-length <n>", "synthetic: shortest purchase sequence", "8")
    .option("--max-length <n>", "synthetic: longest purchase sequence", "20")
    .action(async (o: PrepareCliOptions) => {
      const protocol = {
        users: numberArg(o.users),
        kcore: numberArg(o.kcore),
        candidates: numberArg(o.candidates),
        seed: numberArg(o.seed),
      };
      throwIssues(protocolOptionIssues(protocol), flagNames());
      let stats: DatasetFileStats;
      let prepared;
      if (o.format === "synthetic") {
        prepared = prepareSynthetic(
          {
            users: positiveIntegerArg("--synthetic-users", o.syntheticUsers) ?? protocol.users,
            items: positiveIntegerArg("--items", o.items),
            minLength: positiveIntegerArg("--min-length", o.minLength),
            maxLength: positiveIntegerArg("--max-length", o.maxLength),
            seed: protocol.seed,
          },
          protocol,
        );
        stats = { ...prepared.stats, source: prepared.source };
      } else {
        if (!(SOURCE_FORMATS as readonly string[]).includes(o.format))
          throw new Error(`unknown --format "${o.format}"; use one of ${SOURCE_FORMATS.join(", ")}, synthetic`);
        if (!o.input) throw new Error(`--input is required for --format ${o.format}`);
        const started = Date.now();
        process.stderr.write(`reading ${o.format} from ${o.input}...\n`);
        const raw = await readSource(o.format as SourceFormat, o.input, {
          meta: o.meta,
          skipBad: o.skipBad,
          threads: positiveIntegerArg("--threads", o.threads),
          onProgress: progressBars(),
        });
        process.stderr.write(
          `read ${raw.interactions.length} interactions, ${raw.items.size} titled items in ${((Date.now() - started) / 1000).toFixed(1)} s${raw.skipped ? `, skipped ${raw.skipped} malformed lines` : ""}\n`,
        );
        if ("untitled" in raw && typeof raw.untitled === "number" && raw.untitled > 0)
          process.stderr.write(`${raw.untitled} reviewed items have no usable title in the metadata and are dropped\n`);
        prepared = applyProtocol(raw.interactions, raw.items, protocol);
        stats = { ...prepared.stats, source: raw.source, ...(raw.skipped ? { skipped: raw.skipped } : {}) };
      }
      writeDataset(o.out, { items: prepared.items, users: prepared.users, stats });
      process.stdout.write(`${formatStatsTable(stats)}\nwritten: ${o.out}\n`);
    });
}
