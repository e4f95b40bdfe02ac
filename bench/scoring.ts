// Scoring and generation throughput, ours vs baselines measured in the same run:
// - batched scorer vs node-llama-cpp scoring the same requests through its public API
//   (controlledEvaluate with next-token probabilities at each continuation position);
// - batched scorer vs a plain all-logits forward over the same tokens (decodeOnly: the ceiling);
// - batched generation of 16 prompts vs the same prompts one after another;
// - invariant numerics (the default) vs fast numerics, scorer and generation, as ratios.
// Reported for the tiny and small presets (--presets picks).
import { devAddon } from "../src/engine/bindings.js";
import { loadModel, type Model, type ScoreRequest } from "../src/index.js";
import {
  interleavedMedianMs,
  medianMs,
  newResult,
  oneOfEach,
  type BenchResult,
  type FlagValues,
  type SuiteFlags,
} from "./lib.js";
import { benchModelPath } from "./support/models.js";
import { NodeLlamaCppScorer } from "./support/node-llama-cpp.js";

export const description =
  "batched scorer vs node-llama-cpp and an all-logits forward; batched vs sequential generation";
export const flags = {
  presets: { kind: "list", default: ["tiny", "small"], help: "model presets to measure (tiny, small)" },
} as const satisfies SuiteFlags;

const TITLES = [
  "Apex Phone Case",
  "Sonix Wireless Headphones Pro",
  "Zen Yoga Mat",
  "Volt USB-C Charger",
  "Nimbus Laptop Sleeve",
  "Aero Running Shoes",
];

function requestsFor(users: number): ScoreRequest[] {
  const reqs: ScoreRequest[] = [];
  for (let u = 0; u < users; u++) {
    const prompt = `User ${u} interacted with: ${TITLES.slice(0, 1 + (u % 5)).join(", ")}. Candidates: ${TITLES.join(", ")}. Recommend one item:`;
    for (const t of TITLES)
      reqs.push({ prompt, continuation: ` ${t} because it matches the user's recent purchases.` });
  }
  return reqs;
}

function countTokens(model: Model, reqs: ScoreRequest[]): number {
  return reqs.reduce(
    (n, r) =>
      n +
      model.tokenize(r.prompt as string).length +
      model.tokenize(r.continuation as string, { addBos: false }).length,
    0,
  );
}

async function nodeLlamaCppTokensPerSecond(path: string, reqs: ScoreRequest[], ours: Model): Promise<number> {
  const theirs = await NodeLlamaCppScorer.open(path, 512);
  let tokens = 0;
  const t0 = performance.now();
  for (const r of reqs) {
    const p = Array.from(ours.tokenize(r.prompt as string));
    const c = Array.from(ours.tokenize(r.continuation as string, { addBos: false }));
    await theirs.logprob(p, c);
    tokens += p.length + c.length;
  }
  const secs = (performance.now() - t0) / 1000;
  await theirs.dispose();
  return tokens / secs;
}

async function suiteFor(preset: "tiny" | "small", result: BenchResult): Promise<void> {
  const path = benchModelPath(preset);
  const model = await loadModel(path);
  const reqs = requestsFor(preset === "tiny" ? 32 : 16);
  const tokens = countTokens(model, reqs);
  const scorer = model.createScorer({ contextSize: 4096, sequences: 64, batchSize: 2048 });
  // The same calls with llama.cpp's default kernels (not batch invariant), in alternating rounds.
  const fastScorer = model.createScorer({ contextSize: 4096, sequences: 64, batchSize: 2048, numerics: "fast" });
  const [oursMs, fastMs] = (await interleavedMedianMs(
    [() => scorer.score(reqs), () => fastScorer.score(reqs)],
    5,
    1,
  )) as [number, number];
  fastScorer.dispose();
  // The ceiling tokenizes inside its timing too, as score() does.
  const ceilMs = await medianMs(() => devAddon().scorerDecodeOnly(scorer.handle(), scorer.toNative(reqs)), 5, 1);
  const ours = tokens / (oursMs / 1000);
  const ceiling = tokens / (ceilMs / 1000);
  // node-llama-cpp is slow (it sorts the whole vocabulary in JS per position): a subset suffices
  // for a per-token rate.
  const theirs = await nodeLlamaCppTokensPerSecond(path, reqs.slice(0, preset === "tiny" ? 24 : 8), model);
  result.results.push(
    { name: `${preset}: ours batched scorer`, value: ours, unit: "tokens/s" },
    {
      name: `${preset}: ours batched scorer, fast numerics (not batch invariant)`,
      value: tokens / (fastMs / 1000),
      unit: "tokens/s",
    },
    { name: `${preset}: all-logits forward (ceiling)`, value: ceiling, unit: "tokens/s" },
    { name: `${preset}: node-llama-cpp controlledEvaluate`, value: theirs, unit: "tokens/s" },
  );
  result.ratios[`${preset}: scorer / node-llama-cpp (goal >= 20)`] = ours / theirs;
  result.ratios[`${preset}: scorer / all-logits forward (goal >= 0.85)`] = ours / ceiling;
  result.ratios[`${preset}: invariant / fast numerics, scorer (goal >= 0.9)`] = fastMs / oursMs;

  const prompts = Array.from(
    { length: 16 },
    (_, i) => `User ${i} likes ${TITLES[i % TITLES.length]}. Step 1 - Preference Recognition:`,
  );
  const gen = { maxTokens: 32, temperature: 0 };
  let genTokens = 0;
  let fastTokens = 0;
  const [batchedMs, fastGenMs] = (await interleavedMedianMs(
    [
      async () => {
        const rs = await model.generate(prompts, { ...gen, parallel: 16 });
        genTokens = rs.reduce((n, r) => n + r.tokens.length, 0);
      },
      async () => {
        const rs = await model.generate(prompts, { ...gen, parallel: 16, numerics: "fast" });
        fastTokens = rs.reduce((n, r) => n + r.tokens.length, 0);
      },
    ],
    5,
    1,
  )) as [number, number];
  let seqTokens = 0;
  const sequentialMs = await medianMs(
    async () => {
      seqTokens = 0;
      for (const p of prompts) seqTokens += (await model.generate([p], { ...gen, parallel: 1 }))[0]!.tokens.length;
    },
    3,
    1,
  );
  const batched = genTokens / (batchedMs / 1000);
  const fastGen = fastTokens / (fastGenMs / 1000);
  const sequential = seqTokens / (sequentialMs / 1000);
  result.results.push(
    { name: `${preset}: generation, 16 prompts batched`, value: batched, unit: "tokens/s" },
    { name: `${preset}: generation, 16 prompts batched, fast numerics`, value: fastGen, unit: "tokens/s" },
    { name: `${preset}: generation, 16 prompts one after another`, value: sequential, unit: "tokens/s" },
  );
  result.ratios[`${preset}: batched / sequential generation (goal >= 3)`] = batched / sequential;
  result.ratios[`${preset}: invariant / fast numerics, batched generation (goal >= 0.9)`] = batched / fastGen;
  scorer.dispose();
  model.dispose();
}

export async function run(args: FlagValues<typeof flags>): Promise<BenchResult> {
  const result = newResult("scoring");
  for (const preset of oneOfEach("presets", args.presets, ["tiny", "small"] as const)) await suiteFor(preset, result);
  return result;
}
