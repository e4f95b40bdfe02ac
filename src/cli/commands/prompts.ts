// `msr-rec prompts`: builds one kind of prompt for every user of a prepared dataset, on piscina
// worker threads, and writes them as JSON lines (user, split, kind, prompt, candidates, target).
//   msr-rec prompts --data runs/x/data --kind item --split test --out runs/x/prompts-item.jsonl
// With --count-tokens MODEL.gguf each line also gets the prompt's length in that model's tokens.
import type { Command } from "commander";
import { ProgressBar } from "../../util/progress.js";
import { writeFileAtomic } from "../../util/atomic-write.js";
import { DEFAULT_SEED, HISTORY_LENGTH } from "../../data/protocol.js";
import { sampleOptionIssues, SPLITS, type Split } from "../../prompts/dataset.js";
import { issuesOf, rule, throwIssues } from "../../util/options.js";
import { flagNames, numberArg } from "../parse.js";
import { isPromptKind, loadTemplates, PROMPT_KINDS } from "../../prompts/templates.js";
import { defaultPromptThreads, PromptPool, SAMPLES_PER_WORKER } from "../../prompts/pool.js";
import { withTokenCounts } from "../../prompts/records.js";

interface PromptsOptions {
  data: string;
  kind: string;
  split: string;
  out: string;
  threads?: string;
  history: string;
  seed: string;
  datasetName?: string;
  templates?: string;
  countTokens?: string;
}

export function register(program: Command): void {
  program
    .command("prompts")
    .description("build prompts (teacher, train, user, item or full) for every user of a prepared dataset")
    .requiredOption("--data <dir>", "prepared dataset folder (items.jsonl, users.jsonl, stats.json)")
    .requiredOption("--kind <kind>", PROMPT_KINDS.join(" | "))
    .option("--split <split>", SPLITS.join(" | "), "test")
    .requiredOption("--out <file>", "output JSONL file")
    .option(
      "--threads <n>",
      `worker threads (default: one per ${SAMPLES_PER_WORKER} prompts, at most ${defaultPromptThreads()})`,
    )
    .option("--history <n>", "most recent history items shown", String(HISTORY_LENGTH))
    .option(
      "--seed <n>",
      "draws the train split's negative candidates (a run's seed), so train prompts match the run's",
      String(DEFAULT_SEED),
    )
    .option("--dataset-name <name>", "domain name shown in prompts (default: stats.json name or folder name)")
    .option("--templates <dir>", "folder with edited prompt templates")
    .option("--count-tokens <gguf>", "add each prompt's token count under this model's tokenizer")
    .action(async (o: PromptsOptions) => {
      if (!isPromptKind(o.kind)) throw new Error(`--kind must be one of ${PROMPT_KINDS.join(", ")}, got "${o.kind}"`);
      if (!(SPLITS as readonly string[]).includes(o.split))
        throw new Error(`--split must be one of ${SPLITS.join(", ")}, got "${o.split}"`);
      const threads = numberArg(o.threads);
      const history = numberArg(o.history);
      const seed = numberArg(o.seed);
      throwIssues(issuesOf({ threads: [threads, rule.positiveInteger] }), flagNames());
      throwIssues(sampleOptionIssues({ historyLength: history, seed }), flagNames({ historyLength: "--history" }));
      const template = loadTemplates(o.templates)[o.kind];
      const t0 = Date.now();
      const pool = PromptPool.fromFolder(
        {
          dataDir: o.data,
          datasetName: o.datasetName,
          split: o.split as Split,
          historyLength: history,
          seed,
          kind: o.kind,
          template,
        },
        { threads },
      );
      let chunks: string[];
      try {
        chunks = await pool.build();
      } finally {
        await pool.destroy();
      }
      const buildMs = Date.now() - t0;
      if (o.countTokens) {
        const { loadModel } = await import("../../engine/index.js");
        const model = await loadModel(o.countTokens);
        try {
          const bar = new ProgressBar("tokens", chunks.length);
          chunks = chunks.map((c) => {
            const r = withTokenCounts(c, (text) => model.tokenize(text, { addBos: true }).length);
            bar.tick();
            return r;
          });
          bar.finish();
        } finally {
          model.dispose();
        }
      }
      writeFileAtomic(o.out, chunks.join(""));
      const how = pool.parallel ? "worker threads" : "the main thread";
      process.stdout.write(`${o.out}: ${pool.size} ${o.kind} prompts (${o.split}) built in ${buildMs} ms on ${how}\n`);
    });
}
