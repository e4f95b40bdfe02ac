// A prepared dataset is a folder of three files, each written atomically:
//   items.jsonl  one `{id, title, ...attributes}` per line, canonical id order
//   users.jsonl  one `{user, train, valid, test, candidates: {valid, test}}` per line
//   stats.json   `{users, items, interactions, density, skipped?, source, raw?, kcore?, options?}`
// Every later stage (prompts, teacher, training, evaluation, baselines, export) reads it back with
// `readDataset` / `readDatasetSync`, the one reader, which checks the shape and the
// cross-references and says which line is wrong.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../util/atomic-write.js";
import { readLinesSync } from "../util/jsonl.js";
import type { ProtocolStats } from "./protocol.js";
import type { DatasetStats, Item, UserSplit } from "./types.js";

export const ITEMS_FILE = "items.jsonl";
export const USERS_FILE = "users.jsonl";
export const STATS_FILE = "stats.json";

/** The files of a dataset folder, by their names (what a piece of work read, for its fingerprint). */
export function datasetFiles(dir: string): Record<string, string> {
  return Object.fromEntries([ITEMS_FILE, USERS_FILE, STATS_FILE].map((f) => [`dataset/${f}`, join(dir, f)]));
}

/** stats.json: Table-1 numbers plus where the data came from and how it was filtered. */
export interface DatasetFileStats extends DatasetStats {
  source: string;
  /** A display name for the domain (e.g. "Electronics"), where a pipeline sets one. */
  name?: string;
  skipped?: number;
  raw?: DatasetStats;
  kcore?: DatasetStats;
  options?: ProtocolStats["options"];
}

export interface Dataset {
  items: Item[];
  itemsById: Map<string, Item>;
  users: UserSplit[];
  stats: DatasetFileStats;
}

const RESERVED = new Set(["id", "title"]);

const attributeValue = z.union([z.string(), z.number(), z.array(z.string())]);
const itemLine = z.looseObject({ id: z.string().min(1), title: z.string().min(1) });
const userLine = z.object({
  user: z.string().min(1),
  train: z.array(z.string()),
  valid: z.string(),
  test: z.string(),
  candidates: z.object({ valid: z.array(z.string()).min(1), test: z.array(z.string()).min(1) }),
});
const statsShape = z.looseObject({
  users: z.number(),
  items: z.number(),
  interactions: z.number(),
  density: z.number(),
  source: z.string(),
  skipped: z.number().optional(),
});

function itemToLine(item: Item): string {
  for (const k of Object.keys(item.attributes)) {
    if (RESERVED.has(k)) throw new Error(`item ${item.id}: attribute name "${k}" is reserved for the item's own field`);
  }
  return JSON.stringify({ id: item.id, title: item.title, ...item.attributes });
}

function userToLine(u: UserSplit): string {
  return JSON.stringify({
    user: u.user,
    train: u.train,
    valid: u.valid,
    test: u.test,
    candidates: { valid: u.candidates.valid, test: u.candidates.test },
  });
}

/** Writes the three files of a prepared dataset into `dir` (created if missing). */
export function writeDataset(
  dir: string,
  data: { items: readonly Item[]; users: readonly UserSplit[]; stats: DatasetFileStats },
): void {
  const lines = (xs: readonly string[]): string => (xs.length ? xs.join("\n") + "\n" : "");
  writeFileAtomic(join(dir, ITEMS_FILE), lines(data.items.map(itemToLine)));
  writeFileAtomic(join(dir, USERS_FILE), lines(data.users.map(userToLine)));
  writeFileAtomic(join(dir, STATS_FILE), JSON.stringify(data.stats, null, 2) + "\n");
}

function* jsonLines(path: string): Generator<{ value: unknown; line: number }> {
  let line = 0;
  for (const text of readLinesSync(path)) {
    line++;
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new Error(
        `${path}:${line}: not valid JSON (${(e as Error).message}); re-run \`msr-rec prepare\` to rebuild the dataset`,
      );
    }
    yield { value, line };
  }
}

