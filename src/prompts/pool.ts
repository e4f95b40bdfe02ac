// Builds thousands of prompts in parallel on piscina worker threads. Samples are cut into chunks;
// each worker returns one JSONL string per chunk (one cheap string copy back instead of thousands
// of small objects) and the chunks come back in input order. With one thread, or when no compiled
// worker exists (running from TypeScript sources), the same promptJsonl runs on this thread.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import type { PromptSample } from "./dataset.js";
import { promptJsonl, type PromptSetup } from "./records.js";
import type { WorkerSetup } from "./worker.js";

export interface PromptPoolOptions {
  /** Worker threads (default: available cores, at most 8); 1 builds on this thread. */
  threads?: number;
  /** Samples per task (default 512). */
  chunkSize?: number;
  /** The compiled worker module (default: worker.js beside this module, when compiled). */
  workerFile?: string;
}

export function defaultPromptWorker(): string | undefined {
  const beside = fileURLToPath(new URL("./worker.js", import.meta.url));
  return existsSync(beside) ? beside : undefined;
}

export function defaultPromptThreads(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** Whether a run with these options would use worker threads. */
export function usesWorkers(o: PromptPoolOptions = {}): boolean {
  return (o.threads ?? defaultPromptThreads()) > 1 && (o.workerFile ?? defaultPromptWorker()) !== undefined;
}

/** JSONL chunks for `samples`, in order; concatenated they equal promptJsonl(setup, samples). */
export async function buildPromptsParallel(setup: PromptSetup, samples: readonly PromptSample[], o: PromptPoolOptions = {}): Promise<string[]> {
  const size = o.chunkSize ?? 512;
  if (!Number.isInteger(size) || size < 1) throw new Error(`chunkSize must be a positive integer, got ${o.chunkSize}`);
  const parts = chunks(samples, size);
  const threads = Math.min(o.threads ?? defaultPromptThreads(), Math.max(1, parts.length));
  const workerFile = threads > 1 ? (o.workerFile ?? defaultPromptWorker()) : undefined;
  if (!workerFile) return parts.map((p) => promptJsonl(setup, p));
  if (!existsSync(workerFile)) throw new Error(`prompt worker ${workerFile} not found; build with \`npm run build:ts\``);
  const workerData: WorkerSetup = { dataset: setup.dataset, kind: setup.kind, template: setup.template, titles: [...setup.titles] };
  const pool = new Piscina<PromptSample[], string>({ filename: pathToFileURL(workerFile).href, minThreads: threads, maxThreads: threads, workerData });
  try {
    return await Promise.all(parts.map((p) => pool.run(p)));
  } finally {
    await pool.destroy();
  }
}
