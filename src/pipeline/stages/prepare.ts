// Prepare stage: the dataset folder of a run. The synthetic catalog, a folder `msr-rec prepare`
// already wrote, or raw files of a real source read and put through the METHOD §1 protocol
// (k-core, sampling, leave-one-out, candidates).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readDatasetSync, writeDataset, USERS_FILE, type DatasetFileStats } from "../../data/dataset.js";
import { prepareSynthetic } from "../../data/synthetic.js";
import { applyProtocol } from "../../data/protocol.js";
import { readSource, type SourceFormat } from "../../data/read.js";
import { runLayout } from "../../run/layout.js";
import type { RunConfig } from "../config.js";
import type { StageContext, StageSpec } from "../stages.js";

/** Config source names → the readers' format names. */
const READER_FORMAT: Record<Exclude<RunConfig["dataset"]["source"], "synthetic">, SourceFormat> = {
  "amazon-2014": "amazon2014",
  "amazon-2018": "amazon2018",
  "amazon-2023": "amazon2023",
  recbole: "recbole",
  llara: "llara",
};

/** Writes the run's dataset folder from the configured source (see the header). */
export async function prepareStage(c: RunConfig): Promise<void> {
  const L = runLayout(c.runDir);
  const protocol = { kcore: c.dataset.kCore, users: c.dataset.users, candidates: c.dataset.candidates, seed: c.seed };
  if (c.dataset.source === "synthetic") {
    const prepared = prepareSynthetic(
      // Generate more shoppers than kept, so the k-core leaves a dense catalog to sample from.
      { users: Math.max(2 * c.dataset.users, 100), items: c.dataset.syntheticItems, seed: c.seed },
      protocol,
    );
    const stats: DatasetFileStats & { name: string } = {
      ...prepared.stats,
      source: prepared.source,
      name: c.dataset.domain,
    };
    writeDataset(L.dataset, { items: [...prepared.items.values()], users: prepared.users, stats });
    return;
  }
  const p = c.dataset.path!;
  if (existsSync(join(p, USERS_FILE))) {
    const ds = readDatasetSync(p);
    writeDataset(L.dataset, { items: ds.items, users: ds.users, stats: { ...ds.stats, name: c.dataset.domain } });
    return;
  }
  const raw = await readSource(READER_FORMAT[c.dataset.source], p, c.dataset.meta ? { meta: c.dataset.meta } : {});
  const prepared = applyProtocol(raw.interactions, raw.items, protocol);
  const stats = { ...prepared.stats, source: raw.source, name: c.dataset.domain } as DatasetFileStats;
  writeDataset(L.dataset, { items: prepared.items, users: prepared.users, stats });
}

export function prepareSpec({ c }: StageContext): StageSpec {
  return {
    stage: "prepare",
    inputs: { dataset: c.dataset, seed: c.seed },
    outputs: ["dataset"],
    run: () => prepareStage(c),
  };
}
