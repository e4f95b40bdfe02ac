// Builds thousands of prompts in parallel on piscina worker threads. Each worker receives the
// whole job once (samples in memory, or a dataset folder it reads itself); tasks are [start, end)
// ranges and each returns one JSONL string, so per-task traffic is one string copy. Chunks come
// back in input order. With one thread, or when no compiled worker exists (running from
// TypeScript sources), the same promptJsonl runs on this thread.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { allowedCpus } from "../util/cpus.js";
import { readPreparedDataset, samplesFor, type PromptSample, type Split } from "./dataset.js";
import { promptJsonl, type PromptSetup } from "./records.js";
import type { WorkerJob } from "./worker.js";

/**
 * Without an explicit thread count, one worker per this many samples (up to the cores): filling a
 * template costs microseconds, so worker start-up (a second or more) only pays off on big jobs
 * (see bench/prompts.ts).
 */
export const SAMPLES_PER_WORKER = 50_000;

export interface PromptPoolOptions {
  /** Worker threads; 1 builds on this thread. Default: one per SAMPLES_PER_WORKER samples, at most the cores (8). */
  threads?: number;
  /** Samples per task (default 1024). */
  chunkSize?: number;
  /** The compiled worker module (default: worker.js beside this module, when compiled). */
  workerFile?: string;
}

/** A prepared dataset folder as the source of a prompt job. */
export interface FolderSource {
  dataDir: string;
  datasetName?: string;
  split: Split;
  historyLength: number;
  /** Draws the train split's negatives (a run's seed; default DEFAULT_SEED). */
  seed?: number;
  kind: PromptSetup["kind"];
  template: string;
}

export function defaultPromptWorker(): string | undefined {
  const beside = fileURLToPath(new URL("./worker.js", import.meta.url));
  return existsSync(beside) ? beside : undefined;
}

export function defaultPromptThreads(): number {
  return Math.min(8, allowedCpus());
}

/** Whether a run with these options would use worker threads. */
export function usesWorkers(o: PromptPoolOptions = {}): boolean {
  return (o.threads ?? defaultPromptThreads()) > 1 && (o.workerFile ?? defaultPromptWorker()) !== undefined;
}

function ranges(n: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < n; i += size) out.push([i, Math.min(n, i + size)]);
  return out;
}

/**
 * A pool of prompt workers bound to one job, kept alive across calls so repeated builds do not
 * pay the worker start-up again.
 */
export class PromptPool {
  private constructor(
    private readonly local: { setup: PromptSetup; samples: readonly PromptSample[] } | null,
    private readonly pool: Piscina<[number, number], string> | null,
    readonly size: number,
    private readonly chunkSize: number,
  ) {}

  private static start(job: WorkerJob, size: number, o: PromptPoolOptions): Piscina<[number, number], string> | null {
    const wanted = o.threads ?? Math.min(defaultPromptThreads(), Math.ceil(size / SAMPLES_PER_WORKER));
    const threads = Math.min(wanted, Math.ceil(size / (o.chunkSize ?? 1024)));
    const workerFile = threads > 1 ? (o.workerFile ?? defaultPromptWorker()) : undefined;
    if (!workerFile) return null;
    if (!existsSync(workerFile))
      throw new Error(`prompt worker ${workerFile} not found; build with \`npm run build:ts\``);
    return new Piscina<[number, number], string>({
      filename: pathToFileURL(workerFile).href,
      minThreads: threads,
      maxThreads: threads,
      workerData: job,
    });
  }

  private static chunkSize(o: PromptPoolOptions): number {
    const size = o.chunkSize ?? 1024;
    if (!Number.isInteger(size) || size < 1)
      throw new Error(`chunkSize must be a positive integer, got ${o.chunkSize}`);
    return size;
  }

  /** A pool over samples held in memory (cloned to each worker once). */
  static fromSamples(setup: PromptSetup, samples: readonly PromptSample[], o: PromptPoolOptions = {}): PromptPool {
    const chunk = PromptPool.chunkSize(o);
    const job: WorkerJob = {
      dataset: setup.dataset,
      kind: setup.kind,
      template: setup.template,
      titles: [...setup.titles],
      samples: [...samples],
    };
    const pool = PromptPool.start(job, samples.length, o);
    return new PromptPool(pool ? null : { setup, samples }, pool, samples.length, chunk);
  }

  /** A pool over a prepared dataset folder: every worker reads it on its own thread. */
  static fromFolder(src: FolderSource, o: PromptPoolOptions = {}): PromptPool {
    const chunk = PromptPool.chunkSize(o);
    // The main thread reads it too: to know the size, and to fail early with a clear message.
    const ds = readPreparedDataset(src.dataDir, src.datasetName);
    const samples = samplesFor(ds, src.split, src.historyLength, src.seed);
    const pool = PromptPool.start(src, samples.length, o);
    const setup: PromptSetup = {
      dataset: ds.name,
      kind: src.kind,
      template: src.template,
      titles: new Map([...ds.items].map(([id, it]) => [id, it.title])),
    };
    return new PromptPool(pool ? null : { setup, samples }, pool, samples.length, chunk);
  }

  /** True when builds run on worker threads (false: on this thread). */
  get parallel(): boolean {
    return this.pool !== null;
  }

  /** JSONL chunks for every sample, in order; concatenated they equal promptJsonl(setup, samples). */
  async build(): Promise<string[]> {
    const parts = ranges(this.size, this.chunkSize);
    if (this.local) {
      const { setup, samples } = this.local;
      return parts.map(([a, b]) => promptJsonl(setup, samples.slice(a, b)));
    }
    return Promise.all(parts.map((r) => this.pool!.run(r)));
  }

  async destroy(): Promise<void> {
    await this.pool?.destroy();
  }
}

/** One-shot build over samples in memory: starts a pool, builds, stops it. */
export async function buildPromptsParallel(
  setup: PromptSetup,
  samples: readonly PromptSample[],
  o: PromptPoolOptions = {},
): Promise<string[]> {
  const pool = PromptPool.fromSamples(setup, samples, o);
  try {
    return await pool.build();
  } finally {
    await pool.destroy();
  }
}
