// The per-variant inference output file (infer/<variant>.jsonl), one line per test user, and the
// shard helpers: `--shard i/N` writes infer/shards/<variant>.i-of-N.jsonl, `mergeInferShards`
// concatenates all N into infer/<variant>.jsonl once every shard is there.
import { existsSync, readFileSync, readdirSync } from "node:fs";
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
  readFileSync(path, "utf8").split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line) as InferRecord);
    } catch (e) {
      throw new Error(`${path}:${i + 1}: not valid JSON (${(e as Error).message}); delete it and re-run the infer stage`);
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

/** Merges infer/shards/<variant>.i-of-N.jsonl (all N present) into `outFile`, in user order of `order`. */
export function mergeInferShards(shardDir: string, variant: string, outFile: string, order?: readonly string[]): number {
  const re = new RegExp(`^${variant.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.(\\d+)-of-(\\d+)\\.jsonl$`);
  const files = existsSync(shardDir) ? readdirSync(shardDir).filter((f) => re.test(f)) : [];
  if (files.length === 0) throw new Error(`no shards of "${variant}" in ${shardDir}; run \`msr-rec infer --shard i/N\` first`);
  const counts = new Set(files.map((f) => Number(re.exec(f)![2])));
  if (counts.size !== 1) throw new Error(`${shardDir} mixes shard counts for "${variant}" (${[...counts].join(", ")}); remove the stale ones`);
  const n = [...counts][0]!;
  const records: InferRecord[] = [];
  for (let i = 0; i < n; i++) {
    const f = join(shardDir, `${variant}.${i}-of-${n}.jsonl`);
    if (!existsSync(f)) throw new Error(`shard ${i}/${n} of "${variant}" is missing (${f}); run \`msr-rec infer --shard ${i}/${n}\` before merging`);
    records.push(...readInferRecords(f));
  }
  if (order) {
    const pos = new Map(order.map((u, i) => [u, i]));
    records.sort((a, b) => (pos.get(a.user) ?? Infinity) - (pos.get(b.user) ?? Infinity));
  }
  const seen = new Set<string>();
  for (const r of records) {
    if (seen.has(r.user)) throw new Error(`user ${r.user} appears in two shards of "${variant}"; the shards come from different runs`);
    seen.add(r.user);
  }
  writeInferRecords(outFile, records);
  return records.length;
}
