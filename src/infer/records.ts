// The per-variant inference output file (infer/<variant>.jsonl), one line per test user, and the
// shard helpers: `--shard i/N` writes <variant>.jsonl into the shard's folder
// (infer/shards/shard-i-of-N/), `mergeInferShards` joins all N into infer/<variant>.jsonl.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import type { FusionDecision } from "./fusion.js";
import type { SideResult } from "./bidirectional.js";

/** One user's inference result: both sides + fusion, or a single output (full chain, zero-shot). */
export interface InferRecord {
  user: string;
  candidateIds: string[];
  candidateTitles: string[];
  targetIndex: number;
  userSide?: SideResult;
  itemSide?: SideResult;
  /** This project's fusion rule (see fusion.ts). */
  fused?: FusionDecision;
  /** The literal Eq. 3 (the main variant only). */
  fusedEq3?: FusionDecision;
  constrained?: FusionDecision;
  single?: SideResult;
}

export function readInferRecords(path: string): InferRecord[] {
  if (!existsSync(path)) throw new Error(`${path} not found: run the infer stage first`);
  const out: InferRecord[] = [];
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (!line.trim()) return;
      try {
        out.push(JSON.parse(line) as InferRecord);
      } catch (e) {
        throw new Error(
          `${path}:${i + 1}: not valid JSON (${(e as Error).message}); delete it and re-run the infer stage`,
        );
      }
    });
  return out;
}

/** NaN PPLs survive the JSON round trip as null; map them back. */
export function reviveSide(s: SideResult | undefined): SideResult | undefined {
  if (!s) return s;
  const out: SideResult = { ...s, ppl: typeof s.ppl === "number" ? s.ppl : Number.NaN };
  if ("pplOutput" in s) out.pplOutput = typeof s.pplOutput === "number" ? s.pplOutput : Number.NaN;
  return out;
}

export function writeInferRecords(path: string, records: readonly InferRecord[]): void {
  writeFileAtomic(path, records.map((r) => JSON.stringify(r)).join("\n") + (records.length ? "\n" : ""));
}

/** A variant's file in a shard's folder. */
export function inferShardFile(shardDir: string, variant: string): string {
  return join(shardDir, `${variant}.jsonl`);
}

/**
 * Merges a variant's file of every shard folder in `shardDirs` (all N, in shard order) into
 * `outFile`, in the user order of `order`.
 */
export function mergeInferShards(
  shardDirs: readonly string[],
  variant: string,
  outFile: string,
  order?: readonly string[],
): number {
  const records: InferRecord[] = [];
  shardDirs.forEach((dir, i) => {
    const f = inferShardFile(dir, variant);
    if (!existsSync(f))
      throw new Error(
        `shard ${i}/${shardDirs.length} has no "${variant}" records (${f} is missing); redo that shard before merging`,
      );
    records.push(...readInferRecords(f));
  });
  if (order) {
    const pos = new Map(order.map((u, i) => [u, i]));
    records.sort((a, b) => (pos.get(a.user) ?? Infinity) - (pos.get(b.user) ?? Infinity));
  }
  const seen = new Set<string>();
  for (const r of records) {
    if (seen.has(r.user))
      throw new Error(`user ${r.user} appears in two shards of "${variant}"; the shards come from different runs`);
    seen.add(r.user);
  }
  writeInferRecords(outFile, records);
  return records.length;
}
