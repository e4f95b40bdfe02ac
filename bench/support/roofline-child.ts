// One model file of a roofline suite (roofline, gpu-8b) in its own process, so that its peak memory is its own and a
// crash on one weight type does not lose the other's numbers. Measures, with `gpuLayers` layers
// offloaded:
//   1. scorer prompt processing: 16 requests of 512 tokens (256 prompt + 256 scored), scored in
//      one call with 512-token micro-batches (llama-bench's default n_ubatch);
//   2. batched generation: 64 prompts of 128 tokens, 128 new tokens each, 64 in parallel; the
//      generation rate is (tokens of the 128-token run - tokens of a 1-token run) / (the
//      difference in time), which removes prompt processing as llama-batched-bench's S_TG does;
//      the same again under a grammar (any text without a line break: every sampled token is
//      checked against it, so its cost is the grammar sampler's, not a shorter output's);
//   3. the whole MSR-Rec inference of `users` synthetic users through inferBidirectional (both
//      sides generated to `tokens` new tokens, both PPLs in one scorer call, Eq. 3 fusion), with
//      the time spent inside generate() and inside the scorer call recorded on the way.
// Prints one JSON line. Arg: a JSON object {path, gpuLayers, users, tokens, parallel}.
import { readFileSync } from "node:fs";
import { loadModel, type Model, type ScoreRequest } from "../../src/engine/index.js";
import { inferBidirectional } from "../../src/infer/bidirectional.js";
import type { ContinuationScorer, GenerateOptions, Prompt, TextGenerator } from "../../src/infer/generate.js";
import { benchUsers } from "../fusion.js";
import { medianMs } from "../lib.js";
import { gpuMemoryUsedMiB } from "./nvidia-smi.js";
import { randomTrainSamples } from "./samples.js";

export interface ChildArgs {
  path: string;
  gpuLayers: number;
  users: number;
  tokens: number;
  parallel: number;
}

export interface ChildResult {
  loadMs: number;
  scorerTokens: number;
  scorerMs: number;
  genPrompts: number;
  genTokens: number;
  genMs: number;
  genTokens1: number;
  genMs1: number;
  grammarTokens: number;
  grammarMs: number;
  grammarTokens1: number;
  grammarMs1: number;
  users: number;
  promptTokensMean: number;
  casesMs: number;
  inferMs: number;
  inferGenerateMs: number;
  inferScoreMs: number;
  inferGenerated: number;
  inferScoredRequests: number;
  peakRssBytes: number;
  gpuMemoryUsedMiB: number | null;
}

const kib = (key: string) =>
  Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;

async function scorerRate(model: Model, gpu: boolean): Promise<{ tokens: number; ms: number }> {
  const reqs: ScoreRequest[] = randomTrainSamples(16, 512, model.info.vocabSize).map((s) => ({
    prompt: s.tokens.subarray(0, 256),
    continuation: s.tokens.subarray(256),
  }));
  const scorer = model.createScorer({ contextSize: gpu ? 8192 : 2048, sequences: 16, batchSize: 512 });
  const ms = await medianMs(() => scorer.score(reqs), gpu ? 5 : 2, 1);
  scorer.dispose();
  return { tokens: 16 * 512, ms };
}

/** A grammar that admits any line: generation under it runs as long as without it. */
const ONE_LINE_GRAMMAR = "root ::= [^\\n]*";

async function generationRate(
  model: Model,
  grammar?: string,
): Promise<{ prompts: number; tokens: number; ms: number; tokens1: number; ms1: number }> {
  const prompts = randomTrainSamples(64, 128, model.info.vocabSize).map((s) => s.tokens);
  const gen = async (maxTokens: number) => {
    const t0 = performance.now();
    const rs = await model.generate(prompts, {
      maxTokens,
      temperature: 0.7,
      topK: 40,
      topP: 0.95,
      seed: 1,
      parallel: 64,
      ...(grammar ? { grammar } : {}),
    });
    return { tokens: rs.reduce((n, r) => n + r.tokens.length, 0), ms: performance.now() - t0 };
  };
  await gen(1); // warm-up: pages the weights in, builds the graphs
  const one = await gen(1);
  const full = await gen(128);
  return { prompts: prompts.length, tokens: full.tokens, ms: full.ms, tokens1: one.tokens, ms1: one.ms };
}

const args = JSON.parse(process.argv[2]!) as ChildArgs;
const gpu = args.gpuLayers > 0;
const t0 = performance.now();
const model = await loadModel(args.path, { gpuLayers: args.gpuLayers });
const loadMs = performance.now() - t0;
const sc = await scorerRate(model, gpu);
const gr = await generationRate(model);
const grg = await generationRate(model, ONE_LINE_GRAMMAR);

const c0 = performance.now();
const cases = (await benchUsers(args.users)).map((u) => u.kase);
const casesMs = performance.now() - c0;
const promptTokensMean =
  cases.reduce(
    (n, c) => n + model.tokenize(c.prompts.user as string).length + model.tokenize(c.prompts.item as string).length,
    0,
  ) /
  (2 * cases.length);
// The real inference path, with its two engine calls timed where they happen.
let inferGenerateMs = 0;
let inferScoreMs = 0;
let inferGenerated = 0;
let inferScoredRequests = 0;
const generator: TextGenerator<never> = {
  async generate(prompts: Prompt[], o: GenerateOptions<never>) {
    const t = performance.now();
    const rs = await model.generate(prompts, { ...o, parallel: args.parallel });
    inferGenerateMs += performance.now() - t;
    inferGenerated += rs.reduce((n, r) => n + r.tokens.length, 0);
    return rs;
  },
};
const inferScorer = model.createScorer(
  gpu ? { contextSize: 16384, sequences: 64, batchSize: 2048 } : { contextSize: 4096, sequences: 16, batchSize: 512 },
);
const scorer: ContinuationScorer<never> = {
  async score(requests) {
    const t = performance.now();
    const rs = await inferScorer.score(requests);
    inferScoreMs += performance.now() - t;
    inferScoredRequests += requests.length;
    return rs;
  },
};
const i0 = performance.now();
await inferBidirectional(generator, scorer, cases, {
  generation: { maxTokens: args.tokens, temperature: 0.7, topP: 0.95, topK: 40, seed: 1 },
  batchSize: args.parallel,
  pplConditioning: "prompt",
  constrained: false,
  codec: { tokenize: (t, o) => model.tokenize(t, o), detokenize: (t) => model.detokenize(t) },
  quiet: true,
});
const inferMs = performance.now() - i0;
const gpuMem = gpu ? gpuMemoryUsedMiB() : null;
inferScorer.dispose();
model.dispose();

const out: ChildResult = {
  loadMs,
  scorerTokens: sc.tokens,
  scorerMs: sc.ms,
  genPrompts: gr.prompts,
  genTokens: gr.tokens,
  genMs: gr.ms,
  genTokens1: gr.tokens1,
  genMs1: gr.ms1,
  grammarTokens: grg.tokens,
  grammarMs: grg.ms,
  grammarTokens1: grg.tokens1,
  grammarMs1: grg.ms1,
  users: cases.length,
  promptTokensMean,
  casesMs,
  inferMs,
  inferGenerateMs,
  inferScoreMs,
  inferGenerated,
  inferScoredRequests,
  peakRssBytes: kib("VmHWM"),
  gpuMemoryUsedMiB: gpuMem,
};
process.stdout.write(JSON.stringify(out) + "\n");
