// File arguments of the engine's TS API: one check for every path it hands to the native addon,
// made before the call so the error names the TS method and comes at once. The addon repeats the
// same checks for callers of the raw addon (native/src/path_check.h owns that side); this file
// owns the TS side. Refused:
//   - a path that is not a non-empty string, or holds a NUL byte: C would cut it short there and
//     write `victim.gguf` for "victim.gguf\0.new" (Node's own fs refuses such paths too);
//   - a folder where a file belongs, an input that does not exist, an output whose folder is missing;
//   - an output that is one of the call's inputs: the same file by device and inode, so hard links,
//     symlinks and other spellings of the path count too (writing it would truncate what is read).
import { statSync, type Stats } from "node:fs";
import { dirname } from "node:path";

function pathString(path: unknown, what: string): string {
  if (typeof path !== "string" || path.length === 0)
    throw new TypeError(`${what}: the path must be a non-empty string`);
  if (path.includes("\0"))
    throw new TypeError(`${what}: the path contains a NUL byte, which no file name can hold; pass the path without it`);
  return path;
}

const statOf = (path: string): Stats | undefined => statSync(path, { throwIfNoEntry: false });

/** `path` as a file to read: an existing regular file. `noun` names it in errors ("model file"). */
export function inputFile(path: unknown, what: string, noun = "file"): string {
  const p = pathString(path, what);
  const st = statOf(p);
  if (st?.isDirectory()) throw new Error(`${what}: ${p} is a folder; pass the path of a file in it`);
  if (!st?.isFile()) throw new Error(`${what}: no ${noun} at ${p}; check the path`);
  return p;
}

/** `path` as a file to write: not a folder, in a folder that exists, and none of `inputs`. */
export function outputFile(path: unknown, what: string, inputs: readonly string[] = []): string {
  const p = pathString(path, what);
  const st = statOf(p);
  if (st?.isDirectory()) throw new Error(`${what}: ${p} is a folder; pass the path of the file to write`);
  if (!statOf(dirname(p))?.isDirectory())
    throw new Error(`${what}: the folder ${dirname(p)} does not exist; create it first`);
  for (const input of inputs) {
    const i = statOf(input);
    if (st && i && st.dev === i.dev && st.ino === i.ino)
      throw new Error(`${what}: ${p} is the input file ${input} itself; write to another path`);
  }
  return p;
}
