// Base stage: the model a run fine-tunes. A configured GGUF is used as it is; otherwise (demo and
// tiny presets) a fresh model is created and pretrained in full mode on the catalog text and the
// training sequences, so that a few million random weights learn the words and the prompt shapes.
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { initModel } from "../../gguf/init-model.js";
import { createTrainer } from "../../engine/trainer.js";
import type { Item } from "../../data/types.js";
import { Rng } from "../../util/random.js";
import { recentHistory } from "../../data/protocol.js";
import { RulesTeacher } from "../../teacher/rules.js";
import { fillTemplate } from "../../prompts/build.js";
import type { PreparedDataset } from "../../prompts/dataset.js";
import { loadTemplates } from "../../prompts/templates.js";
import { stepsPerEpoch } from "../../train/loop.js";
import { TRAIN_DEFAULTS } from "../../train/options.js";
import { tokenizeRecords } from "../../train/tokenize-pool.js";
import { writeFileAtomic } from "../../util/atomic-write.js";
import type { RunConfig } from "../config.js";
import { runLayout } from "../../run/layout.js";
import { loadRunDataset, type SftSample } from "../run-data.js";
import { openModel } from "../engine.js";
import { runEpochs } from "../epochs.js";
import type { StageContext, StageSpec } from "../stages.js";

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
  const category = str("category"),
    brand = str("brand"),
    forBrand = str("forBrand"),
    forCategory = str("forCategory");
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
 *  - every item's catalog line and a sentence about it (brand, category, what it fits), each as
 *    a reasoning answered by the item's title;
 *  - every step k of every training sequence but the last (the last training item is the
 *    target of the SFT sample) as an exercise: the item bought at k among `candidates − 1` items
 *    drawn from the rest of the catalog, answered with the teacher's summary ("The latest item
 *    is … fits best because …") and the title;
 *  - with model.pretrainOpenSteps, the same step told after the bare history line, with no
 *    candidate list (which item follows which; it also teaches naming an item with no list to
 *    copy it from, so the demo leaves it out);
 *  - with model.pretrainListExercises = n, the step n times more as a list exercise: `candidates` items
 *    the user never bought (the item bought at k is not among them), answered with the teacher's
 *    choice among them, its summary and title: an answer that only the list can give, which is
 *    what a small model sampling freely otherwise fails at (it names a likely item that is not
 *    a candidate).
 * Exercises come as the bare history and candidate lines or as one of the prompt templates
 * (train, user, item, full), so the copy skill is learnt in the layouts inference uses.
 * Candidates, template and order are drawn again each epoch (seeded by seed, user and epoch).
 */
export function pretrainCorpus(c: RunConfig, ds: PreparedDataset, epoch: number): SftSample[] {
  const title = (id: string) => ds.items.get(id)?.title ?? id;
  const docs: SftSample[] = [];
  for (const it of ds.items.values()) {
    // The facts come as reasoning answered by the item's title, never as behavior-only samples:
    // a document with empty reasoning teaches `[reasoning_start]\n[reasoning_end]`, and a model
    // that learnt it skips the reasoning at inference and names an item with no list to copy from.
    docs.push({ user: "", prompt: "Catalog item:", reasoning: catalogLine(it), recommendation: it.title });
    docs.push({ user: "", prompt: "About the item:", reasoning: itemSentence(it), recommendation: it.title });
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
    const touched = new Set([...u.train, u.valid, u.test]);
    const untouched = allIds.filter((id) => !touched.has(id));
    // The last training item is the target of the user's SFT sample: left out.
    for (let k = 1; k < u.train.length - 1; k++) {
      const target = u.train[k]!;
      const history = recentHistory(u.train.slice(0, k), h);
      const ctx = { dataset: ds.name, history: history.map(title), candidates: [] as string[] };
      if (c.model.pretrainOpenSteps)
        docs.push({
          user: u.user,
          prompt: fillTemplate(historyLine, ctx),
          reasoning: summary(history, [target], target),
          recommendation: title(target),
        });
      const seen = new Set(u.train.slice(0, k + 1));
      const candidates = rng.shuffle([
        target,
        ...rng.sample(
          allIds.filter((id) => !seen.has(id)),
          c.dataset.candidates - 1,
        ),
      ]);
      ctx.candidates = candidates.map(title);
      const form = rng.int(2) === 0 ? coreLines : templates[kinds[rng.int(kinds.length)]!];
      docs.push({
        user: u.user,
        prompt: fillTemplate(form, ctx),
        reasoning: summary(history, candidates, target),
        recommendation: title(target),
      });
      for (let x = 0; x < c.model.pretrainListExercises && untouched.length >= 2; x++) {
        // The same step with a list that lacks the item bought next: the teacher's choice among
        // the listed items answers, so the right title is one that only the list holds. The list
        // holds no item the user ever bought (so neither the validation nor the test target).
        const listed = rng.sample(untouched, c.dataset.candidates);
        const sample = {
          user: u.user,
          split: "train" as const,
          history,
          candidates: listed,
          target: listed[0]!,
          targetIndex: 0,
        };
        const pick = teacher.choose(teacher.scoreCandidates(sample), sample, 0);
        const lctx = { dataset: ds.name, history: history.map(title), candidates: listed.map(title) };
        const lform = rng.int(2) === 0 ? coreLines : templates[kinds[rng.int(kinds.length)]!];
        docs.push({
          user: u.user,
          prompt: fillTemplate(lform, lctx),
          reasoning: `Step 4 - Summary: ${teacher.summarize(sample, pick)}`,
          recommendation: title(listed[pick]!),
        });
      }
    }
  }
  return docs;
}

