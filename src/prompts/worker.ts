// The piscina worker: builds the JSONL of one chunk of prompt samples. The run's setup (template,
// dataset name, id → title map) arrives once per worker through workerData.
import { workerData } from "piscina";
import type { PromptSample } from "./dataset.js";
import { promptJsonl, type PromptSetup } from "./records.js";

export interface WorkerSetup {
  dataset: string;
  kind: PromptSetup["kind"];
  template: string;
  titles: [string, string][];
}

const init = workerData as WorkerSetup;
const setup: PromptSetup = { dataset: init.dataset, kind: init.kind, template: init.template, titles: new Map(init.titles) };

export default function buildPromptChunk(samples: PromptSample[]): string {
  return promptJsonl(setup, samples);
}
