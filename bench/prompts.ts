// Prompt building throughput: the piscina pool (worker threads, JSONL chunks, [start, end) tasks)
// against one thread, on synthetic shoppers from the demo catalog. "one-shot" times a whole
// `msr-rec prompts`-like run: read the dataset folder, build, with worker start-up inside the
// timed region for the pool; "warm" reuses a started pool on samples already in memory.
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { prepareSynthetic } from "../src/data/synthetic.js";
import { writeDataset } from "../src/data/dataset.js";
import { readPreparedDataset, samplesFor, type PromptSample } from "../src/prompts/dataset.js";
import { PromptPool, usesWorkers } from "../src/prompts/pool.js";
import { promptJsonl, type PromptSetup } from "../src/prompts/records.js";
import { loadTemplates } from "../src/prompts/templates.js";
import { medianMs, newResult, type BenchResult, type SuiteFlags } from "./lib.js";

export const description = "prompt building (prompts/s): worker pool vs one thread";
export const flags = {} as const satisfies SuiteFlags;

const USERS = 6000;

export async function run(): Promise<BenchResult> {
  const result = newResult("prompts");
  const template = loadTemplates().teacher;
  const data = prepareSynthetic({ users: USERS }, { users: USERS });
  const dir = mkdtempSync(join(tmpdir(), "msr-bench-prompts-"));
  try {
    writeDataset(dir, { items: data.items, users: data.users, stats: { ...data.stats, source: data.source } });
    const cores = Math.max(2, Math.min(8, availableParallelism()));
    const n = data.users.length;

    const oneThread = await medianMs(
      () => {
        const ds = readPreparedDataset(dir);
        const setup: PromptSetup = {
          dataset: ds.name,
          kind: "teacher",
          template,
          titles: new Map([...ds.items].map(([id, it]) => [id, it.title])),
        };
        return promptJsonl(setup, samplesFor(ds, "test"));
      },
      5,
      1,
    );
    result.results.push({
      name: `one-shot, one thread, ${n} prompts`,
      value: n / (oneThread / 1000),
      unit: "prompts/s",
    });
    if (!usesWorkers({ threads: cores })) {
      result.results.push({
        name: "pool skipped: no compiled worker (run the bench from dist/)",
        value: 0,
        unit: "prompts/s",
      });
      return result;
    }
    const oneShotPool = await medianMs(
      async () => {
        const pool = PromptPool.fromFolder(
          { dataDir: dir, split: "test", historyLength: 10, kind: "teacher", template },
          { threads: cores },
        );
        try {
          return await pool.build();
        } finally {
          await pool.destroy();
        }
      },
      5,
      1,
    );
    result.results.push({
      name: `one-shot, pool of ${cores} threads incl. start-up, ${n} prompts`,
      value: n / (oneShotPool / 1000),
      unit: "prompts/s",
    });
    result.ratios["one-shot: pool / one thread"] = oneThread / oneShotPool;

    // Steady state: 20 copies of the users (as a 120k-user dataset), samples in memory.
    const ds = readPreparedDataset(dir);
    const setup: PromptSetup = {
      dataset: ds.name,
      kind: "teacher",
      template,
      titles: new Map([...ds.items].map(([id, it]) => [id, it.title])),
    };
    const base = samplesFor(ds, "test");
    const samples: PromptSample[] = Array.from({ length: 20 }, () => base).flat();
    const single = await medianMs(() => promptJsonl(setup, samples), 5, 1);
    result.results.push({
      name: `warm, one thread, ${samples.length} prompts`,
      value: samples.length / (single / 1000),
      unit: "prompts/s",
    });
    const warm = PromptPool.fromSamples(setup, samples, { threads: cores });
    try {
      const steady = await medianMs(() => warm.build(), 5, 1);
      result.results.push({
        name: `warm, pool of ${cores} threads, ${samples.length} prompts`,
        value: samples.length / (steady / 1000),
        unit: "prompts/s",
      });
      result.ratios["warm: pool / one thread"] = single / steady;
    } finally {
      await warm.destroy();
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
