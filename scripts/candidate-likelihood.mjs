#!/usr/bin/env node
// Does a run's model know which candidate comes next, apart from whether it can write the title?
// For every test user of a finished run (rule teacher), each candidate title is scored where the
// teacher's summary names its choice — after the training prompt, `[reasoning_start]` and
// `Step 4 - Summary: The latest item is "<latest>". "` — under the base model and under the
// MSR-Rec adapter, in one batched scorer call each. HitRatio@1 of the highest summed log-prob
// (and of the lowest per-token PPL) is printed beside the run's Markov baseline: a model can rank
// the candidates well and still fail to name one when it samples freely.
//
// Usage: node scripts/candidate-likelihood.mjs RUN_DIR   (after `npm run build:ts`)
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../dist/src/index.js";
import { parseRunConfig } from "../dist/src/pipeline/config.js";
import { loadRunDataset, trainingPrompt } from "../dist/src/pipeline/run-data.js";
import { baseModelPath } from "../dist/src/pipeline/stages/base.js";
import { runLayout } from "../dist/src/run/layout.js";
import { testUsers } from "../dist/src/pipeline/variants.js";
import { sampleFor } from "../dist/src/prompts/dataset.js";
import { loadTemplates } from "../dist/src/prompts/templates.js";
import { REASONING_START } from "../dist/src/prompts/build.js";

const runDir = process.argv[2];
if (!runDir) {
  console.error("usage: node scripts/candidate-likelihood.mjs RUN_DIR");
  process.exit(2);
}
const c = parseRunConfig({ ...JSON.parse(readFileSync(join(runDir, "config.json"), "utf8")), runDir });
const L = runLayout(runDir);
const ds = loadRunDataset(c);
const templates = loadTemplates();
const title = (id) => ds.items.get(id)?.title ?? id;
const requests = [];
const targets = [];
for (const u of testUsers(c, ds)) {
  const s = sampleFor(u, "test", c.dataset.historyLength);
  const latest = s.history[s.history.length - 1];
  const prompt = `${trainingPrompt(ds, templates, s)}\n${REASONING_START}\nStep 4 - Summary: The latest item is "${title(latest)}". "`;
  for (const id of s.candidates) requests.push({ prompt, continuation: title(id) });
  targets.push({ n: s.candidates.length, target: s.targetIndex });
}
const model = await loadModel(baseModelPath(c), { threads: c.model.threads });
const scorer = model.createScorer({ contextSize: c.model.contextSize });
const hitRatio = (scores, better) => {
  let off = 0,
    hits = 0;
  for (const t of targets) {
    let best = 0;
    for (let k = 1; k < t.n; k++) if (better(scores[off + k], scores[off + best])) best = k;
    hits += best === t.target ? 1 : 0;
    off += t.n;
  }
  return (hits / targets.length).toFixed(4);
};
const report = async (label, opts) => {
  const s = await scorer.score(requests, opts);
  console.log(
    `${label}: HitRatio@1 by summed log-prob ${hitRatio(s, (a, b) => a.logprob > b.logprob)}, by per-token PPL ${hitRatio(s, (a, b) => a.ppl < b.ppl)}`,
  );
};
await report("base model", {});
const adapter = await model.loadLora(L.adapter("msr"));
await report("MSR-Rec adapter", { lora: [{ adapter }] });
adapter.dispose();
const markov = JSON.parse(readFileSync(L.metrics, "utf8")).rows.find((r) => r.name.startsWith("Markov"));
if (markov) console.log(`Markov baseline of the run: ${markov.hitRatio.toFixed(4)} (${targets.length} test users)`);
scorer.dispose();
model.dispose();
