import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  writeSync,
  mkdirSync,
  rmSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

/** Writes a file completely or not at all: a temp file beside it, fsync, then rename. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, "w");
  try {
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/**
 * Removes the temp files that writes of `path` by a killed process left beside it (this module's,
 * the engine's `<path>.tmp-<pid>-<n>` and a plain `<path>.tmp`): call it where one process owns
 * `path`, before writing it again, so that a run resumed after SIGKILL leaves no partial file.
 */
export function removeTempFiles(path: string): void {
  const dir = dirname(path);
  const prefix = `${basename(path)}.tmp`;
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir))
    if (name === prefix || name.startsWith(`${prefix}-`) || name.startsWith(`${prefix}.`))
      rmSync(join(dir, name), { force: true });
}
