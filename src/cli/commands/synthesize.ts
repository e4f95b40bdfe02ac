// `msr-rec synthesize`: reasoning data from a teacher (METHOD.md §2), resumable and shardable.
//   msr-rec synthesize --data DIR --teacher rules --tau 1 --out runs/x/synth
//   msr-rec synthesize --data DIR --teacher openai --base-url https://api.deepseek.com \
//       --model deepseek-reasoner --api-key-env DEEPSEEK_API_KEY --concurrency 8 --tau 1 --out DIR --shard 0/4
//   msr-rec synthesize --data DIR ... --out DIR --merge   (the shards' options; after every shard finished)
import type { Command } from "commander";
import { join } from "node:path";
import { ProgressBar } from "../../util/progress.js";
import { DEFAULT_SEED, HISTORY_LENGTH } from "../../data/protocol.js";
import { readPreparedDataset, sampleOptionIssues, SPLITS, type Split } from "../../prompts/dataset.js";
import { issuesOf, rule, throwIssues } from "../../util/options.js";
import { flagNames, numberArg, shardCommandLine } from "../parse.js";
import { defaultTemplatesDir, loadTemplates } from "../../prompts/templates.js";
import { synthesisJobs } from "../../teacher/jobs.js";
import { AnswerStore } from "../../teacher/store.js";
import {
  mergeShards,
  synthesize,
  synthesisOptionIssues,
  writeSynthesisOutput,
  DEFAULT_MAX_RETRIES,
} from "../../teacher/synthesize.js";
import { createTeacher, type TeacherKind } from "../../teacher/factory.js";
import { datasetFiles } from "../../data/dataset.js";
import { fingerprint, type Fingerprint } from "../../util/fingerprint.js";
import { parseShardSpec } from "../../util/scheduler-shard.js";
import { ShardFolders } from "../../util/shard-folders.js";

interface SynthesizeOptions {
  data?: string;
  teacher: string;
  baseUrl: string[];
  model?: string;
  apiKeyEnv: string;
  concurrency: string;
  localModel?: string;
  tau: string;
  maxRetries: string;
  split: string;
  out: string;
  shard?: string;
  merge?: boolean;
  datasetName?: string;
  templates?: string;
  temperature?: string;
  maxTokens?: string;
  historyLength: string;
  seed: string;
}

/** A count only this command takes (requests in flight, answer length): a positive integer. */
function positiveIntegerArg(flag: string, v: string): number {
  const n = numberArg(v);
  throwIssues(issuesOf({ [flag]: [n, rule.positiveInteger] }));
  return n;
}

/**
 * What a shard's lines depend on: the dataset, the teacher template, the teacher and its
 * settings (an LLM teacher's model, endpoints and sampling), τ and the sample options.
 */
function synthesisFingerprint(
  o: SynthesizeOptions,
  v: { tau: number; maxRetries: number; maxTokens: number; historyLength: number; seed: number; datasetName: string },
): Fingerprint {
  const llm =
    o.teacher === "rules"
      ? {}
      : { model: o.model ?? null, baseUrls: o.baseUrl, temperature: Number(o.temperature), maxTokens: v.maxTokens };
  const files: Record<string, string> = {
    ...datasetFiles(o.data!),
    "teacher template": join(o.templates ?? defaultTemplatesDir(), "teacher.txt"),
  };
  if (o.teacher === "local" && o.model) files["teacher model"] = o.model;
  return fingerprint(
    {
      teacher: o.teacher,
      ...llm,
      tau: v.tau,
      maxRetries: v.maxRetries,
      split: o.split,
      historyLength: v.historyLength,
      seed: v.seed,
      datasetName: v.datasetName,
    },
    files,
  );
}

