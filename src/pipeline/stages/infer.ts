// Infer stage: for every inference variant (see variants.ts) generate on the test users with the
// variant's adapter, parse, score PPL and fuse; one infer/<variant>.jsonl per variant. With a
// shard (i/N) only that shard's slice of users runs, into infer/shards/shard-i-of-N/<variant>.jsonl,
// to be merged; seeds follow each user's global position, so merged shards equal an unsharded run.
import { existsSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fillTemplate } from "../../prompts/build.js";
import { trainedPrefix } from "../../train/samples.js";
import { contextFor, sampleFor, type PreparedDataset } from "../../prompts/dataset.js";
import { defaultTemplatesDir, loadTemplates, type PromptTemplates } from "../../prompts/templates.js";
import {
  inferBidirectional,
  reasoningScoreRequest,
  scoreReasonings,
  type InferenceCase,
  type SideResult,
} from "../../infer/bidirectional.js";
import {
  generateAll,
  type ContinuationScorer,
  type GenerateOptions,
  type Prompt,
  type TextGenerator,
  type Tokenize,
} from "../../infer/generate.js";
import { parseOutput } from "../../infer/parse.js";
import type { Detokenize } from "../../infer/align.js";
import { inferShardFile, mergeInferShards, writeInferRecords, type InferRecord } from "../../infer/records.js";
import type { Shard } from "../../util/scheduler-shard.js";
import { describeCpus } from "../../util/cpus.js";
import { datasetFiles } from "../../data/dataset.js";
import type { RunConfig } from "../config.js";
import { runLayout, RL_VARIANT } from "../../run/layout.js";
import { loadRunDataset, tallrecPrompt } from "../run-data.js";
import { inferVariants, testUsers, type InferVariant } from "../variants.js";
import { openInferenceEngine, type LoraSelection } from "../engine.js";
import { baseModelPath } from "./base.js";
import type { StageContext, StageSpec } from "../stages.js";

/** What inference needs from a loaded model: generation, a scorer, adapters by path. */
export interface InferenceEngine<L> extends TextGenerator<L> {
  scorer: ContinuationScorer<L>;
  tokenize: Tokenize;
  detokenize: Detokenize;
  adapter(path: string): Promise<L>;
}

/**
 * The prompt a variant generates from: exactly the tokens its adapter was trained to continue
 * (the template with BOS, then `[reasoning_start]`, or `[reasoning_start]\n` for the
 * behavior-only `w/o reason`), or the bare template text for the base model.
 */
export function variantPrompt(tokenize: Tokenize, v: Pick<InferVariant, "prefix">, prompt: Prompt): Prompt {
  if (v.prefix === "none" || typeof prompt !== "string") return prompt;
  return trainedPrefix(tokenize, prompt, v.prefix === "behavior");
}

/** The contiguous slice of `n` test users that shard i/N covers (dataset order). */
export function shardRange(n: number, shard: Shard): [number, number] {
  return [Math.floor((shard.index * n) / shard.count), Math.floor(((shard.index + 1) * n) / shard.count)];
}

export type TestCase = InferenceCase & { full: Prompt; tallrec: Prompt; position: number };

/**
 * One case per test user (or per user of the shard). `position` is the user's index among all
 * test users: generation seeds derive from it, so a sharded run samples exactly what the
 * unsharded run samples and the merged shards equal a single-process run.
 */
export function inferenceCases(
  c: RunConfig,
  ds: PreparedDataset,
  templates: PromptTemplates,
  shard?: Shard,
): TestCase[] {
  const users = testUsers(c, ds);
  const [from, to] = shard ? shardRange(users.length, shard) : [0, users.length];
  return users.slice(from, to).map((u, k) => {
    const s = sampleFor(u, "test", c.dataset.historyLength);
    const ctx = contextFor(ds, s);
    return {
      user: u.user,
      position: from + k,
      prompts: { user: fillTemplate(templates.user, ctx), item: fillTemplate(templates.item, ctx) },
      full: fillTemplate(templates.full, ctx),
      tallrec: tallrecPrompt(ds, s),
      candidateIds: s.candidates,
      candidateTitles: [...ctx.candidates],
      targetIndex: s.targetIndex,
    };
  });
}

function generationOptions<L>(c: RunConfig, lora: L | undefined): Omit<GenerateOptions<L>, "grammar" | "stop"> {
  const g: Omit<GenerateOptions<L>, "grammar" | "stop"> = {
    maxTokens: c.infer.maxTokens,
    temperature: c.infer.temperature,
    topP: c.infer.topP,
    topK: c.infer.topK,
    seed: c.seed,
  };
  if (lora !== undefined) g.lora = lora;
  return g;
}

