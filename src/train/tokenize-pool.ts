// Tokenizes SFT records for training on piscina worker threads. Each worker loads the model's
// tokenizer once (vocabOnly: no weights, so a worker costs a few MB whatever the model's size)
// and tokenizes chunks of records with the trainer's own tokenizeSample, so the result is
// exactly what the trainer would have produced on the main thread, in input order. Small jobs
// stay on this thread: a worker's start-up (about a second) pays only on thousands of samples.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { allowedCpus } from "../util/cpus.js";
import { loadModel } from "../engine/model.js";
import { modelSampleTokenizer, tokenizeSample, type SftRecord } from "./samples.js";
import type { TokenizedSample } from "../engine/train-batch.js";
import type { TokenizeJob } from "./tokenize-worker.js";

/** Without an explicit thread count, one worker per this many records (up to the cores, at most 8). */
export const RECORDS_PER_TOKENIZER = 4096;

export interface TokenizePoolOptions {
  /** Worker threads; 1 tokenizes on this thread. */
  threads?: number;
  /** Records per task (default 256). */
  chunkSize?: number;
  /** The compiled worker module (default: tokenize-worker.js beside this module, when compiled). */
  workerFile?: string;
}

function defaultWorker(): string | undefined {
  const beside = fileURLToPath(new URL("./tokenize-worker.js", import.meta.url));
  return existsSync(beside) ? beside : undefined;
}

/** The worker threads a job of `n` records gets with these options (1 = this thread). */
export function tokenizeThreads(n: number, o: TokenizePoolOptions = {}): number {
  const chunk = o.chunkSize ?? 256;
  if (!Number.isInteger(chunk) || chunk < 1)
    throw new Error(`chunkSize must be a positive integer, got ${o.chunkSize}`);
  const wanted = o.threads ?? Math.min(8, allowedCpus(), Math.ceil(n / RECORDS_PER_TOKENIZER));
  const threads = Math.max(1, Math.min(wanted, Math.ceil(n / chunk)));
  return threads > 1 && (o.workerFile ?? defaultWorker()) !== undefined ? threads : 1;
}

/** Tokenizes `records` with the tokenizer of the GGUF at `modelPath`, in order. */
export async function tokenizeRecords(
  modelPath: string,
  records: readonly SftRecord[],
  o: TokenizePoolOptions = {},
): Promise<TokenizedSample[]> {
  const threads = tokenizeThreads(records.length, o);
  if (threads === 1) {
    const m = await loadModel(modelPath, { vocabOnly: true, threads: 1 });
    try {
      const tok = modelSampleTokenizer(m);
      return records.map((r) => tokenizeSample(tok, r));
    } finally {
      m.dispose();
    }
  }
  const workerFile = o.workerFile ?? defaultWorker()!;
  if (!existsSync(workerFile))
    throw new Error(`tokenize worker ${workerFile} not found; build with \`npm run build:ts\``);
  const job: TokenizeJob = { modelPath };
  const pool = new Piscina<SftRecord[], TokenizedSample[]>({
    filename: pathToFileURL(workerFile).href,
    minThreads: threads,
    maxThreads: threads,
    workerData: job,
  });
  try {
    const chunk = o.chunkSize ?? 256;
    const tasks: Promise<TokenizedSample[]>[] = [];
    for (let i = 0; i < records.length; i += chunk) tasks.push(pool.run(records.slice(i, i + chunk)));
    return (await Promise.all(tasks)).flat();
  } finally {
    await pool.destroy();
  }
}
