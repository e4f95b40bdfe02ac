// The run's dataset and what every stage derives from it: the prepared folder read back under the
// run's domain name, the train split's catalog (its negatives are seeded by the run), the
// validation users, the training prompt of a sample, and the trainer's sample shape.
import {
  contextFor,
  readPreparedDataset,
  sampleFor,
  titleOf,
  trainPositions,
  type PreparedDataset,
  type PromptSample,
  type TrainCatalog,
} from "../prompts/dataset.js";
import { fillTemplate } from "../prompts/build.js";
import { loadTallrecTemplate, type PromptTemplates } from "../prompts/templates.js";
import type { SftRecord } from "../train/samples.js";
import { runLayout } from "../run/layout.js";
import type { RunConfig } from "./config.js";

/** A training sample as the trainer takes it; `reasoning` is "" for behavior-only supervision. */
export interface SftSample extends SftRecord {
  user: string;
  /** The training position of a train-split sample that is not the user's last (see PromptSample). */
  position?: number;
}

export function loadRunDataset(c: RunConfig): PreparedDataset {
  return readPreparedDataset(runLayout(c.runDir).dataset, c.dataset.domain);
}

/** The train split's negatives come from the whole catalog, seeded by the run, no two with one title (see sampleFor). */
export function trainCatalog(c: RunConfig, ds: PreparedDataset): TrainCatalog {
  return { itemIds: [...ds.items.keys()], seed: c.seed, titleOf: (id) => titleOf(ds.items, id) };
}

/** The train-split samples of the run: one per user, or one per training position (train.positions). */
export function trainSamples(c: RunConfig, ds: PreparedDataset): PromptSample[] {
  const catalog = trainCatalog(c, ds);
  return ds.users.flatMap((u) =>
    trainPositions(u, c.train.positions).map((p) => sampleFor(u, "train", c.dataset.historyLength, catalog, p)),
  );
}

/** Users whose validation split is used for validation loss / HitRatio (the first N, fixed order). */
export function validationUsers(c: RunConfig, ds: PreparedDataset): PreparedDataset["users"] {
  return c.train.validUsers > 0 ? ds.users.slice(0, c.train.validUsers) : ds.users;
}

/** The Figure-4 training input for a sample (the `train` template). */
export function trainingPrompt(ds: PreparedDataset, templates: PromptTemplates, s: PromptSample): string {
  return fillTemplate(templates.train, contextFor(ds, s));
}

let tallrecTemplate: string | undefined;

/** The TALLRec baseline's input for a sample (prompts/templates/tallrec.txt). */
export function tallrecPrompt(ds: PreparedDataset, s: PromptSample): string {
  tallrecTemplate ??= loadTallrecTemplate();
  return fillTemplate(tallrecTemplate, contextFor(ds, s));
}
