// Reads an Amazon review file plus its metadata file (any of the 2014/2018/2023 releases) into
// interactions and titled items. Reviews are read first so only the metadata of reviewed items is
// kept in memory; the first metadata line of an item wins. Items without a usable title are
// dropped later by the protocol (counted here as `untitled`).
import { statSync } from "node:fs";
import { basename } from "node:path";
import type { Item, RawDataset, ReadOptions } from "../types.js";
import { assertFile } from "./lines.js";
import type { LineKind } from "./parse-chunk.js";
import { autoThreads, openParsePool, parseFile, type ParseOptions } from "./parse-pool.js";

export type AmazonVersion = "2014" | "2018" | "2023";

export interface AmazonRawDataset extends RawDataset {
  /** Reviewed items whose metadata has no usable title (or no metadata line at all). */
  untitled: number;
}

export async function readAmazon(
  version: AmazonVersion,
  reviewsPath: string,
  metaPath: string | undefined,
  options: ReadOptions = {},
): Promise<AmazonRawDataset> {
  assertFile(reviewsPath, `amazon${version} reviews file`);
  if (!metaPath)
    throw new Error(`amazon${version} needs the metadata file too (--meta meta_<Category>...): titles come from it`);
  assertFile(metaPath, `amazon${version} metadata file`);
  const pool = openParsePool(options.threads ?? autoThreads(statSync(reviewsPath).size + statSync(metaPath).size));
  try {
    return await readWithPool(
      version,
      reviewsPath,
      metaPath,
      { skipBad: options.skipBad, pool, threads: options.threads },
      options.onProgress,
    );
  } finally {
    await pool?.close();
  }
}

async function readWithPool(
  version: AmazonVersion,
  reviewsPath: string,
  metaPath: string,
  parseOpts: ParseOptions,
  onProgress: ReadOptions["onProgress"],
): Promise<AmazonRawDataset> {
  const interactions: RawDataset["interactions"] = [];
  const reviewed = new Set<string>();
  const progress = (file: string): ParseOptions["onProgress"] =>
    onProgress && ((done, total) => onProgress(file, done, total));
  const r = await parseFile(
    reviewsPath,
    `amazon${version}-review` as LineKind,
    { ...parseOpts, onProgress: progress(reviewsPath) },
    (rec) => {
      if (rec.kind !== "review") return;
      interactions.push({
        user: rec.user,
        item: rec.item,
        time: rec.time,
        rating: rec.rating,
        order: interactions.length,
      });
      reviewed.add(rec.item);
    },
  );

  const items = new Map<string, Item>();
  const seen = new Set<string>();
  const m = await parseFile(
    metaPath,
    `amazon${version}-meta` as LineKind,
    { ...parseOpts, onProgress: progress(metaPath) },
    (rec) => {
      if (rec.kind !== "meta" || !reviewed.has(rec.id) || seen.has(rec.id)) return;
      seen.add(rec.id);
      if (rec.item) items.set(rec.id, rec.item);
    },
  );
  return {
    interactions,
    items,
    skipped: r.skipped + m.skipped,
    untitled: reviewed.size - items.size,
    source: `amazon${version}: ${basename(reviewsPath)} + ${basename(metaPath)}`,
  };
}
