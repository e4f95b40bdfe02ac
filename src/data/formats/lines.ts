// Streaming input for the readers: files are read as streams (gzip detected by its magic bytes
// and inflated with zlib), never loaded whole. The parse pool takes byte chunks cut at line ends
// (a standalone ArrayBuffer each, so it can be transferred to a worker without a copy), with the
// number of their first line; small side files are read line by line.
import { createReadStream, existsSync, openSync, readSync, closeSync, statSync } from "node:fs";
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
    throw new Error(`${path}: cannot read (${(e as Error).message})${isGzip(path) ? "; is the .gz file complete?" : ""}`);
  }
}

/** A raw byte stream of the file, inflated if it is gzip. */
export function openBytes(path: string): Readable {
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  if (!isGzip(path)) return raw;
  const gunzip = createGunzip({ chunkSize: 1 << 20 });
  raw.on("error", (e) => gunzip.destroy(e));
  return raw.pipe(gunzip);
}

function countNewlines(b: Uint8Array): number {
  let n = 0;
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
  return n;
}

/** Whole lines in chunks of about `chunkBytes` bytes (cut after a newline), each with the number of its first line. */
export async function* readByteChunks(path: string, chunkBytes = 1 << 20): AsyncGenerator<{ firstLine: number; bytes: Uint8Array }> {
  let parts: Buffer[] = [];
  let size = 0;
  let firstLine = 1;
  const take = (end: number): Uint8Array => {
    const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    // Copy into a fresh ArrayBuffer: stream buffers share pooled memory and cannot be transferred.
    const out = new Uint8Array(end);
    out.set(all.subarray(0, end));
    const rest = all.subarray(end);
    parts = rest.length ? [rest] : [];
    size = rest.length;
    return out;
  };
  try {
    for await (const buf of openBytes(path) as AsyncIterable<Buffer>) {
      parts.push(buf);
      size += buf.length;
      if (size < chunkBytes) continue;
      const cut = buf.lastIndexOf(10);
      if (cut === -1) continue; // a very long line: keep reading until it ends
      const bytes = take(size - buf.length + cut + 1);
      const lines = countNewlines(bytes); // before yielding: the consumer may transfer `bytes`
      yield { firstLine, bytes };
      firstLine += lines;
    }
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})${isGzip(path) ? "; is the .gz file complete?" : ""}`);
  }
  if (size > 0) yield { firstLine, bytes: take(size) };
}
