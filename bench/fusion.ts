// PPL-fusion throughput (Eq. 3): users/s through scoring both sides' reasoning and fusing,
//   - ours: all 2N (prompt, reasoning) pairs in ONE batched scorer call, then the fusion rule;
//   - the same requests scored one at a time through the same scorer;
//   - node-llama-cpp scoring them through its public API (controlledEvaluate with next-token
//     probabilities at every reasoning position), on a subset (it is slow);
// and end-to-end bidirectional inference users/s (generation of both sides + scoring + fusion).
// The CPU seconds per user of the batched call and of one request at a time say how much work
// batching saves, which wall time on a shared machine does not.
// Texts are real: synthetic-catalog users, the user/item templates, the rule teacher's reasoning.
import { prepareSynthetic } from "../src/data/synthetic.js";
import { loadModel } from "../src/engine/index.js";
import { fuseByPerplexity } from "../src/infer/fusion.js";
import { inferBidirectional, scoreReasonings, type InferenceCase } from "../src/infer/bidirectional.js";
import { fillTemplate } from "../src/prompts/build.js";
import { contextFor, sampleFor } from "../src/prompts/dataset.js";
import { loadTemplates } from "../src/prompts/templates.js";
import { RulesTeacher } from "../src/teacher/rules.js";
import { prunePath, parseChain } from "../src/teacher/prune.js";
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
  "PPL fusion (score both sides + fuse) vs one request at a time and node-llama-cpp; KV layouts; end-to-end users/s";
export const flags = {
  presets: { kind: "list", default: ["tiny", "small"], help: "model presets to measure (tiny, small)" },
} as const satisfies SuiteFlags;

interface TokenRequest {
  prompt: Int32Array;
  continuation: Int32Array;
}

interface BenchUser {
  kase: InferenceCase;
  requests: [{ prompt: string; continuation: string }, { prompt: string; continuation: string }];
}

/** N users with both sides' prompts and a teacher-written reasoning per side (steps 1+4 / 2+3). */
export async function benchUsers(n: number): Promise<BenchUser[]> {
  const data = prepareSynthetic({ users: Math.max(100, 2 * n), items: 80, seed: 3 }, { users: n, seed: 3 });
  const ds = { name: "electronics", items: new Map(data.items.map((it) => [it.id, it] as const)), users: data.users };
  const templates = loadTemplates();
  const teacher = new RulesTeacher(ds.items, ds.users);
  const out: BenchUser[] = [];
  for (const u of ds.users) {
    const s = sampleFor(u, "test", 10);
    const ctx = contextFor(ds, s);
    const prompt = fillTemplate(templates.teacher, ctx);
    const a = await teacher.ask({ key: u.user, prompt, sample: s, attempt: 0 });
    const steps = parseChain(a.content).steps;
    const pr = prunePath(a.content, ctx.candidates, s.targetIndex);
    const userText = `${steps[0] ?? ""}\n${steps[3] ?? ""}`.trim() || (pr.valid ? pr.reasoning : a.content);
    const itemText = `${steps[1] ?? ""}\n${steps[2] ?? ""}`.trim() || userText;
    const kase: InferenceCase = {
      user: u.user,
      prompts: { user: fillTemplate(templates.user, ctx), item: fillTemplate(templates.item, ctx) },
      candidateIds: s.candidates,
      candidateTitles: [...ctx.candidates],
      targetIndex: s.targetIndex,
    };
    out.push({
      kase,
      requests: [
        { prompt: fillTemplate(templates.user, ctx), continuation: userText },
        { prompt: fillTemplate(templates.item, ctx), continuation: itemText },
      ],
    });
  }
  return out;
}

function fuseAll(users: BenchUser[], ppl: number[]): number {
  let agree = 0;
  users.forEach((u, i) => {
    const d = fuseByPerplexity(
      { choice: u.kase.candidateIds[0]!, ppl: ppl[2 * i]! },
      { choice: u.kase.candidateIds[i % 2]!, ppl: ppl[2 * i + 1]! },
    );
    if (d.case === "agree") agree++;
  });
  return agree;
}

