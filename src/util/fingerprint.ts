// Fingerprints of what a piece of work was made from, so that pieces made from different inputs
// are never joined: the settings that decide its content, the files it read (by content) and the
// msr-rec version. Two fingerprints are equal exactly when their inputs are; when they differ,
// describeChange says which input changed.
//
// Files up to WHOLE_FILE_BYTES are hashed whole (datasets, templates, adapters: a few MB, a few
// ms). Bigger ones (base models of many GB) by their size and SAMPLES evenly spaced 1 MiB blocks,
// the first and the last among them: any other model, another quantization or other trained
// weights changes those, and reading 16 MiB of a 16 GB file takes milliseconds where hashing it
// all takes a minute per shard. The modification time is left out on purpose: copying a run
// folder or a model keeps the content and changes the time.
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "./paths.js";

export const WHOLE_FILE_BYTES = 64 * 2 ** 20;
const SAMPLES = 16;
const SAMPLE_BYTES = 2 ** 20;

/** JSON with sorted keys, so equal values hash equally whatever their key order. */
export function stableStringify(v: unknown): string {
  if (v === undefined) return "null";
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
    .join(",")}}`;
}

/** "sha256:HEX" of a whole file, or "sampled:SIZE:HEX" of a big one (see the top of this file). */
export function fileDigest(path: string): string {
  const size = statSync(path).size;
  if (size <= WHOLE_FILE_BYTES) return `sha256:${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
  const h = createHash("sha256");
  const buf = Buffer.alloc(SAMPLE_BYTES);
  const fd = openSync(path, "r");
  try {
    for (let i = 0; i < SAMPLES; i++) {
      const at = Math.floor((i * (size - SAMPLE_BYTES)) / (SAMPLES - 1));
      let got = 0;
      while (got < SAMPLE_BYTES) {
        const n = readSync(fd, buf, got, SAMPLE_BYTES - got, at + got);
        if (n === 0) throw new Error(`${path} shrank while it was read; is something still writing it?`);
        got += n;
      }
      h.update(buf);
    }
  } finally {
    closeSync(fd);
  }
  return `sampled:${size}:${h.digest("hex")}`;
}

export interface FingerprintInputs {
  /** The msr-rec version that made it. */
  version: string;
  /** The settings its content depends on, as a JSON object. */
  config: unknown;
  /** Each file it read, by the name shown to the user: fileDigest of its content. */
  files: Record<string, string>;
}

export interface Fingerprint {
  /** A short hash of the inputs: equal ids, equal inputs. */
  id: string;
  inputs: FingerprintInputs;
}

let version: string | undefined;
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { version: string }).version;
  return version;
}

/** The fingerprint of these settings and files (each path read now; `files` maps shown name → path). */
export function fingerprint(config: unknown, files: Readonly<Record<string, string>>): Fingerprint {
  const digests: Record<string, string> = {};
  for (const name of Object.keys(files).sort()) {
    try {
      digests[name] = fileDigest(files[name]!);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT")
        throw new Error(
          `${files[name]} is missing; it is an input of this step (has the stage that writes it finished?)`,
        );
      throw e;
    }
  }
  const inputs: FingerprintInputs = {
    version: packageVersion(),
    config: JSON.parse(stableStringify(config)) as unknown,
    files: digests,
  };
  return { id: fingerprintId(inputs), inputs };
}

export function fingerprintId(inputs: FingerprintInputs): string {
  return createHash("sha256").update(stableStringify(inputs)).digest("hex").slice(0, 16);
}

/** Leaf values of a JSON value by dotted path ("infer.temperature" → 0.7). */
function leaves(v: unknown, at = "", out = new Map<string, string>()): Map<string, string> {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) leaves(x, at ? `${at}.${k}` : k, out);
  } else out.set(at, JSON.stringify(v ?? null));
  return out;
}

/**
 * What differs between the inputs a piece was made with and the current ones, for a message:
 * "infer.temperature: 0.7 then, 0.9 now; train/msr/adapter.gguf changed". At most `limit` items.
 */
export function describeChange(then: FingerprintInputs, now: FingerprintInputs, limit = 4): string {
  const out: string[] = [];
  if (then.version !== now.version) out.push(`msr-rec ${then.version} then, ${now.version} now`);
  const a = leaves(then.config);
  const b = leaves(now.config);
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (a.get(k) !== b.get(k)) out.push(`${k || "settings"}: ${a.get(k) ?? "unset"} then, ${b.get(k) ?? "unset"} now`);
  }
  for (const f of [...new Set([...Object.keys(then.files ?? {}), ...Object.keys(now.files)])].sort()) {
    const [x, y] = [then.files?.[f], now.files[f]];
    if (x !== y)
      out.push(x === undefined ? `${f} not read then` : y === undefined ? `${f} not read now` : `${f} changed`);
  }
  if (out.length === 0) return "inputs differ";
  return out.length > limit ? `${out.slice(0, limit).join("; ")}; and ${out.length - limit} more` : out.join("; ");
}