/** Runs one variant on the given cases. */
export async function inferVariant<L>(
  c: RunConfig,
  engine: InferenceEngine<L>,
  v: InferVariant,
  cases: TestCase[],
  quiet = false,
): Promise<InferRecord[]> {
  const L = runLayout(c.runDir);
  let lora: L | undefined;
  if (v.adapter !== null) {
    const path = L.adapter(v.adapter);
    if (!existsSync(path))
      throw new Error(
        `adapter ${path} for "${v.label}" is missing: run the ${v.adapter === RL_VARIANT ? "rl" : "train"} stage first`,
      );
    lora = await engine.adapter(path);
  }
  const gen = generationOptions(c, lora);
  // Prompt j of a generate stream uses seed + j: start the stream at the first case's global
  // position (two prompts per user when bidirectional) so shards reproduce the full run.
  const first = cases[0]?.position ?? 0;
  gen.seed += v.mode === "bidirectional" ? 2 * first : first;
  const prompt = (p: Prompt): Prompt => variantPrompt(engine.tokenize, v, p);
  cases = cases.map((k) => ({
    ...k,
    prompts: { user: prompt(k.prompts.user), item: prompt(k.prompts.item) },
    full: prompt(k.full),
    tallrec: prompt(k.tallrec),
  }));
  if (v.mode === "bidirectional") {
    const res = await inferBidirectional(engine, engine.scorer, cases, {
      generation: gen,
      batchSize: c.infer.batchSize,
      pplConditioning: c.infer.pplConditioning,
      constrained: c.infer.constrained && v.name === "msr",
      eq3: v.name === "msr",
      codec: engine,
      quiet,
    });
    return res.map((r) => {
      const rec: InferRecord = {
        user: r.user,
        candidateIds: r.candidateIds,
        candidateTitles: r.candidateTitles,
        targetIndex: r.targetIndex,
        userSide: r.userSide,
        itemSide: r.itemSide,
        fused: r.fused,
      };
      if (r.fusedEq3) rec.fusedEq3 = r.fusedEq3;
      if (r.constrained) rec.constrained = r.constrained;
      return rec;
    });
  }
  const prompts = cases.map((k) => (v.template === "tallrec" ? k.tallrec : k.full));
  const gens = await generateAll(engine, prompts, gen, c.infer.batchSize, `infer ${v.name}`, quiet);
  const parsed = gens.map((g, k) => parseOutput(g.text, cases[k]!.candidateTitles));
  const ppl = await scoreReasonings(
    engine.scorer,
    parsed.map((p, k) => reasoningScoreRequest(prompts[k]!, gens[k]!, p, c.infer.pplConditioning, engine)),
    lora,
  );
  return cases.map((k, i) => {
    const single: SideResult = {
      ...parsed[i]!,
      text: gens[i]!.text,
      finishReason: gens[i]!.finishReason,
      ppl: ppl[i]!,
      tokenIds: Array.from(gens[i]!.tokens),
    };
    return {
      user: k.user,
      candidateIds: k.candidateIds,
      candidateTitles: k.candidateTitles,
      targetIndex: k.targetIndex,
      single,
    };
  });
}

/** The infer stage, or one shard of it into `part.dir`. `only` restricts to named variants. */
export async function inferStage<L>(
  c: RunConfig,
  engine: InferenceEngine<L>,
  opts: { part?: { shard: Shard; dir: string }; only?: string[]; quiet?: boolean; log?: (m: string) => void } = {},
): Promise<void> {
  const L = runLayout(c.runDir);
  const ds = loadRunDataset(c);
  const cases = inferenceCases(c, ds, loadTemplates(), opts.part?.shard);
  for (const v of inferVariants(c)) {
    if (opts.only && !opts.only.includes(v.name)) continue;
    const t0 = Date.now();
    const records = await inferVariant(c, engine, v, cases, opts.quiet);
    const out = opts.part ? inferShardFile(opts.part.dir, v.name) : L.inferOutputs(v.name);
    writeInferRecords(out, records);
    opts.log?.(`[infer] ${v.label}: ${records.length} users in ${((Date.now() - t0) / 1000).toFixed(1)} s → ${out}`);
  }
}

/** Merges every variant's shards (the folders `dirs`, all N in order) into infer/<variant>.jsonl. */
export function mergeInferStage(c: RunConfig, dirs: readonly string[]): number {
  const L = runLayout(c.runDir);
  const ds = loadRunDataset(c);
  const order = testUsers(c, ds).map((u) => u.user);
  let n = 0;
  for (const v of inferVariants(c)) n += mergeInferShards(dirs, v.name, L.inferOutputs(v.name), order);
  return n;
}

/**
 * The files the shards' records depend on besides the config: the dataset, the inference
 * templates, the base model and each variant's adapter.
 */
function inferInputFiles(c: RunConfig): Record<string, string> {
  const L = runLayout(c.runDir);
  const files: Record<string, string> = { ...datasetFiles(L.dataset), "base model": baseModelPath(c) };
  for (const kind of ["user", "item", "full"]) files[`${kind} template`] = join(defaultTemplatesDir(), `${kind}.txt`);
  for (const v of inferVariants(c))
    if (v.adapter !== null) files[relative(c.runDir, L.adapter(v.adapter)).split(sep).join("/")] = L.adapter(v.adapter);
  return files;
}

async function withEngine(
  c: RunConfig,
  log: (m: string) => void,
  work: (engine: InferenceEngine<LoraSelection>) => Promise<void>,
): Promise<void> {
  const engine = await openInferenceEngine(c, baseModelPath(c));
  log(`[infer] ${engine.threads} engine threads; this process may use ${describeCpus()}`);
  try {
    await work(engine);
  } finally {
    engine.dispose();
  }
}

export function inferSpec({ c, log, quiet }: StageContext): StageSpec {
  return {
    stage: "infer",
    inputs: { infer: c.infer, ablations: c.ablations },
    // Only the merged per-variant files: shards under infer/shards/ survive a re-run.
    outputs: inferVariants(c).map((v) => `infer/${v.name}.jsonl`),
    run: () => withEngine(c, log, (engine) => inferStage(c, engine, { log, quiet })),
    sharded: {
      root: join(runLayout(c.runDir).infer, "shards"),
      files: () => inferInputFiles(c),
      runShard: (shard, dir) =>
        withEngine(c, log, (engine) => inferStage(c, engine, { log, quiet, part: { shard, dir } })),
      merge: async (dirs) => log(`[infer] merged ${mergeInferStage(c, dirs)} shard records`),
    },
  };
}
