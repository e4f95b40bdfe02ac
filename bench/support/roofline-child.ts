// One model file of a roofline suite (roofline, gpu-8b) in its own process, so that its peak memory
// is its own and a crash on one weight type does not lose the other's numbers. With `gpuLayers`
// layers offloaded, for each numerics mode asked for (fast = llama.cpp's own path, the one its
// tools run; invariant = the batch-invariant default on the CPU):
//   1. scorer prompt processing, `scoreRequests` requests of 512 decoded positions scored in one
//      call with 512-token micro-batches (llama-bench's default n_ubatch), in two shapes: 512
//      prompt tokens + 1 scored token (the work of llama-bench pp512: one output row) and 256 + 256
//      (an output row, the 128k-vocabulary LM head and a log-softmax for half of the positions);
//   2. batched generation: `gen.parallel` prompts of `gen.prompt` tokens, `gen.tokens` new tokens
//      each, all in parallel; the generation rate is (tokens of the full run - tokens of a 1-token
//      run) / (the difference in time), which removes prompt processing as llama-batched-bench's
//      S_TG does; the same again under a grammar (any text without a line break: every sampled
//      token is checked against it, so its cost is the grammar sampler's, not a shorter output's);
//   3. unless `inference` is false (a repetition round of the rates above): the whole MSR-Rec
//      inference of `users` synthetic users through inferBidirectional (both sides generated to
//      `tokens` new tokens, PPLs from generation's log-probs, Eq. 3 fusion), with the time spent
//      inside generate() and inside scorer calls recorded on the way.
// Prints one JSON line. Arg: a JSON ChildArgs object.
import { readFileSync } from "node:fs";
import { loadModel, type Model, type Numerics as NativeNumerics, type ScoreRequest } from "../../src/engine/index.js";
import { inferBidirectional } from "../../src/infer/bidirectional.js";
import type { ContinuationScorer, GenerateOptions, Prompt, TextGenerator } from "../../src/infer/generate.js";
import { benchUsers } from "../fusion.js";
import { medianMs } from "../lib.js";
import { gpuMemoryUsedMiB } from "./nvidia-smi.js";
import { randomTrainSamples } from "./samples.js";

/** The generation shape: `parallel` prompts of `prompt` tokens, `tokens` new tokens each. */
export interface GenShape {
  parallel: number;
  prompt: number;
  tokens: number;
}

export interface ChildArgs {
  path: string;
  gpuLayers: number;
  users: number;
  tokens: number;
  parallel: number;
  numerics: NativeNumerics[];
  scoreRequests: number;
  gen: GenShape;
  /** Run the whole inference too (false: the scorer and generation rates only). */
  inference: boolean;
}

/** Tokens (decoded positions) and the median time of one call or run. */
export interface Rate {
  tokens: number;
  ms: number;
}

export interface GenRate {
  full: Rate;
  /** The 1-token run: prompt processing and one sampled token per prompt. */
  one: Rate;
}

export interface ModeResult {
  numerics: NativeNumerics;
  /** 512 prompt tokens + 1 scored: llama-bench pp512's work. */
  scorerPrefill: Rate;
  /** 256 prompt tokens + 256 scored. */
  scorerHalf: Rate;
  gen: GenRate;
  grammar: GenRate;
  /** The whole inference, when it ran. */
  infer: InferenceTimes | null;
}

export interface InferenceTimes {
  inferMs: number;
  inferGenerateMs: number;
  inferScoreMs: number;
  inferGenerated: number;
  inferScoredRequests: number;
}

export interface ChildResult {
  loadMs: number;
  users: number;
  promptTokensMean: number;
  casesMs: number;
  modes: ModeResult[];
  peakRssBytes: number;
  gpuMemoryUsedMiB: number | null;
}

const kib = (key: string) =>
  Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;

async function scorerRate(model: Model, a: ChildArgs, numerics: NativeNumerics, scored: number): Promise<Rate> {
  const gpu = a.gpuLayers > 0;
  const prompt = 512 - scored + 1; // prompt + continuation - 1 = 512 decoded positions
  const reqs: ScoreRequest[] = randomTrainSamples(a.scoreRequests, prompt + scored, model.info.vocabSize).map((s) => ({
    prompt: s.tokens.subarray(0, prompt),
    continuation: s.tokens.subarray(prompt),
  }));
  const scorer = model.createScorer({
    contextSize: gpu ? 8192 : 2048,
    sequences: a.scoreRequests,
    batchSize: 512,
    numerics,
  });
  const ms = await medianMs(() => scorer.score(reqs), gpu ? 5 : 2, 1);
  scorer.dispose();
  return { tokens: a.scoreRequests * 512, ms };
}