function check<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(
      `${where}: ${issue.path.join(".") || "(line)"}: ${issue.message}; re-run \`msr-rec prepare\` to rebuild the dataset`,
    );
  }
  return r.data;
}

/** Reads a prepared dataset folder and checks that users only reference known items. */
export async function readDataset(dir: string): Promise<Dataset> {
  return readDatasetSync(dir);
}

/** readDataset on this thread: for callers that cannot wait (prompt workers, run stages). */
export function readDatasetSync(dir: string): Dataset {
  for (const f of [ITEMS_FILE, USERS_FILE, STATS_FILE]) {
    if (!existsSync(join(dir, f)))
      throw new Error(`${join(dir, f)} is missing: is ${dir} a dataset folder made by \`msr-rec prepare\`?`);
  }
  const items: Item[] = [];
  const itemsById = new Map<string, Item>();
  const itemsPath = join(dir, ITEMS_FILE);
  for (const { value, line } of jsonLines(itemsPath)) {
    const where = `${itemsPath}:${line}`;
    const { id, title, ...rest } = check(itemLine, value, where);
    const attributes: Item["attributes"] = {};
    for (const [k, v] of Object.entries(rest)) attributes[k] = check(attributeValue, v, `${where}: attribute ${k}`);
    if (itemsById.has(id)) throw new Error(`${where}: item ${id} appears twice`);
    const item: Item = { id, title, attributes };
    items.push(item);
    itemsById.set(id, item);
  }
  const users: UserSplit[] = [];
  const usersPath = join(dir, USERS_FILE);
  for (const { value, line } of jsonLines(usersPath)) {
    const where = `${usersPath}:${line}`;
    const u = check(userLine, value, where);
    for (const id of [...u.train, u.valid, u.test, ...u.candidates.valid, ...u.candidates.test]) {
      if (!itemsById.has(id))
        throw new Error(`${where}: user ${u.user} references item ${id}, which is not in ${ITEMS_FILE}`);
    }
    if (u.train.includes(u.test) || u.train.includes(u.valid) || u.valid === u.test)
      throw new Error(
        `${where}: user ${u.user}'s valid/test item also appears earlier in the split; re-run \`msr-rec prepare\``,
      );
    for (const split of ["valid", "test"] as const) {
      if (u.candidates[split].filter((c) => c === u[split]).length !== 1)
        throw new Error(
          `${where}: user ${u.user}'s ${split} candidates must contain the ground truth ${u[split]} exactly once`,
        );
    }
    users.push(u);
  }
  const statsPath = join(dir, STATS_FILE);
  let statsJson: unknown;
  try {
    statsJson = JSON.parse(readFileSync(statsPath, "utf8"));
  } catch (e) {
    throw new Error(`${statsPath}: not valid JSON (${(e as Error).message})`);
  }
  const stats = check(statsShape, statsJson, statsPath) as DatasetFileStats;
  return { items, itemsById, users, stats };
}

/** The Table-1 row(s) of a dataset as an aligned plain-text table. */
export function formatStatsTable(stats: DatasetFileStats): string {
  const rows: [string, DatasetStats][] = [];
  if (stats.raw) rows.push(["raw", stats.raw]);
  if (stats.kcore) rows.push([`${stats.options?.kcore ?? "k"}-core`, stats.kcore]);
  rows.push(["prepared", stats]);
  const header = ["", "#users", "#items", "#interactions", "density"];
  const body = rows.map(([name, s]) => [
    name,
    String(s.users),
    String(s.items),
    String(s.interactions),
    s.density.toFixed(6),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
  const fmt = (r: string[]): string =>
    r.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join("  ");
  const lines = [fmt(header), ...body.map(fmt)];
  lines.push(`source: ${stats.source}${stats.skipped ? `  (skipped ${stats.skipped} malformed lines)` : ""}`);
  return lines.join("\n");
}