async function cpuSeconds(fn: () => Promise<unknown>): Promise<number> {
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

async function nodeLlamaCppSecondsPerUser(path: string, users: TokenRequest[][]): Promise<number> {
  const theirs = await NodeLlamaCppScorer.open(path, 2048);
  const t0 = performance.now();
  for (const u of users) {
    const ppl: number[] = [];
    for (const r of u) {
      const c = Array.from(r.continuation);
      ppl.push(Math.exp(-(await theirs.logprob(Array.from(r.prompt), c)) / c.length));
    }
    fuseByPerplexity({ choice: "a", ppl: ppl[0]! }, { choice: "b", ppl: ppl[1]! });
  }
  const secs = (performance.now() - t0) / 1000;
  await theirs.dispose();
  return secs / users.length;
}

async function suiteFor(preset: "tiny" | "small", result: BenchResult): Promise<void> {
  const path = benchModelPath(preset);
  const model = await loadModel(path);
  const users = await benchUsers(preset === "tiny" ? 32 : 16);
  // Tokenized once; a continuation is cut where the request would pass the model's training
  // context (the tiny preset's 512 positions: item-side reasonings run to ~500 tokens after prompts
  // of ~300).
  const nTrain = model.info.contextLength;
  const requests: TokenRequest[] = users
    .flatMap((u) => u.requests)
    .map((r) => {
      const prompt = model.tokenize(r.prompt);
      const continuation = model.tokenize(r.continuation, { addBos: false });
      return { prompt, continuation: continuation.subarray(0, Math.max(1, nTrain - prompt.length + 1)) };
    });
  // The scorer's KV size decides how many sequences share a decode wave: measured at three sizes
  // (requests are ~450 and ~800 tokens on the small preset), against one request at a time
  // through the 1024-cell scorer. The requests share no prompts, so the default layout ("auto")
  // decodes them in per-sequence KV streams where two or more fit; the unified cache, where every
  // token of a wave attends over the wave's whole KV range, is measured alongside in the same run.
  const sizes = [1024, 2048, 8192];
  const scorers = new Map(
    sizes.map(
      (ctx) => [ctx, model.createScorer({ contextSize: ctx, sequences: 32, batchSize: Math.min(2048, ctx) })] as const,
    ),
  );
  const batched = new Map<number, number>();
  const unifiedBatched = new Map<number, number>();
  for (const ctx of sizes) {
    const sc = scorers.get(ctx)!;
    const ms = await medianMs(async () => fuseAll(users, await scoreReasonings(sc, requests, undefined)), 3, 1);
    batched.set(ctx, users.length / (ms / 1000));
    const un = model.createScorer({
      contextSize: ctx,
      sequences: 32,
      batchSize: Math.min(2048, ctx),
      kvLayout: "unified",
    });
    const unMs = await medianMs(async () => fuseAll(users, await scoreReasonings(un, requests, undefined)), 3, 1);
    unifiedBatched.set(ctx, users.length / (unMs / 1000));
    un.dispose();
  }
  const scorer = scorers.get(1024)!;
  const singleMs = await medianMs(
    async () => {
      const ppl: number[] = [];
      for (const r of requests) ppl.push((await scorer.score([r]))[0]!.ppl);
      fuseAll(users, ppl);
    },
    3,
    1,
  );
  const single = users.length / (singleMs / 1000);
  // Invariant numerics (the default) against fast ones (not batch invariant), same call, same run.
  const fastScorer = model.createScorer({ contextSize: 2048, sequences: 32, batchSize: 2048, numerics: "fast" });
  const [invMs, fastMs] = (await interleavedMedianMs(
    [
      async () => fuseAll(users, await scoreReasonings(scorers.get(2048)!, requests, undefined)),
      async () => fuseAll(users, await scoreReasonings(fastScorer, requests, undefined)),
    ],
    3,
    1,
  )) as [number, number];
  fastScorer.dispose();
  const fast = users.length / (fastMs / 1000);
  // The work each way, as CPU seconds of this process (all threads): unlike wall time, other
  // programs on the machine barely change it. Both ways decode the same tokens and compute the LM
  // head on the same positions, so batching can only save per-call costs and idle threads.
  const bestCtx = [...batched.entries()].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  const batchedCpu = await cpuSeconds(async () =>
    fuseAll(users, await scoreReasonings(scorers.get(bestCtx)!, requests, undefined)),
  );
  const singleCpu = await cpuSeconds(async () => {
    const ppl: number[] = [];
    for (const r of requests) ppl.push((await scorer.score([r]))[0]!.ppl);
    fuseAll(users, ppl);
  });
  const nTheirs = preset === "tiny" ? 4 : 2;
  const theirs =
    1 /
    (await nodeLlamaCppSecondsPerUser(
      path,
      Array.from({ length: nTheirs }, (_, i) => [requests[2 * i]!, requests[2 * i + 1]!]),
    ));
  for (const [ctx, v] of batched)
    result.results.push({
      name: `${preset}: PPL fusion, one batched scorer call (KV ${ctx})`,
      value: v,
      unit: "users/s",
    });
  for (const [ctx, v] of unifiedBatched)
    result.results.push({
      name: `${preset}: PPL fusion, one batched scorer call (KV ${ctx}, unified cache forced)`,
      value: v,
      unit: "users/s",
    });
  result.results.push(
    { name: `${preset}: PPL fusion, one request at a time`, value: single, unit: "users/s" },
    { name: `${preset}: PPL fusion, one batched scorer call (KV 2048), fast numerics`, value: fast, unit: "users/s" },
    {
      name: `${preset}: PPL fusion CPU time per user, one batched scorer call (KV ${bestCtx})`,
      value: batchedCpu / users.length,
      unit: "cpu-s/user",
    },
    {
      name: `${preset}: PPL fusion CPU time per user, one request at a time`,
      value: singleCpu / users.length,
      unit: "cpu-s/user",
    },
    { name: `${preset}: PPL fusion via node-llama-cpp controlledEvaluate`, value: theirs, unit: "users/s" },
  );
  const best = Math.max(...batched.values());
  result.ratios[`${preset}: best batched / one at a time`] = best / single;
  result.ratios[`${preset}: invariant / fast numerics, one batched scorer call (KV 2048, goal >= 0.9)`] =
    fastMs / invMs;
  result.ratios[`${preset}: best batched, unified cache forced / one at a time`] =
    Math.max(...unifiedBatched.values()) / single;
  result.ratios[`${preset}: best batched / node-llama-cpp`] = best / theirs;
  result.ratios[`${preset}: CPU time one at a time / best batched (the work batching saves)`] = singleCpu / batchedCpu;

  // End to end: both sides generated (32 new tokens each), parsed, scored, fused. With invariant
  // numerics the PPLs come from generation; with fast ones generation's log-probs are not the
  // scorer's, so the scorer computes them (a second pass), as before.
  const e2eUsers = users.slice(0, 16).map((u) => u.kase);
  const generation = { maxTokens: 32, temperature: 0.7, topP: 0.95, topK: 40, seed: 1 };
  const fastE2eScorer = model.createScorer({ contextSize: 1024, sequences: 32, batchSize: 1024, numerics: "fast" });
  const e2e = (numerics: "invariant" | "fast") =>
    inferBidirectional(
      {
        generate: async (p, o) => {
          const rs = await model.generate(p, { ...o, parallel: 32, numerics });
          // Fast numerics: drop generation's log-probs, so the scorer is asked.
          return numerics === "fast" ? rs.map(({ tokenLogprobs: _, ...r }) => r) : rs;
        },
      },
      numerics === "fast" ? fastE2eScorer : scorer,
      e2eUsers,
      {
        generation,
        batchSize: 32,
        pplConditioning: "prompt",
        constrained: false,
        codec: { tokenize: (t, o) => model.tokenize(t, o), detokenize: (t) => model.detokenize(t) },
        quiet: true,
      },
    );
  // Generation alone, the same prompts and options: what the whole inference is compared to.
  const genPrompts = e2eUsers.flatMap((c) => [c.prompts.user, c.prompts.item]);
  const [e2eMs, e2eFastMs, genMs] = (await interleavedMedianMs(
    [() => e2e("invariant"), () => e2e("fast"), () => model.generate(genPrompts, { ...generation, parallel: 32 })],
    3,
    1,
  )) as [number, number, number];
  fastE2eScorer.dispose();
  result.results.push(
    {
      name: `${preset}: end-to-end bidirectional inference (32 new tokens per side)`,
      value: e2eUsers.length / (e2eMs / 1000),
      unit: "users/s",
    },
    {
      name: `${preset}: end-to-end bidirectional inference, fast numerics (scorer pass for PPL)`,
      value: e2eUsers.length / (e2eFastMs / 1000),
      unit: "users/s",
    },
    {
      name: `${preset}: generation alone (both sides, 32 new tokens)`,
      value: e2eUsers.length / (genMs / 1000),
      unit: "users/s",
    },
  );
  result.ratios[`${preset}: end-to-end, invariant / fast numerics`] = e2eFastMs / e2eMs;
  result.ratios[`${preset}: end-to-end time / generation time (goal ~1)`] = e2eMs / genMs;
  for (const sc of scorers.values()) sc.dispose();
  model.dispose();
}

export async function run(args: FlagValues<typeof flags>): Promise<BenchResult> {
  const result = newResult("fusion");
  for (const preset of oneOfEach("presets", args.presets, ["tiny", "small"] as const)) await suiteFor(preset, result);
  return result;
}