export function register(program: Command): void {
  program
    .command("synthesize")
    .description("ask a teacher for five-step reasoning chains, store every answer, prune, write reasoning.jsonl")
    .option("--data <dir>", "prepared dataset folder (items.jsonl, users.jsonl, stats.json)")
    .option("--teacher <kind>", "openai | local | rules", "rules")
    .option(
      "--base-url <url>",
      "OpenAI-compatible endpoint (repeat for several, round-robin)",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option("--model <name>", "model name for the endpoint, or GGUF path for --teacher local")
    .option("--api-key-env <name>", "environment variable holding the API key", "OPENAI_API_KEY")
    .option("--concurrency <n>", "requests in flight per endpoint", "4")
    .option("--tau <n>", "valid reasoning paths wanted per sample", "1")
    .option(
      "--max-retries <n>",
      "invalid paths retried per sample (at most tau + n teacher calls)",
      String(DEFAULT_MAX_RETRIES),
    )
    .option("--split <split>", `which split to build samples from: ${SPLITS.join(" | ")}`, "train")
    .option(
      "--history-length <n>",
      "most recent items shown in prompts (a run's dataset.historyLength)",
      String(HISTORY_LENGTH),
    )
    .option(
      "--seed <n>",
      "draws the train split's negative candidates (a run's seed), so the prompts and stored answers match the run's",
      String(DEFAULT_SEED),
    )
    .option("--temperature <t>", "sampling temperature for LLM teachers", "0.7")
    .option("--max-tokens <n>", "answer length bound for LLM teachers", "2048")
    .requiredOption("--out <dir>", "output folder (answers.jsonl, reasoning.jsonl, synthesis-stats.json)")
    .option(
      "--shard <i/N|auto>",
      "only users whose id hashes to shard i of N (0-based; auto: from a Slurm array or Kubernetes Indexed Job); output goes to <out>/shard-i-of-N",
    )
    .option(
      "--merge",
      "merge the finished shards in --out into one reasoning.jsonl, as a single run writes it (give the options the shards ran with)",
    )
    .option("--dataset-name <name>", "domain name shown in prompts (default: stats.json name or folder name)")
    .option("--templates <dir>", "folder with edited prompt templates")
    .action(async (o: SynthesizeOptions) => {
      if (!o.data) {
        throw new Error(
          `--data <dir> is required (a prepared dataset folder)${o.merge ? "; --merge takes the options the shards ran with, to check each shard against them and to write the lines in a single run's order" : ""}`,
        );
      }
      if (o.shard && o.merge) throw new Error("use --shard to run a shard and --merge afterwards, not both at once");
      if (!(SPLITS as readonly string[]).includes(o.split))
        throw new Error(`--split must be one of ${SPLITS.join(", ")}, got "${o.split}"`);
      if (!["openai", "local", "rules"].includes(o.teacher))
        throw new Error(`--teacher must be openai, local or rules, got "${o.teacher}"`);
      const tau = numberArg(o.tau);
      const maxRetries = numberArg(o.maxRetries);
      throwIssues(synthesisOptionIssues({ tau, maxRetries }), flagNames());
      const concurrency = positiveIntegerArg("--concurrency", o.concurrency);
      const maxTokens = positiveIntegerArg("--max-tokens", o.maxTokens ?? "2048");
      const spec = o.shard ? parseShardSpec(o.shard) : undefined;

      const ds = readPreparedDataset(o.data, o.datasetName);
      const historyLength = numberArg(o.historyLength);
      const seed = numberArg(o.seed);
      throwIssues(sampleOptionIssues({ historyLength, seed }), flagNames());
      const templates = loadTemplates(o.templates);
      const folders = new ShardFolders(o.out, "synthesize", shardCommandLine());
      // Only shards and merges compare inputs; a single run reads no file twice.
      const current =
        spec || o.merge
          ? synthesisFingerprint(o, { tau, maxRetries, maxTokens, historyLength, seed, datasetName: ds.name })
          : undefined;
      if (o.merge) {
        const m = mergeShards(
          folders,
          synthesisJobs(ds, templates, o.split as Split, undefined, historyLength, seed),
          current!,
          o.out,
          (msg) => process.stderr.write(`${msg}\n`),
        );
        process.stdout.write(
          `merged ${m.records} lines from ${o.out}/shard-*: ${m.stats.samplesWithPaths} samples with reasoning, ${m.stats.behaviorOnly} behavior-only\n`,
        );
        return;
      }
      const resolved = spec ? folders.resolve(spec) : undefined;
      const shard = resolved?.shard;
      if (resolved)
        process.stderr.write(
          `[synthesize] shard ${resolved.shard.index}/${resolved.shard.count}${resolved.how ? ` (${resolved.how})` : ""}\n`,
        );
      const outDir = resolved ? folders.begin(resolved.shard, current!, resolved.layout) : o.out;
      const jobs = synthesisJobs(ds, templates, o.split as Split, shard, historyLength, seed);
      const teacher = await createTeacher({
        kind: o.teacher as TeacherKind,
        dataset: ds,
        baseUrls: o.baseUrl,
        model: o.model,
        apiKeyEnv: o.apiKeyEnv,
        concurrency,
        temperature: Number(o.temperature),
        maxTokens,
      });
      const store = AnswerStore.open(join(outDir, "answers.jsonl"));
      const bar = new ProgressBar(`synthesize ${o.teacher}`, jobs.length);
      const ac = new AbortController();
      const onSigint = () => ac.abort();
      process.once("SIGINT", onSigint);
      try {
        const { records, stats } = await synthesize(jobs, {
          teacher,
          store,
          tau,
          maxRetries,
          concurrency: concurrency * Math.max(1, o.baseUrl.length),
          signal: ac.signal,
          onSampleDone: (s) =>
            bar.tick(1, { accepted: s.accepted, rejected: s.attempts - s.accepted, new: s.requested }),
        });
        bar.finish();
        writeSynthesisOutput(outDir, records, stats);
        if (resolved) folders.finish(resolved.shard, current!, resolved.how);
        const rej = Object.entries(stats.rejected)
          .filter(([, n]) => n > 0)
          .map(([k, n]) => `${k} ${n}`)
          .join(", ");
        process.stdout.write(
          `${outDir}/reasoning.jsonl: ${stats.samplesWithPaths}/${stats.samples} samples with reasoning (${stats.accepted} paths), ${stats.behaviorOnly} behavior-only; ` +
            `${stats.requested} new teacher calls, ${stats.reused} reused; rejected: ${rej || "none"}\n`,
        );
      } finally {
        process.off("SIGINT", onSigint);
        store.close();
        await teacher.close?.();
      }
    });
}
