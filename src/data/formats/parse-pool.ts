// Parses a file's lines with one line parser, fanned out over piscina worker threads: the main
// thread only reads byte chunks cut at line ends (transferred, not copied, to a worker), workers
// decode, split and parse them, and results are consumed strictly in file order (a bounded
// window of chunks in flight). With one thread, or when no compiled worker
// exists (running from TypeScript sources), the same `parseChunk` runs on the main thread.
// Malformed lines throw `<file>:<line>: <what>` (the first in file order), or with `skipBad`
// are counted and skipped.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { packageRoot } from "../../util/paths.js";
import { readByteChunks } from "./lines.js";
import { parseChunk, type ChunkResult, type ChunkTask, type LineKind } from "./parse-chunk.js";
import type { LineRecord } from "./records.js";

export interface ParseOptions {
  /** Worker threads (default: available cores, at most 8). 1 parses on the main thread. */
  threads?: number;
  skipBad?: boolean;
  /** The compiled worker module; defaults to parse-worker.js beside this file (or in dist/). */
  workerFile?: string;
  /** Bytes per chunk (default 1 MiB). */
  chunkBytes?: number;
  /** A pool to reuse across files (see openParsePool); otherwise one is opened for this file. */
  pool?: ParsePool;
}

/** Worker threads running parse-worker.js; `undefined` from openParsePool means parse inline. */
export class ParsePool {
  private readonly piscina: Piscina<ChunkTask, ChunkResult>;
  constructor(workerFile: string, readonly threads: number) {
    this.piscina = new Piscina<ChunkTask, ChunkResult>({ filename: pathToFileURL(workerFile).href, maxThreads: threads, minThreads: threads, idleTimeout: 60_000 });
  }
  run(task: ChunkTask): Promise<ChunkResult> {
    return this.piscina.run(task, { transferList: [task.bytes.buffer as ArrayBuffer] });
  }
  close(): Promise<void> {
    return this.piscina.destroy();
  }
}

/** A pool of `threads` workers, or undefined when parsing should stay on the main thread. */
export function openParsePool(threads = defaultThreads(), workerFile = defaultWorkerFile()): ParsePool | undefined {
  return threads > 1 && workerFile ? new ParsePool(workerFile, threads) : undefined;
}

/** The compiled worker, if one exists: beside this module, or in dist/ when running from src/. */
export function defaultWorkerFile(): string | undefined {
  const beside = fileURLToPath(new URL("./parse-worker.js", import.meta.url));
  if (existsSync(beside)) return beside;
  const built = join(packageRoot, "dist", "src", "data", "formats", "parse-worker.js");
  return existsSync(built) ? built : undefined;
}

export function defaultThreads(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

/**
 * Calls `onRecord` for every parsed line of `path` in file order; returns how many malformed
 * lines were skipped.
 */
export async function parseFile(path: string, kind: LineKind, options: ParseOptions, onRecord: (record: LineRecord, line: number) => void): Promise<{ skipped: number }> {
  let skipped = 0;
  const handleError = (err: { line: number; message: string }): void => {
    if (!options.skipBad) throw new Error(`${path}:${err.line}: ${err.message} (pass --skip-bad to skip malformed lines)`);
    skipped++;
  };
  const consume = (r: ChunkResult): void => {
    // Errors and records are interleaved by line so the first bad line in file order is reported.
    let e = 0;
    for (let k = 0; k < r.records.length; k++) {
      while (e < r.errors.length && r.errors[e]!.line < r.lineNumbers[k]!) handleError(r.errors[e++]!);
      onRecord(r.records[k]!, r.lineNumbers[k]!);
    }
    while (e < r.errors.length) handleError(r.errors[e++]!);
  };
  const chunks = readByteChunks(path, options.chunkBytes ?? 1 << 20);
  const pool = options.pool ?? openParsePool(options.threads ?? defaultThreads(), options.workerFile ?? defaultWorkerFile());
  if (!pool) {
    for await (const c of chunks) consume(parseChunk({ kind, ...c }));
    return { skipped };
  }
  const inFlight: Promise<ChunkResult>[] = [];
  try {
    for await (const c of chunks) {
      const p = pool.run({ kind, ...c });
      p.catch(() => undefined); // awaited in order below; avoid an unhandled rejection meanwhile
      inFlight.push(p);
      if (inFlight.length >= pool.threads * 2) consume(await inFlight.shift()!);
    }
    while (inFlight.length) consume(await inFlight.shift()!);
  } finally {
    if (!options.pool) await pool.close();
  }
  return { skipped };
}
