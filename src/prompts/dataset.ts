// Reads a prepared dataset folder (items.jsonl, users.jsonl, stats.json) and turns users into
// prompt samples. Kept small and local so prompt building does not wait on the data stage's
// reader; the file shapes are the data stage's contract (see src/data/types.ts).
//
// Splits: `test` (history = train + valid, target = test), `valid` (history = train, target =
// valid), and `train` (history = train minus its last item, target = that item). The train split
// draws its own negatives (seeded per user) from items the user never touched and that are in
// neither the validation nor the test candidate set: a model trained on the validation
// negatives would learn to avoid exactly the items the validation split offers it. Without a
// catalog (`sampleFor` called bare) it falls back to the validation set with the validation item
// replaced by the train target, for tools that have no item list.
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { Item, UserSplit } from "../data/types.js";
import type { PromptContext } from "./build.js";
import { Rng } from "../util/random.js";
import { DEFAULT_SEED, HISTORY_LENGTH, recentHistory } from "../data/protocol.js";

/** What the train split draws its negatives from: every item id, and the run's seed. */
export interface TrainCatalog {
  itemIds: readonly string[];
  seed: number;
}

/** The train split's candidates: the target and fresh negatives, shuffled (see the header). */
export function trainCandidates(u: UserSplit, target: string, catalog: TrainCatalog, n: number): string[] {
  const touched = new Set([...u.train, u.valid, u.test]);
  const shown = new Set([...u.candidates.valid, ...u.candidates.test]);
  const fresh = catalog.itemIds.filter((id) => !touched.has(id) && !shown.has(id));
  const rng = new Rng(catalog.seed, `train-candidates:${u.user}`);
  let negatives = rng.sample(fresh, Math.min(n - 1, fresh.length));
  // A catalog too small for fresh negatives tops up with shown-but-never-touched items.
  if (negatives.length < n - 1) negatives = [...negatives, ...rng.sample(catalog.itemIds.filter((id) => !touched.has(id) && shown.has(id)), n - 1 - negatives.length)];
  return rng.shuffle([target, ...negatives]);
}

export const SPLITS = ["train", "valid", "test"] as const;
export type Split = (typeof SPLITS)[number];

export interface PreparedDataset {
  /** Domain name for prompts: stats.json `name`/`dataset`, else the folder name. */
  name: string;
  items: Map<string, Item>;
  users: UserSplit[];
}

/** One user's prompt inputs for one split, by item id. */
export interface PromptSample {
  user: string;
  split: Split;
  /** Ids, oldest first, already cut to the prompt window. */
  history: string[];
  candidates: string[];
  target: string;
  /** Index of `target` in `candidates`. */
  targetIndex: number;
}

function readJsonl(file: string): unknown[] {
  if (!existsSync(file)) throw new Error(`${file} not found; prepare the dataset first (msr-rec prepare)`);
  const out: unknown[] = [];
  readFileSync(file, "utf8").split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line));
    } catch {
      throw new Error(`${file}:${i + 1} is not valid JSON; re-run the prepare step`);
    }
  });
  return out;
}

function toItem(raw: unknown, where: string): Item {
  if (typeof raw !== "object" || raw === null) throw new Error(`${where}: expected an object {id, title, ...}`);
  const { id, title, attributes, ...rest } = raw as Record<string, unknown>;
  if ((typeof id !== "string" && typeof id !== "number") || typeof title !== "string") {
    throw new Error(`${where}: an item needs a string or number "id" and a string "title"`);
  }
  const attrs = (typeof attributes === "object" && attributes !== null ? attributes : rest) as Item["attributes"];
  return { id: String(id), title, attributes: attrs };
}

function toUser(raw: unknown, where: string): UserSplit {
  const u = raw as Partial<Record<keyof UserSplit, unknown>>;
  const c = u?.candidates as { valid?: unknown; test?: unknown } | undefined;
  if (u === null || typeof u !== "object" || u.user === undefined || !Array.isArray(u.train) || u.valid === undefined || u.test === undefined || !Array.isArray(c?.valid) || !Array.isArray(c?.test)) {
    throw new Error(`${where}: expected {user, train:[ids], valid, test, candidates:{valid:[ids], test:[ids]}}`);
  }
  return {
    user: String(u.user),
    train: u.train.map(String),
    valid: String(u.valid),
    test: String(u.test),
    candidates: { valid: (c.valid as unknown[]).map(String), test: (c.test as unknown[]).map(String) },
  };
}

export function readPreparedDataset(dir: string, name?: string): PreparedDataset {
  const items = new Map<string, Item>();
  readJsonl(join(dir, "items.jsonl")).forEach((r, i) => {
    const item = toItem(r, `${join(dir, "items.jsonl")}:${i + 1}`);
    items.set(item.id, item);
  });
  const users = readJsonl(join(dir, "users.jsonl")).map((r, i) => toUser(r, `${join(dir, "users.jsonl")}:${i + 1}`));
  let statsName: string | undefined;
  const statsFile = join(dir, "stats.json");
  if (existsSync(statsFile)) {
    const s = JSON.parse(readFileSync(statsFile, "utf8")) as Record<string, unknown>;
    const n = s.name ?? s.dataset;
    if (typeof n === "string") statsName = n;
  }
  return { name: name ?? statsName ?? basename(dir), items, users };
}

/** The prompt sample of one user for one split (see the header for what each split means). */
export function sampleFor(u: UserSplit, split: Split, historyLength = HISTORY_LENGTH, catalog?: TrainCatalog): PromptSample {
  let full: string[];
  let target: string;
  let candidates: string[];
  if (split === "test") {
    full = [...u.train, u.valid];
    target = u.test;
    candidates = [...u.candidates.test];
  } else if (split === "valid") {
    full = u.train;
    target = u.valid;
    candidates = [...u.candidates.valid];
  } else {
    if (u.train.length < 1) throw new Error(`user ${u.user} has no training items; cannot build a train-split sample`);
    full = u.train.slice(0, -1);
    target = u.train[u.train.length - 1]!;
    candidates = catalog ? trainCandidates(u, target, catalog, u.candidates.valid.length) : u.candidates.valid.map((id) => (id === u.valid ? target : id));
  }
  const targetIndex = candidates.indexOf(target);
  if (targetIndex === -1) throw new Error(`user ${u.user}: the ${split} candidates do not contain the ground truth ${target}; re-run the prepare step`);
  return { user: u.user, split, history: recentHistory(full, historyLength), candidates, target, targetIndex };
}

export function samplesFor(ds: PreparedDataset, split: Split, historyLength = HISTORY_LENGTH, seed = DEFAULT_SEED): PromptSample[] {
  const catalog = { itemIds: [...ds.items.keys()], seed };
  return ds.users.map((u) => sampleFor(u, split, historyLength, catalog));
}

export function titleOf(items: Map<string, Item>, id: string): string {
  const it = items.get(id);
  if (!it) throw new Error(`item ${id} is referenced by users.jsonl but missing from items.jsonl; re-run the prepare step`);
  return it.title;
}

/** Titles for a sample, ready for a template. */
export function contextFor(ds: Pick<PreparedDataset, "name" | "items">, s: PromptSample): PromptContext {
  return { dataset: ds.name, history: s.history.map((id) => titleOf(ds.items, id)), candidates: s.candidates.map((id) => titleOf(ds.items, id)) };
}
