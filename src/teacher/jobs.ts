// Turns a prepared dataset into synthesis jobs: the teacher prompt (Figure 3) and the candidate
// titles the pruner matches Step 5 against, for one split and optionally one shard of users.
import { fillTemplate } from "../prompts/build.js";
import { contextFor, samplesFor, type PreparedDataset, type Split } from "../prompts/dataset.js";
import type { PromptTemplates } from "../prompts/templates.js";
import { inShard, type Shard, type SynthesisJob } from "./synthesize.js";

/** `seed` draws the train split's negative candidates (a run's `seed`), so the prompts match the run's. */
export function synthesisJobs(
  ds: PreparedDataset,
  templates: PromptTemplates,
  split: Split,
  shard?: Shard,
  historyLength?: number,
  seed?: number,
): SynthesisJob[] {
  return samplesFor(ds, split, historyLength, seed)
    .filter((s) => !shard || inShard(s.user, shard))
    .map((sample) => {
      const ctx = contextFor(ds, sample);
      return { sample, prompt: fillTemplate(templates.teacher, ctx), candidateTitles: [...ctx.candidates] };
    });
}
