// Turns the users of a prepared dataset folder (read by src/data/dataset.ts, the one reader) into
// prompt samples.
//
// Splits: `test` (history = train + valid, target = test), `valid` (history = train, target =
// valid), and `train` (history = train minus its last item, target = that item; or any earlier
// training position, see trainPositions). The train split
// draws its own negatives (seeded per user) from items the user never touched and that are in
// neither the validation nor the test candidate set: a model trained on the validation
// negatives would learn to avoid exactly the items the validation split offers it. Without a
// catalog (`sampleFor` called bare) it falls back to the validation set with the validation item
// replaced by the train target, for tools that have no item list.
import { basename } from "node:path";
import { readDatasetSync } from "../data/dataset.js";
import type { Item, UserSplit } from "../data/types.js";
import type { PromptContext } from "./build.js";
import { Rng } from "../util/random.js";
import { issuesOf, rule, throwIssues, type OptionIssue } from "../util/options.js";
import {
  DEFAULT_SEED,
  HISTORY_LENGTH,
  distinctTitles,
  fillDistinctTitles,
  recentHistory,
  titleKey,
} from "../data/protocol.js";

/** What the train split draws its negatives from: every item id, and the run's seed. */
export interface TrainCatalog {
  itemIds: readonly string[];
  seed: number;
  /** Item titles: with them no two candidates share a title (see titleKey); without, ids only. */
  titleOf?: (id: string) => string;
}

/** The train split's candidates: the target and fresh negatives, shuffled (see the header). */
export function trainCandidates(
  u: UserSplit,
  target: string,
  catalog: TrainCatalog,
  n: number,
  position?: number,
): string[] {
  const touched = new Set([...u.train, u.valid, u.test]);
  const shown = new Set([...u.candidates.valid, ...u.candidates.test]);
  const fresh = catalog.itemIds.filter((id) => !touched.has(id) && !shown.has(id));
  // The last training item keeps the stream it always had; earlier positions get their own.
  const rng = new Rng(
    catalog.seed,
    position === undefined ? `train-candidates:${u.user}` : `train-candidates:${u.user}@${position}`,
  );
  const keyOf = catalog.titleOf ? (id: string) => titleKey(catalog.titleOf!(id)) : (id: string) => id;
  const taken = new Set([keyOf(target)]);
  // k items of `pool` whose titles are not taken: a uniform draw, a colliding one drawn again.
  const draw = (pool: readonly string[], k: number) =>
    fillDistinctTitles(rng, distinctTitles(rng.sample(pool, k), keyOf, taken), pool, k, keyOf, taken);
  let negatives = draw(fresh, Math.min(n - 1, fresh.length));
  // A catalog too small for fresh negatives tops up with shown-but-never-touched items.
  if (negatives.length < n - 1)
    negatives = [
      ...negatives,
      ...draw(
        catalog.itemIds.filter((id) => !touched.has(id) && shown.has(id)),
        n - 1 - negatives.length,
      ),
    ];
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
  /**
   * Train split only: the target's index in the user's training items, when it is not the last
   * one (every-position training, see trainPositions); absent for the last item.
   */
  position?: number;
}

/**
 * The training positions a user's train split yields: the last item only ("last", one sample
 * per user), or every item that has at least one item before it ("all", LLaRA's and TALLRec's
 * sliding windows: the paper's "remaining records"), the last one always included. `undefined`
 * stands for the last item, so its sample (prompt, candidates, stored teacher answers) is the
 * same in both modes.
 */
export function trainPositions(u: UserSplit, mode: "last" | "all"): Array<number | undefined> {
  const n = u.train.length;
  if (n === 0) return [];
  if (mode === "last") return [undefined];
  return [...Array.from({ length: Math.max(0, n - 2) }, (_, k) => k + 1), undefined];
}

/** A prepared dataset folder as prompts use it, read (and checked) by the data layer's reader. */
export function readPreparedDataset(dir: string, name?: string): PreparedDataset {
  const d = readDatasetSync(dir);
  return { name: name ?? d.stats.name ?? basename(dir), items: d.itemsById, users: d.users };
}

/** The prompt sample of one user for one split (see the header for what each split means). */
export function sampleFor(
  u: UserSplit,
  split: Split,
  historyLength = HISTORY_LENGTH,
  catalog?: TrainCatalog,
  position?: number,
): PromptSample {
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
    if (position !== undefined && !(Number.isInteger(position) && position >= 0 && position < u.train.length - 1)) {
      throw new Error(
        `user ${u.user}: training position ${position} is not one of 0..${u.train.length - 2} (leave it out for the last training item)`,
      );
    }
    const at = position ?? u.train.length - 1;
    full = u.train.slice(0, at);
    target = u.train[at]!;
    if (!catalog && position !== undefined)
      throw new Error("a train-split sample of an earlier position draws its own negatives: pass the catalog");
    candidates = catalog
      ? trainCandidates(u, target, catalog, u.candidates.valid.length, position)
      : u.candidates.valid.map((id) => (id === u.valid ? target : id));
  }
  const targetIndex = candidates.indexOf(target);
  if (targetIndex === -1)
    throw new Error(
      `user ${u.user}: the ${split} candidates do not contain the ground truth ${target}; re-run the prepare step`,
    );
  return {
    user: u.user,
    split,
    history: recentHistory(full, historyLength),
    candidates,
    target,
    targetIndex,
    ...(position !== undefined ? { position } : {}),
  };
}

/** What is wrong with the options of a prompt job (the window and the train split's seed). */
export function sampleOptionIssues(o: { historyLength?: number; seed?: number }): OptionIssue[] {
  return issuesOf({ historyLength: [o.historyLength, rule.integerAtLeast(0)], seed: [o.seed, rule.integer] });
}

export function samplesFor(
  ds: PreparedDataset,
  split: Split,
  historyLength = HISTORY_LENGTH,
  seed = DEFAULT_SEED,
): PromptSample[] {
  throwIssues(sampleOptionIssues({ historyLength, seed }));
  const catalog: TrainCatalog = { itemIds: [...ds.items.keys()], seed, titleOf: (id) => titleOf(ds.items, id) };
  return ds.users.map((u) => sampleFor(u, split, historyLength, catalog));
}

export function titleOf(items: Map<string, Item>, id: string): string {
  const it = items.get(id);
  if (!it)
    throw new Error(`item ${id} is referenced by users.jsonl but missing from items.jsonl; re-run the prepare step`);
  return it.title;
}

/** Titles for a sample, ready for a template. */
export function contextFor(ds: Pick<PreparedDataset, "name" | "items">, s: PromptSample): PromptContext {
  return {
    dataset: ds.name,
    history: s.history.map((id) => titleOf(ds.items, id)),
    candidates: s.candidates.map((id) => titleOf(ds.items, id)),
  };
}