/** Base stage: init + full-mode pretraining on the corpus above (one corpus per epoch). */
export async function baseStage(c: RunConfig, log: (m: string) => void, quiet = false): Promise<void> {
  const L = runLayout(c.runDir);
  if (c.model.path) {
    if (!existsSync(c.model.path))
      throw new Error(`model.path ${c.model.path} does not exist; give the path of an existing GGUF file`);
    mkdirSync(L.base, { recursive: true });
    writeFileAtomic(join(L.base, "source.json"), JSON.stringify({ path: c.model.path }) + "\n");
    return;
  }
  const initPath = join(L.base, "init.gguf");
  if (!c.model.initSize)
    throw new Error("the config names neither model.path nor model.initSize; set model.path to the base GGUF model");
  const shape = c.model.initShape
    ? Object.fromEntries(Object.entries(c.model.initShape).filter(([, v]) => v !== undefined))
    : undefined;
  const r = initModel({
    preset: c.model.initSize,
    vocab: "llama-spm",
    seed: c.seed,
    out: initPath,
    ...(shape ? { overrides: shape } : {}),
  });
  const h = r.hparams;
  log(
    `[base] initialised a ${c.model.initSize} model (${h.blockCount} layers, width ${h.embeddingLength}): ${r.parameterCount.toLocaleString("en-US")} parameters`,
  );
  const epochs = c.model.pretrainEpochs;
  if (epochs === 0) {
    renameSync(initPath, L.baseModel);
    return;
  }
  const ds = loadRunDataset(c);
  const corpora = Array.from({ length: epochs }, (_, e) => pretrainCorpus(c, ds, e));
  writeFileAtomic(
    L.catalogText,
    corpora[0]!
      .map((d) => [d.prompt, d.reasoning, d.recommendation].filter(Boolean).join(" ").replace(/\n/g, " "))
      .join("\n") + "\n",
  );
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
      // A fine-tuning run's schedule, clipping and micro-batches, with the pretraining's own rate
      // and a warmup of 5% of the steps.
      optimizer: {
        lr: c.model.pretrainLearningRate,
        schedule: TRAIN_DEFAULTS.schedule,
        totalSteps: steps,
        warmupSteps: Math.max(2, Math.round(steps * 0.05)),
        clipGradNorm: TRAIN_DEFAULTS.clipGradNorm,
      },
      microBatchTokens: TRAIN_DEFAULTS.microBatchTokens,
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
        await runEpochs(trainer, tokenized[e]!, {
          epochs: 1,
          batchSize: batch,
          alpha: 0.5,
          beta: 0.5,
          seed: c.seed + e,
          label: `pretrain ${e + 1}/${epochs}`,
          quiet,
          onEpoch: async (_, trainLoss) => log(`[base] pretrain epoch ${e + 1}: loss ${trainLoss.toFixed(3)}`),
        });
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

export function baseSpec({ c, log, quiet }: StageContext): StageSpec {
  return {
    stage: "base",
    inputs: { model: c.model, seed: c.seed },
    outputs: ["base"],
    resumable: true,
    run: () => baseStage(c, log, quiet),
  };
}
