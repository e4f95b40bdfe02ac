// JSON-lines input and atomic output for CLI commands and run logs.
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  type WriteStream,
} from "node:fs";
import { createInterface } from "node:readline";
import { StringDecoder } from "node:string_decoder";
import { writeFileAtomic } from "./atomic-write.js";

/**
 * The lines of a UTF-8 text file, read in 1 MiB chunks on this thread: no whole-file string, so
 * files past V8's string limit (~512 MB) read too. A trailing "\r" is dropped (CRLF files).
 */
export function* readLinesSync(path: string): Generator<string> {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    const decoder = new StringDecoder("utf8");
    let rest = "";
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) {
      const lines = (rest + decoder.write(buf.subarray(0, n))).split("\n");
      rest = lines.pop()!;
      for (const l of lines) yield l.endsWith("\r") ? l.slice(0, -1) : l;
    }
    rest += decoder.end();
    if (rest !== "") yield rest.endsWith("\r") ? rest.slice(0, -1) : rest;
  } finally {
    closeSync(fd);
  }
}

/** Reads every line of a JSONL file; a malformed line is an error naming the file and line. */
export async function readJsonl<T = unknown>(path: string): Promise<T[]> {
  if (!existsSync(path)) throw new Error(`input file not found: ${path}`);
  const out: T[] = [];
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    n++;
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      throw new Error(`${path}:${n}: not valid JSON (${(e as Error).message})`);
    }
  }
  return out;
}

/** Streams lines to `path` through a temp file that is renamed into place only on commit(). */
export class AtomicJsonlWriter {
  private readonly tmp: string;
  private readonly stream: WriteStream;

  constructor(private readonly path: string) {
    this.tmp = `${path}.tmp-${process.pid}`;
    this.stream = createWriteStream(this.tmp);
  }

  write(record: unknown): void {
    this.stream.write(JSON.stringify(record) + "\n");
  }

  async commit(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    renameSync(this.tmp, this.path);
  }

  abort(): void {
    this.stream.destroy();
    rmSync(this.tmp, { force: true });
  }
}

/** Runs `fill` with a line writer for `path`; the file appears whole when `fill` succeeds, else not at all. */
export async function writeJsonlAtomically(
  path: string,
  fill: (write: (record: unknown) => void) => Promise<void>,
): Promise<void> {
  const out = new AtomicJsonlWriter(path);
  try {
    await fill((record) => out.write(record));
    await out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}

/**
 * Keeps the lines of `path` that parse and that `keep` accepts, dropping the rest (including a
 * last line cut short by a kill): how a resumed run trims the log it is about to write again.
 * The file is replaced atomically; a missing file stays missing.
 */
export function keepJsonLines<T>(path: string, keep: (line: T) => boolean): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        return keep(JSON.parse(line) as T);
      } catch {
        return false;
      }
    });
  writeFileAtomic(path, kept.length ? kept.join("\n") + "\n" : "");
}

/** Reads a JSON-lines file into values (blank lines skipped); names the file and line on bad JSON. */
export function parseJsonLines<T>(text: string, path: string): T[] {
  const out: T[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      throw new Error(
        `${path}:${i + 1}: not valid JSON (${(e as Error).message}); delete the file and re-run its stage`,
      );
    }
  });
  return out;
}

export function toJsonLines(values: readonly unknown[]): string {
  return values.length ? values.map((v) => JSON.stringify(v)).join("\n") + "\n" : "";
}