/** A grammar that admits any line: generation under it runs as long as without it. */
const ONE_LINE_GRAMMAR = "root ::= [^\\n]*";

async function generationRate(
  model: Model,
  shape: GenShape,
  numerics: NativeNumerics,
  grammar?: string,
): Promise<GenRate> {
  const prompts = randomTrainSamples(shape.parallel, shape.prompt, model.info.vocabSize).map((s) => s.tokens);
  const gen = async (maxTokens: number): Promise<Rate> => {
    const t0 = performance.now();
    const rs = await model.generate(prompts, {
      maxTokens,
      temperature: 0.7,
      topK: 40,
      topP: 0.95,
      seed: 1,
      parallel: shape.parallel,
      numerics,
      ...(grammar ? { grammar } : {}),
    });
    return { tokens: rs.reduce((n, r) => n + r.tokens.length, 0), ms: performance.now() - t0 };
  };
  await gen(1); // warm-up: pages the weights in, builds the graphs
  const one = await gen(1);
  const full = await gen(shape.tokens);
  return { full, one };
}

/** The real inference path in one numerics mode, with its engine calls timed where they happen. */
async function inference(
  model: Model,
  a: ChildArgs,
  numerics: NativeNumerics,
  cases: Awaited<ReturnType<typeof benchUsers>>,
): Promise<InferenceTimes> {
  const gpu = a.gpuLayers > 0;
  const t = { generateMs: 0, scoreMs: 0, generated: 0, scored: 0 };
  const generator: TextGenerator<never> = {
    async generate(prompts: Prompt[], o: GenerateOptions<never>) {
      const t0 = performance.now();
      const rs = await model.generate(prompts, { ...o, parallel: a.parallel, numerics });
      t.generateMs += performance.now() - t0;
      t.generated += rs.reduce((n, r) => n + r.tokens.length, 0);
      return rs;
    },
  };
  const inferScorer = model.createScorer({
    ...(gpu
      ? { contextSize: 16384, sequences: 64, batchSize: 2048 }
      : { contextSize: 4096, sequences: 16, batchSize: 512 }),
    numerics,
  });
  const scorer: ContinuationScorer<never> = {
    async score(requests) {
      const t0 = performance.now();
      const rs = await inferScorer.score(requests);
      t.scoreMs += performance.now() - t0;
      t.scored += requests.length;
      return rs;
    },
  };
  const i0 = performance.now();
  await inferBidirectional(
    generator,
    scorer,
    cases.map((u) => u.kase),
    {
      generation: { maxTokens: a.tokens, temperature: 0.7, topP: 0.95, topK: 40, seed: 1 },
      batchSize: a.parallel,
      pplConditioning: "prompt",
      constrained: false,
      codec: { tokenize: (x, o) => model.tokenize(x, o), detokenize: (x) => model.detokenize(x) },
      quiet: true,
    },
  );
  const inferMs = performance.now() - i0;
  inferScorer.dispose();
  return {
    inferMs,
    inferGenerateMs: t.generateMs,
    inferScoreMs: t.scoreMs,
    inferGenerated: t.generated,
    inferScoredRequests: t.scored,
  };
}

const args = JSON.parse(process.argv[2]!) as ChildArgs;
const t0 = performance.now();
const model = await loadModel(args.path, { gpuLayers: args.gpuLayers });
const loadMs = performance.now() - t0;

const c0 = performance.now();
const users = args.inference ? await benchUsers(args.users) : [];
const casesMs = performance.now() - c0;
const promptTokensMean =
  users.reduce(
    (n, { kase: c }) =>
      n + model.tokenize(c.prompts.user as string).length + model.tokenize(c.prompts.item as string).length,
    0,
  ) / Math.max(1, 2 * users.length);

const modes: ModeResult[] = [];
for (const numerics of args.numerics) {
  modes.push({
    numerics,
    scorerPrefill: await scorerRate(model, args, numerics, 1),
    scorerHalf: await scorerRate(model, args, numerics, 256),
    gen: await generationRate(model, args.gen, numerics),
    grammar: await generationRate(model, args.gen, numerics, ONE_LINE_GRAMMAR),
    infer: args.inference ? await inference(model, args, numerics, users) : null,
  });
}
const gpuMem = args.gpuLayers > 0 ? gpuMemoryUsedMiB() : null;
model.dispose();

const out: ChildResult = {
  loadMs,
  users: users.length,
  promptTokensMean,
  casesMs,
  modes,
  peakRssBytes: kib("VmHWM"),
  gpuMemoryUsedMiB: gpuMem,
};
process.stdout.write(JSON.stringify(out) + "\n");
