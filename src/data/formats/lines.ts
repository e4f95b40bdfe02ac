// Streaming input for the readers: files are read as streams (gzip detected by its magic bytes
// and inflated with zlib), never loaded whole. The parse pool takes byte chunks cut at line ends
// (a standalone ArrayBuffer each, so it can be transferred to a worker without a copy), with the
// number of their first line; small side files are read line by line.
import { createReadStream, existsSync, openSync, readSync, closeSync, statSync, type ReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";

export function isGzip(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(2);
    return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

export function assertFile(path: string, what: string): void {
  if (!existsSync(path)) throw new Error(`${what} not found: ${path}`);
  if (!statSync(path).isFile()) throw new Error(`${what} is not a file: ${path}`);
}

/** A text stream of the file, inflated if it is gzip. */
export function openText(path: string): Readable {
  const raw = createReadStream(path);
  if (!isGzip(path)) return raw.setEncoding("utf8");
  const gunzip = createGunzip();
  raw.on("error", (e) => gunzip.destroy(e));
  return raw.pipe(gunzip).setEncoding("utf8");
}

/** Lines of a file with 1-based numbers (\n or \r\n endings). */
export async function* readLines(path: string): AsyncGenerator<{ text: string; line: number }> {
  const rl = createInterface({ input: openText(path), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of rl) yield { text, line: ++line };
  } catch (e) {
    throw new Error(
      `${path}: cannot read (${(e as Error).message})${isGzip(path) ? "; is the .gz file complete?" : ""}`,
    );
  }
}

/** A raw byte stream of the file, inflated if it is gzip, and the file stream (for `bytesRead`). */
export function openBytes(path: string): { stream: Readable; file: ReadStream } {
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  if (!isGzip(path)) return { stream: file, file };
  const gunzip = createGunzip({ chunkSize: 1 << 20 });
  file.on("error", (e) => gunzip.destroy(e));
  return { stream: file.pipe(gunzip), file };
}

function countNewlines(b: Uint8Array): number {
  let n = 0;
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
  return n;
}

/**
 * Whole lines in chunks of about `chunkBytes` bytes (cut after a newline), each with the number
 * of its first line and the file bytes read so far (compressed bytes for .gz), which reaches the
 * file size exactly with the last chunk.
 */
export async function* readByteChunks(
  path: string,
  chunkBytes = 1 << 20,
): AsyncGenerator<{ firstLine: number; bytes: Uint8Array; fileBytesRead: number }> {
  const total = statSync(path).size;
  const gz = isGzip(path);
  const { stream, file } = openBytes(path);
  let pending: Buffer = Buffer.alloc(0);
  let nextLine = 1;
  let consumed = 0;
  // One chunk of look-ahead, so the last chunk can be told apart and report the full size.
  let held: { firstLine: number; bytes: Uint8Array } | undefined;
  const cutChunk = (end: number): { firstLine: number; bytes: Uint8Array } => {
    // A fresh ArrayBuffer: stream buffers share pooled memory and cannot be transferred.
    const bytes = new Uint8Array(end);
    bytes.set(pending.subarray(0, end));
    pending = pending.subarray(end);
    const chunk = { firstLine: nextLine, bytes };
    nextLine += countNewlines(bytes);
    consumed += end;
    return chunk;
  };
  const progress = (): number => Math.min(total - 1, gz ? file.bytesRead : consumed);
  try {
    for await (const buf of stream as AsyncIterable<Buffer>) {
      pending = pending.length ? Buffer.concat([pending, buf]) : buf;
      // Cut after the first newline at or beyond chunkBytes; a longer line waits for more data.
      for (let cut = pending.indexOf(10, chunkBytes - 1); cut !== -1; cut = pending.indexOf(10, chunkBytes - 1)) {
        const chunk = cutChunk(cut + 1);
        if (held) yield { ...held, fileBytesRead: progress() };
        held = chunk;
      }
    }
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})${gz ? "; is the .gz file complete?" : ""}`);
  }
  if (pending.length > 0) {
    const chunk = cutChunk(pending.length);
    if (held) yield { ...held, fileBytesRead: progress() };
    held = chunk;
  }
  if (held) yield { ...held, fileBytesRead: total };
}
