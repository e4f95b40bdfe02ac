// JSON-lines input and atomic output for CLI commands.
import { createReadStream, createWriteStream, existsSync, renameSync, rmSync, type WriteStream } from "node:fs";
import { createInterface } from "node:readline";

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
    await new Promise<void>((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    renameSync(this.tmp, this.path);
  }

  abort(): void {
    this.stream.destroy();
    rmSync(this.tmp, { force: true });
  }
}

/** Runs `fill` with a line writer for `path`; the file appears whole when `fill` succeeds, else not at all. */
export async function writeJsonlAtomically(path: string, fill: (write: (record: unknown) => void) => Promise<void>): Promise<void> {
  const out = new AtomicJsonlWriter(path);
  try {
    await fill((record) => out.write(record));
    await out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}
