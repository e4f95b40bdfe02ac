// Streaming line input for the readers: files are read as streams (gzip detected by its magic
// bytes and inflated with zlib), never loaded whole; lines come in numbered chunks that the parse
// pool hands to workers.
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

/** Consecutive lines in chunks of at most `maxLines` lines or about `maxChars` characters. */
export async function* readLineChunks(path: string, maxLines = 4096, maxChars = 1 << 20): AsyncGenerator<{ firstLine: number; lines: string[] }> {
  let lines: string[] = [];
  let chars = 0;
  let firstLine = 1;
  for await (const { text, line } of readLines(path)) {
    if (lines.length === 0) firstLine = line;
    lines.push(text);
    chars += text.length;
    if (lines.length >= maxLines || chars >= maxChars) {
      yield { firstLine, lines };
      lines = [];
      chars = 0;
    }
  }
  if (lines.length) yield { firstLine, lines };
}
