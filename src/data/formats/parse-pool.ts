// Parses a file's lines with one line parser, fanned out over piscina worker threads: the main
// thread only reads byte chunks cut at line ends (transferred, not copied, to a worker), workers
// decode, split and parse them, and results are consumed strictly in file order (a bounded
// window of chunks in flight). With one thread, or when no compiled worker
// exists (running from TypeScript sources), the same `parseChunk` runs on the main thread.
// `onProgress` reports bytes read from the file (compressed bytes for .gz) for progress bars.
// Malformed lines throw `<file>:<line>: <what>` (the first in file order), or with `skipBad`
// are counted and skipped.
import { existsSync, statSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { allowedCpus } from "../../util/cpus.js";
import { readByteChunks } from "./lines.js";
import { parseChunk, type ChunkResult, type ChunkTask, type LineKind } from "./parse-chunk.js";
import type { LineRecord } from "./records.js";

export interface ParseOptions {
  /** Worker threads; 1 parses on the main thread. Default: `autoThreads(file size)`. */
  threads?: number;
  skipBad?: boolean;
  /** The compiled worker module; defaults to parse-worker.js beside this file (or in dist/). */
  workerFile?: string;
  /** Bytes per chunk (default 1 MiB). */
  chunkBytes?: number;
  /** Called after each chunk with the bytes read so far and the file size. */
  onProgress?: (bytesRead: number, fileBytes: number) => void;
  /** A pool to reuse across files (see openParsePool); otherwise one is opened for this file. */
  pool?: ParsePool;
}

/** Worker threads running parse-worker.js; `undefined` from openParsePool means parse inline. */
export class ParsePool {
  private readonly piscina: Piscina<ChunkTask, ChunkResult>;
  constructor(
    workerFile: string,
    readonly threads: number,
  ) {
    this.piscina = new Piscina<ChunkTask, ChunkResult>({
      filename: pathToFileURL(workerFile).href,
      maxThreads: threads,
      minThreads: threads,
      idleTimeout: 60_000,
    });
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

/**
 * The compiled worker beside this module (dist/), if it exists. Running from TypeScript sources
 * there is none, and parsing stays on the main thread rather than risk a stale build in dist/.
 */
export function defaultWorkerFile(): string | undefined {
  if (!import.meta.url.endsWith(".js")) return undefined;
  const beside = fileURLToPath(new URL("./parse-worker.js", import.meta.url));
  return existsSync(beside) ? beside : undefined;
}

export function defaultThreads(): number {
  return Math.min(8, allowedCpus());
}

/** Below this much input, starting workers costs more than it saves: parse on the main thread. */
export const POOL_MIN_BYTES = 16e6;

/** Threads to use when the caller did not say: the pool only for big inputs. */
export function autoThreads(inputBytes: number): number {
  return inputBytes >= POOL_MIN_BYTES ? defaultThreads() : 1;
}

/**
 * Calls `onRecord` for every parsed line of `path` in file order; returns how many malformed
 * lines were skipped.
 */
export async function parseFile(
  path: string,
  kind: LineKind,
  options: ParseOptions,
  onRecord: (record: LineRecord, line: number) => void,
): Promise<{ skipped: number }> {
  let skipped = 0;
  const handleError = (err: { line: number; message: string }): void => {
    if (!options.skipBad)
      throw new Error(`${path}:${err.line}: ${err.message} (pass --skip-bad to skip malformed lines)`);
    skipped++;
  };
  const fileBytes = statSync(path).size;
  const consume = (r: ChunkResult, bytesRead: number): void => {
    // Errors and records are interleaved by line so the first bad line in file order is reported.
    let e = 0;
    for (let k = 0; k < r.records.length; k++) {
      while (e < r.errors.length && r.errors[e]!.line < r.lineNumbers[k]!) handleError(r.errors[e++]!);
      onRecord(r.records[k]!, r.lineNumbers[k]!);
    }
    while (e < r.errors.length) handleError(r.errors[e++]!);
    options.onProgress?.(bytesRead, fileBytes);
  };
  const chunks = readByteChunks(path, options.chunkBytes ?? 1 << 20);
  const pool =
    options.pool ?? openParsePool(options.threads ?? autoThreads(fileBytes), options.workerFile ?? defaultWorkerFile());
  if (!pool) {
    for await (const c of chunks)
      consume(parseChunk({ kind, firstLine: c.firstLine, bytes: c.bytes }), c.fileBytesRead);
    return { skipped };
  }
  const inFlight: { result: Promise<ChunkResult>; bytesRead: number }[] = [];
  const next = async (): Promise<void> => {
    const head = inFlight.shift()!;
    consume(await head.result, head.bytesRead);
  };
  try {
    for await (const c of chunks) {
      const result = pool.run({ kind, firstLine: c.firstLine, bytes: c.bytes });
      result.catch(() => undefined); // awaited in order below; avoid an unhandled rejection meanwhile
      inFlight.push({ result, bytesRead: c.fileBytesRead });
      if (inFlight.length >= pool.threads * 2) await next();
    }
    while (inFlight.length) await next();
  } finally {
    if (!options.pool) await pool.close();
  }
  return { skipped };
}
