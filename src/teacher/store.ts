// Append-only JSONL store of raw teacher answers. Paid answers must never be lost or bought twice:
// each answer is appended and fsync'ed before anyone parses it, and a resumed run reads the file
// and skips every key already answered. A crash mid-write can leave only a truncated last line;
// opening the store drops that partial line (it was never acknowledged) before appending again.
// A lock file beside the store keeps two runs from buying the same answers at once.
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { dirname } from "node:path";

export interface StoredAnswer {
  key: string;
  /** sha256 of the prompt, to refuse reusing answers made for a different prompt. */
  promptHash: string;
  teacher: string;
  model: string;
  content: string;
  reasoningContent?: string;
  /** ISO time the answer was stored. */
  at: string;
}

export function hashPrompt(prompt: string): string {
  return createHash("sha256").update(prompt).digest("hex").slice(0, 32);
}

/** Parses store text: complete lines only; a final line without "\n" is a torn write and ignored. */
export function parseStoreText(
  text: string,
  file = "answer store",
): { answers: StoredAnswer[]; completeBytes: number } {
  const answers: StoredAnswer[] = [];
  const lastNl = text.lastIndexOf("\n");
  const complete = lastNl === -1 ? "" : text.slice(0, lastNl + 1);
  complete.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let rec: StoredAnswer;
    try {
      rec = JSON.parse(line) as StoredAnswer;
    } catch {
      throw new Error(
        `${file}:${i + 1} is corrupt (not JSON) in the middle of the file; fix or remove that line, the others are intact`,
      );
    }
    if (typeof rec.key !== "string" || typeof rec.content !== "string")
      throw new Error(`${file}:${i + 1} lacks "key"/"content"`);
    answers.push(rec);
  });
  return { answers, completeBytes: Buffer.byteLength(complete) };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes `<store>.lock` (O_EXCL); a lock left by a dead process is taken over. */
function takeLock(lockPath: string, storePath: string): void {
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = Number(readFileSync(lockPath, "utf8").trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && pidAlive(owner)) {
        throw new Error(
          `${storePath} is in use by another run (pid ${owner}); wait for it to finish or write to another --out folder`,
        );
      }
      if (owner === process.pid)
        throw new Error(`${storePath} is already open in this process; close it before opening it again`);
      rmSync(lockPath, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`could not lock ${storePath}; remove ${lockPath} if no run is using it`);
}

export class AnswerStore {
  private readonly byKey = new Map<string, StoredAnswer>();
  private fd: number;

  private constructor(
    readonly path: string,
    fd: number,
    answers: StoredAnswer[],
  ) {
    this.fd = fd;
    for (const a of answers) this.byKey.set(a.key, a);
  }

  /** Opens (creating if needed) the store, truncating a torn last line. */
  static open(path: string): AnswerStore {
    mkdirSync(dirname(path), { recursive: true });
    takeLock(`${path}.lock`, path);
    try {
      let answers: StoredAnswer[] = [];
      if (existsSync(path)) {
        const buf = readFileSync(path);
        const parsed = parseStoreText(buf.toString("utf8"), path);
        answers = parsed.answers;
        if (parsed.completeBytes < buf.length) {
          const fd = openSync(path, "r+");
          ftruncateSync(fd, parsed.completeBytes);
          fsyncSync(fd);
          closeSync(fd);
        }
      }
      return new AnswerStore(path, openSync(path, "a"), answers);
    } catch (e) {
      rmSync(`${path}.lock`, { force: true });
      throw e;
    }
  }

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): StoredAnswer | undefined {
    return this.byKey.get(key);
  }

  all(): StoredAnswer[] {
    return [...this.byKey.values()];
  }

  /** Appends one answer and fsyncs; returns only once it is on disk. */
  append(a: StoredAnswer): void {
    if (this.fd === -1) throw new Error(`answer store ${this.path} is closed`);
    if (this.byKey.has(a.key))
      throw new Error(`answer store already holds "${a.key}"; refusing to store a second answer for it`);
    const buf = Buffer.from(JSON.stringify(a) + "\n");
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    fsyncSync(this.fd);
    this.byKey.set(a.key, a);
  }

  close(): void {
    if (this.fd === -1) return;
    closeSync(this.fd);
    this.fd = -1;
    rmSync(`${this.path}.lock`, { force: true });
  }
}
