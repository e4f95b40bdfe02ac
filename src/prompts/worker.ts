// The piscina worker: builds the JSONL of one range of prompt samples. Each worker gets the whole
// job once, through workerData: either the samples and titles themselves, or a prepared dataset
// folder that it reads on its own thread. Tasks are then just [start, end) ranges, so almost
// nothing crosses threads per task except the finished JSONL string.
import { workerData } from "piscina";
import { readPreparedDataset, samplesFor, type PromptSample, type Split } from "./dataset.js";
import { promptJsonl, type PromptSetup } from "./records.js";

interface CommonSetup {
  kind: PromptSetup["kind"];
  template: string;
}

/** The job, given in memory. */
export interface MemoryJob extends CommonSetup {
  dataset: string;
  titles: [string, string][];
  samples: PromptSample[];
}

/** The job, as a prepared dataset folder the worker reads itself. */
export interface FolderJob extends CommonSetup {
  dataDir: string;
  datasetName?: string;
  split: Split;
  historyLength: number;
  seed?: number;
}

export type WorkerJob = MemoryJob | FolderJob;

function load(job: WorkerJob): { setup: PromptSetup; samples: PromptSample[] } {
  if ("dataDir" in job) {
    const ds = readPreparedDataset(job.dataDir, job.datasetName);
    const titles = new Map([...ds.items].map(([id, it]) => [id, it.title]));
    return {
      setup: { dataset: ds.name, kind: job.kind, template: job.template, titles },
      samples: samplesFor(ds, job.split, job.historyLength, job.seed),
    };
  }
  return {
    setup: { dataset: job.dataset, kind: job.kind, template: job.template, titles: new Map(job.titles) },
    samples: job.samples,
  };
}

const { setup, samples } = load(workerData as WorkerJob);

export default function buildPromptRange(range: [number, number]): string {
  return promptJsonl(setup, samples.slice(range[0], range[1]));
}
