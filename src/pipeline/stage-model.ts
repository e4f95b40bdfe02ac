// The model half of a run: `base` (create the base model when none is given, and pretrain it in
// full mode on the catalog text), `train` (one LoRA adapter per train variant: per epoch the
// validation loss and validation HitRatio@1, the best epoch's adapter kept), and opening the
// engine for inference.
import { appendFileSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { initModel } from "../gguf/init-model.js";
import { meteorText } from "../eval/meteor.js";
import { gptScore } from "../eval/gptscore.js";
import { bertScore, meanBertScore } from "../eval/bertscore.js";
import { ProgressBar } from "../cli/progress.js";
import { createTrainer, type Trainer } from "../engine/trainer.js";
import type { Item } from "../data/types.js";
import { Rng } from "../data/rng.js";
import { RulesTeacher } from "../teacher/rules.js";
import { fillTemplate } from "../prompts/build.js";
import type { PreparedDataset } from "../prompts/dataset.js";
import { loadTemplates } from "../prompts/templates.js";
import { sampleFor } from "../prompts/dataset.js";
import { runTrainingLoop, stepsPerEpoch, type StepLog } from "../train/loop.js";
import type { TokenizedSample, TrainSample } from "../train/samples.js";
import { tokenizeRecords } from "../train/tokenize-pool.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { keepJsonLines } from "../util/jsonl.js";
import type { InferenceEngine } from "./stage-infer.js";
import { trainVariants, type RunConfig, type TrainVariant } from "./config.js";
import { runLayout } from "./layout.js";
import type { TrainLogLine } from "./results.js";
import type { ReasoningQuality } from "./stage-eval.js";
import { loadRunDataset, readSftSamples, trainingPrompt, validationUsers, type SftSample } from "./stage-data.js";
import { loadAdapter, openModel, type EngineModel, type LoraSelection } from "./engine.js";

/** The base model a run fine-tunes: the configured file, or the one the base stage made. */
export function baseModelPath(c: RunConfig): string {
  return c.model.path ?? runLayout(c.runDir).baseModel;
}

/** One line of catalog text per item: what the pretraining teaches the fresh model. */
export function catalogLine(item: Item): string {
  const attrs = Object.entries(item.attributes)
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}`)
    .join("; ");
  return attrs ? `"${item.title}" (${attrs})` : `"${item.title}"`;
}

/** Item facts in words: the category, the brand and, for an accessory, what it fits. */
export function itemSentence(item: Item): string {
  const a = item.attributes;
  const str = (k: string) => (typeof a[k] === "string" ? (a[k] as string) : undefined);
  const category = str("category"), brand = str("brand"), forBrand = str("forBrand"), forCategory = str("forCategory");
  let s = `"${item.title}"`;
  if (category) s += ` is in ${category}`;
  if (brand) s += ` by ${brand}`;
  if (forBrand || forCategory) s += `; it fits ${[forBrand, forCategory].filter(Boolean).join(" ")}`;
  return s + ".";
}

/**
 * The pretraining documents of one epoch for a freshly initialised base model. A real LLM
 * arrives knowing the words, how to read a prompt and how to copy a name out of it; a model of a
 * few million random weights trained for minutes does not, so the base stage teaches it that
 * from the catalog and the training sequences alone (never a validation or test item, never the
 * train-split sample the SFT stage builds for each user):
 *  - every item's catalog line and a sentence about it (brand, category, what it fits);
 *  - every step k of every training sequence but the last (the last training item is the
 *    target of the SFT sample), told as the teacher's summary tells a choice ("The latest item
 *    is … fits best because …") after the history line of the prompts;
 *  - the same step as an exercise: the item bought at k among `candidates − 1` items drawn from
 *    the rest of the catalog, as the bare history and candidate lines or as one of the prompt
 *    templates (train, user, item, full), answered with the teacher's summary and the title.
 * Candidates, template and order are drawn again each epoch (seeded by seed, user and epoch).
 */
export function pretrainCorpus(c: RunConfig, ds: PreparedDataset, epoch: number): SftSample[] {
  const title = (id: string) => ds.items.get(id)?.title ?? id;
  const docs: SftSample[] = [];
  for (const it of ds.items.values()) {
    docs.push({ user: "", prompt: "Catalog item:", reasoning: "", recommendation: catalogLine(it) });
    docs.push({ user: "", prompt: "About the item:", reasoning: "", recommendation: itemSentence(it) });
  }
  const templates = loadTemplates();
  const kinds = ["train", "user", "item", "full"] as const;
  // The lines every template shares: the history line and the candidates line.
  const lines = templates.train.split("\n");
  const historyLine = lines.find((l) => l.includes("[history]")) ?? "[history]";
  const coreLines = lines.filter((l) => l.includes("[history]") || l.includes("[candidates]")).join("\n");
  const teacher = new RulesTeacher(ds.items, ds.users);
  const allIds = [...ds.items.keys()];
  const h = c.dataset.historyLength;
  for (const u of ds.users) {
    const rng = new Rng(c.seed, `pretrain:${epoch}:${u.user}`);
    const summary = (history: string[], candidates: string[], target: string) =>
      `Step 4 - Summary: ${teacher.summarize({ user: u.user, split: "train", history, candidates, target, targetIndex: candidates.indexOf(target) }, candidates.indexOf(target))}`;
    // The last training item is the target of the user's SFT sample: left out.
    for (let k = 1; k < u.train.length - 1; k++) {
      const target = u.train[k]!;
      const history = u.train.slice(Math.max(0, k - h), k);
      const ctx = { dataset: ds.name, history: history.map(title), candidates: [] as string[] };
      docs.push({ user: u.user, prompt: fillTemplate(historyLine, ctx), reasoning: summary(history, [target], target), recommendation: title(target) });
      const seen = new Set(u.train.slice(0, k + 1));
      const candidates = rng.shuffle([target, ...rng.sample(allIds.filter((id) => !seen.has(id)), c.dataset.candidates - 1)]);
      ctx.candidates = candidates.map(title);
      const form = rng.int(2) === 0 ? coreLines : templates[kinds[rng.int(kinds.length)]!];
      docs.push({ user: u.user, prompt: fillTemplate(form, ctx), reasoning: summary(history, candidates, target), recommendation: title(target) });
    }
  }
  return docs;
}

/** Base stage: init + full-mode pretraining on the corpus above (one corpus per epoch). */
export async function baseStage(c: RunConfig, log: (m: string) => void, quiet = false): Promise<void> {
  const L = runLayout(c.runDir);
  if (c.model.path) {
    if (!existsSync(c.model.path)) throw new Error(`model.path ${c.model.path} does not exist; give a GGUF file or leave model.path out to create a ${c.model.initSize} model`);
    mkdirSync(L.base, { recursive: true });
    writeFileAtomic(join(L.base, "source.json"), JSON.stringify({ path: c.model.path }) + "\n");
    return;
  }
  const initPath = join(L.base, "init.gguf");
  const r = initModel({ preset: c.model.initSize, vocab: "llama-spm", seed: c.seed, out: initPath });
  log(`[base] initialised a ${c.model.initSize} model: ${r.parameterCount.toLocaleString("en-US")} parameters`);
  const epochs = c.model.pretrainEpochs;
  if (epochs === 0) {
    renameSync(initPath, L.baseModel);
    return;
  }
  const ds = loadRunDataset(c);
  const corpora = Array.from({ length: epochs }, (_, e) => pretrainCorpus(c, ds, e));
  writeFileAtomic(L.catalogText, corpora[0]!.map((d) => [d.prompt, d.reasoning, d.recommendation].filter(Boolean).join(" ").replace(/\n/g, " ")).join("\n") + "\n");
  const batch = c.model.pretrainBatchSize;
  const steps = corpora.reduce((a, d) => a + stepsPerEpoch(d.length, batch), 0);
  log(`[base] pretraining on ${corpora[0]!.length} documents an epoch: ${epochs} epochs, ${steps} steps`);
  const flat = await tokenizeRecords(initPath, corpora.flat());
  let off = 0;
  const tokenized = corpora.map((d) => flat.slice(off, (off += d.length)));
  const model = await openModel(initPath, c);
  try {
    const trainer = createTrainer(model, {
      mode: "full",
      optimizer: { lr: c.model.pretrainLearningRate, schedule: "cosine", totalSteps: steps, warmupSteps: Math.max(2, Math.round(steps * 0.05)), clipGradNorm: 1 },
      microBatchTokens: 512,
    });
    try {
      // Each pretraining epoch has its own corpus, so the stage checkpoints between epochs: a
      // killed base stage continues after the last finished one (the init is re-made from the seed).
      const ckpt = join(L.base, "pretrain.ckpt");
      let start = 0;
      if (existsSync(ckpt)) {
        start = (JSON.parse(await trainer.loadCheckpoint(ckpt)) as { epoch: number }).epoch;
        log(`[base] continuing after pretraining epoch ${start}`);
      }
      for (let e = start; e < epochs; e++) {
        await runEpochs(trainer, tokenized[e]!, { epochs: 1, batchSize: batch, alpha: 0.5, beta: 0.5, seed: c.seed + e, label: `pretrain ${e + 1}/${epochs}`, quiet, onEpoch: async (_, trainLoss) => log(`[base] pretrain epoch ${e + 1}: loss ${trainLoss.toFixed(3)}`) });
        await trainer.saveCheckpoint(ckpt, JSON.stringify({ epoch: e + 1 }));
      }
      await trainer.saveModel(L.baseModel);
      rmSync(ckpt, { force: true });
    } finally {
      trainer.dispose();
    }
  } finally {
    model.dispose();
  }
}

interface EpochLoopOptions {
  epochs: number;
  batchSize: number;
  alpha: number;
  beta: number;
  seed: number;
  label: string;
  quiet?: boolean;
  onStep?: (epoch: number, r: StepLog) => void;
  /** Called after each epoch (1-based) with its mean training loss. */
  onEpoch: (epoch: number, trainLoss: number) => Promise<void>;
  /** Checkpoint every `every` steps and at each epoch end to `path`, and continue from it when it exists. */
  checkpoint?: {
    path: string;
    every: number;
    /** The caller's state saved with each checkpoint. */
    state: () => unknown;
    /** Gets that state back on resume, with the optimizer step the run continues after. */
    restore: (state: unknown, steps: number) => void;
  };
}

/** The trainer's loop (seeded epoch order, one update per batch) with a progress bar and epoch means. */
async function runEpochs(trainer: Trainer, samples: readonly TrainSample[], o: EpochLoopOptions): Promise<void> {
  const tokenized = trainer.tokenize(samples);
  const perEpoch = stepsPerEpoch(tokenized.length, o.batchSize);
  let bar: ProgressBar | null = null;
  // The running mean of the epoch's loss travels in the checkpoint, so a resumed epoch reports
  // the mean over all its steps.
  let sum = 0, n = 0, resumedBatch = 0;
  const ck = o.checkpoint;
  await runTrainingLoop(trainer, tokenized, {
    epochs: o.epochs,
    batchSize: o.batchSize,
    seed: o.seed,
    alpha: o.alpha,
    beta: o.beta,
    ...(ck
      ? {
          checkpointPath: ck.path,
          checkpointEvery: ck.every,
          resume: true,
          checkpointState: () => ({ sum, n, caller: ck.state() }),
          onResume: (st, at) => {
            const r = (st ?? {}) as { sum?: number; n?: number; caller?: unknown };
            [sum, n, resumedBatch] = [r.sum ?? 0, r.n ?? 0, at.batch];
            ck.restore(r.caller, at.steps);
          },
        }
      : {}),
    onStep: (log) => {
      const epoch = Math.ceil(log.epoch - 1e-9);
      if (!bar && !o.quiet) bar = new ProgressBar(`${o.label} epoch ${epoch}/${o.epochs}`, perEpoch - resumedBatch);
      resumedBatch = 0;
      bar?.tick(1, { loss: log.loss, "tok/s": log.tokensPerSecond });
      sum += log.loss;
      n++;
      o.onStep?.(epoch, log);
    },
    onEpochEnd: async (epoch) => {
      (bar as ProgressBar | null)?.finish();
      bar = null;
      const mean = n > 0 ? sum / n : Number.NaN;
      sum = 0;
      n = 0;
      await o.onEpoch(epoch + 1, mean);
    },
  });
}

/**
 * Validation HitRatio@1 by candidate likelihood: each validation user's candidates are scored as
 * the continuation of the training prompt (one batched scorer call) and the one with the lowest
 * per-token PPL is the prediction (per token, so short titles are not favoured for being short).
 * Cheap enough for every epoch, unlike generating reasoning.
 */
async function validationHitRatio(model: EngineModel, adapterPath: string, c: RunConfig): Promise<number> {
  const ds = loadRunDataset(c);
  const templates = loadTemplates();
  const users = validationUsers(c, ds);
  if (users.length === 0) return Number.NaN;
  const lora = await loadAdapter(model, adapterPath);
  const scorer = model.createScorer({ contextSize: c.model.contextSize });
  const reqs: Array<{ prompt: string; continuation: string }> = [];
  const meta: Array<{ n: number; target: number }> = [];
  for (const u of users) {
    const s = sampleFor(u, "valid", c.dataset.historyLength);
    const prompt = trainingPrompt(ds, templates, s);
    for (const id of s.candidates) reqs.push({ prompt, continuation: ds.items.get(id)?.title ?? id });
    meta.push({ n: s.candidates.length, target: s.targetIndex });
  }
  const scores = await scorer.score(reqs, { lora });
  scorer.dispose();
  for (const l of lora) l.adapter.dispose();
  let off = 0, hits = 0;
  for (const m of meta) {
    let best = 0;
    for (let k = 1; k < m.n; k++) if (scores[off + k]!.ppl < scores[off + best]!.ppl) best = k;
    if (best === m.target) hits++;
    off += m.n;
  }
  return hits / users.length;
}

/**
 * Keeps the train log's lines of every other variant, and of `variant` only the steps up to
 * `steps` and the epoch lines up to `epochs`: what a resumed (or restarted) variant writes again.
 */
function truncateTrainLog(path: string, variant: string, steps: number, epochs: number): void {
  keepJsonLines<TrainLogLine>(path, (l) => l.variant !== variant || (l.type === "step" ? l.step <= steps : l.epoch <= epochs));
}

/**
 * Trains one variant; keeps the best epoch's adapter (lowest validation loss) at
 * train/<v>/adapter.gguf. A finished variant (train/<v>/done.json) is skipped, and a killed one
 * continues from train/<v>/trainer.ckpt (parameters, AdamW state, position in the epoch, epoch
 * loss so far and the best validation loss), so the stage resumes where it stopped.
 */
async function trainVariant(c: RunConfig, v: TrainVariant, data: TokenizedSft, log: (m: string) => void, quiet: boolean): Promise<void> {
  const L = runLayout(c.runDir);
  const dir = dirname(L.adapter(v.name));
  const done = join(dir, "done.json");
  if (existsSync(done) && existsSync(L.adapter(v.name))) {
    log(`[train] ${v.name}: finished before, kept`);
    return;
  }
  const { train, valid } = v.withoutReasoning ? data.behaviorOnly! : data.withReasoning;
  mkdirSync(dir, { recursive: true });
  const ckpt = join(dir, "trainer.ckpt");
  if (!existsSync(ckpt)) truncateTrainLog(L.trainLog, v.name, 0, 0);
  const model = await openModel(baseModelPath(c), c);
  const logLine = (l: TrainLogLine) => appendFileSync(L.trainLog, JSON.stringify(l) + "\n");
  let bestLoss = Infinity;
  let epochsDone = 0;
  try {
    const steps = Math.ceil(train.length / c.train.batchSize) * c.train.epochs;
    const trainer = createTrainer(model, { mode: "lora", lora: { rank: c.train.loraRank, alpha: c.train.loraAlpha, seed: c.seed }, optimizer: { lr: c.train.learningRate, schedule: "cosine", totalSteps: steps, warmupSteps: Math.min(10, Math.ceil(steps / 10)) }, microBatchTokens: Math.max(512, c.train.maxSampleTokens) });
    try {
      await runEpochs(trainer, train, {
        epochs: c.train.epochs,
        batchSize: c.train.batchSize,
        alpha: v.alpha,
        beta: v.beta,
        seed: c.seed,
        label: `train ${v.name}`,
        quiet,
        checkpoint: {
          path: ckpt,
          every: c.train.checkpointEvery,
          state: () => ({ bestLoss: Number.isFinite(bestLoss) ? bestLoss : null, epochsDone }),
          restore: (st, at) => {
            const r = (st ?? {}) as { bestLoss?: number | null; epochsDone?: number };
            bestLoss = r.bestLoss ?? Infinity;
            epochsDone = r.epochsDone ?? 0;
            truncateTrainLog(L.trainLog, v.name, at, epochsDone);
            log(`[train] ${v.name}: continuing after step ${at} (${epochsDone} epochs finished)`);
          },
        },
        onStep: (epoch, r) => logLine({ type: "step", variant: v.name, epoch, step: r.step, loss: r.loss, lossRea: r.lossReasoning, lossRec: r.lossRecommendation, tokens: r.tokens }),
        onEpoch: async (epoch, trainLoss) => {
          const epochAdapter = join(dir, `epoch-${epoch}.gguf`);
          await trainer.saveAdapter(epochAdapter);
          const validLoss = valid.length ? (await trainer.evaluate(valid, { alpha: v.alpha, beta: v.beta })).loss : trainLoss;
          const validHitRatio = await validationHitRatio(model, epochAdapter, c);
          const best = validLoss < bestLoss;
          if (best) {
            bestLoss = validLoss;
            copyFileSync(epochAdapter, `${L.adapter(v.name)}.tmp`);
            renameSync(`${L.adapter(v.name)}.tmp`, L.adapter(v.name));
          }
          epochsDone = epoch;
          logLine({ type: "epoch", variant: v.name, epoch, trainLoss, validLoss, validHitRatio, best });
          log(`[train] ${v.name} epoch ${epoch}: train ${trainLoss.toFixed(3)}  valid ${validLoss.toFixed(3)}  valid HR@1 ${validHitRatio.toFixed(3)}${best ? "  (best)" : ""}`);
        },
      });
    } finally {
      trainer.dispose();
    }
  } finally {
    model.dispose();
  }
  writeFileAtomic(done, JSON.stringify({ variant: v.name, bestValidLoss: bestLoss, epochs: c.train.epochs }) + "\n");
  rmSync(ckpt, { force: true });
}

/** Train stage: every variant of the config, in order (main adapter first). */
/** The SFT splits as tokens: as written, and without reasoning for the `w/o reason` variant. */
interface TokenizedSft {
  withReasoning: { train: TokenizedSample[]; valid: TokenizedSample[] };
  behaviorOnly?: { train: TokenizedSample[]; valid: TokenizedSample[] };
}

/** Tokenizes every form of the SFT splits the variants need in one pool job. */
async function tokenizeSft(c: RunConfig, needBehaviorOnly: boolean): Promise<TokenizedSft> {
  const train = readSftSamples(c, "train");
  const valid = readSftSamples(c, "valid");
  const strip = (s: SftSample): SftSample => ({ ...s, reasoning: "" });
  const sets = needBehaviorOnly ? [train, valid, train.map(strip), valid.map(strip)] : [train, valid];
  const all = await tokenizeRecords(baseModelPath(c), sets.flat());
  let off = 0;
  const [t, v, bt, bv] = sets.map((s) => all.slice(off, (off += s.length)));
  return { withReasoning: { train: t!, valid: v! }, ...(needBehaviorOnly ? { behaviorOnly: { train: bt!, valid: bv! } } : {}) };
}

export async function trainStage(c: RunConfig, log: (m: string) => void, quiet = false): Promise<void> {
  const variants = trainVariants(c);
  const data = await tokenizeSft(c, variants.some((v) => v.withoutReasoning));
  for (const v of variants) await trainVariant(c, v, data, log, quiet);
}

/** The engine view inference uses, with adapters cached by path. */
export async function openInferenceEngine(c: RunConfig, modelPath: string): Promise<InferenceEngine<LoraSelection> & { dispose(): void }> {
  const model = await openModel(modelPath, c);
  const scorer = model.createScorer({ contextSize: c.model.contextSize });
  const adapters = new Map<string, LoraSelection>();
  return {
    generate: (prompts, opts) => model.generate(prompts, { ...opts, parallel: c.infer.batchSize }),
    scorer,
    tokenize: (text, o) => model.tokenize(text, o),
    adapter: async (path) => {
      let a = adapters.get(path);
      if (!a) adapters.set(path, (a = await loadAdapter(model, path)));
      return a;
    },
    dispose: () => {
      scorer.dispose();
      model.dispose();
    },
  };
}

/**
 * Reasoning-quality scorers for the eval stage. METEOR needs nothing; GPTScore scores each
 * reasoning under the evaluator model (eval.evaluatorModel, else the base model) with the
 * coherence aspect prompt; BERTScore matches the evaluator's contextual token states (the last
 * layer's hidden state of each token, model.embed).
 */
export async function reasoningQuality(c: RunConfig, skipped: string[]): Promise<{ quality: ReasoningQuality; dispose(): void }> {
  const q: ReasoningQuality = {};
  if (c.eval.meteor) q.meteor = async (pairs) => pairs.reduce((a, p) => a + meteorText(p.reference, p.candidate), 0) / pairs.length;
  if (!c.eval.gptscore && !c.eval.bertscore) return { quality: q, dispose: () => {} };
  const path = c.eval.evaluatorModel ?? baseModelPath(c);
  const model = await openModel(path, c);
  const scorer = model.createScorer({ contextSize: c.model.contextSize });
  if (c.eval.gptscore) {
    q.gptscore = async (pairs) => (await gptScore(pairs.map((p) => ({ text: p.candidate, context: p.context })), (reqs) => scorer.score(reqs.map((r) => ({ prompt: r.prompt, continuation: r.continuation }))), "coherence")).mean;
  }
  if (c.eval.bertscore) {
    // Contextual token vectors, as BERTScore uses: the evaluator's last-layer hidden states
    // (model.embed), each text encoded on its own, without the BOS row.
    const dim = model.info.embeddingSize;
    const embed = async (texts: readonly string[]) =>
      (await model.embed(texts)).map((e) => Array.from({ length: e.length / dim - 1 }, (_, p) => e.subarray((p + 1) * dim, (p + 2) * dim)));
    // One model's hidden states share a dominant direction, so even unrelated texts have high raw
    // cosines. As BERTScore's own rescaling does, F1 is rescaled against a baseline b, here the mean
    // F1 of mismatched pairs (each candidate against the next pair's reference): (F1 − b) / (1 − b).
    q.bertscore = async (pairs) => {
      const cands = pairs.map((p) => p.candidate);
      const refs = pairs.map((p) => p.reference);
      const f1 = meanBertScore(await bertScore(cands, refs, embed)).f1;
      if (pairs.length < 2) return f1;
      const b = meanBertScore(await bertScore(cands, refs.map((_, i) => refs[(i + 1) % refs.length]!), embed)).f1;
      return b < 1 ? (f1 - b) / (1 - b) : 0;
    };
    skipped.push("BERTScore encodes with the evaluator model's contextual last-layer states (not the original's RoBERTa-large) and is rescaled against mismatched pairs of the same table, so compare it within this table");
  }
  return {
    quality: q,
    dispose: () => {
      scorer.dispose();
      model.dispose();
    },
  };
}
