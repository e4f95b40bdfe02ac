// Train stage: one LoRA adapter per train variant (the main one, w/o reason, the α/β sweep,
// TALLRec). Per epoch: the validation loss, the validation HitRatio@1 and the unweighted
// recommendation NLL; the best epoch by one criterion for every variant (see epoch-select.ts)
// is kept.
import { appendFileSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { createTrainer, type TrainerOptions } from "../../engine/trainer.js";
import { trainerOptionsFor } from "../../train/options.js";
import { loadTemplates } from "../../prompts/templates.js";
import { sampleFor } from "../../prompts/dataset.js";
import type { TokenizedSample } from "../../engine/train-batch.js";
import { tokenizeRecords } from "../../train/tokenize-pool.js";
import { writeFileAtomic } from "../../util/atomic-write.js";
import { keepJsonLines } from "../../util/jsonl.js";
import { trainSettings, trainVariants, type RunConfig, type TrainVariant } from "../config.js";
import { runLayout } from "../../run/layout.js";
import type { TrainLogLine } from "../../run/results.js";
import { loadRunDataset, tallrecPrompt, trainCatalog, trainingPrompt, type SftSample } from "../run-data.js";
import { readSftSamples } from "./sft.js";
import { fitToTokenBudget } from "../sft-fit.js";
import { openModel } from "../engine.js";
import { baseModelPath } from "./base.js";
import { runEpochs } from "../epochs.js";
import { betterEpoch, epochHitRatio, selectionName, type EpochScore } from "../epoch-select.js";
import type { StageContext, StageSpec } from "../stages.js";

/**
 * Keeps the train log's lines of every other variant, and of `variant` only the steps up to
 * `steps` and the epoch lines up to `epochs`: what a resumed (or restarted) variant writes again.
 */
function truncateTrainLog(path: string, variant: string, steps: number, epochs: number): void {
  keepJsonLines<TrainLogLine>(
    path,
    (l) => l.variant !== variant || (l.type === "step" ? l.step <= steps : l.epoch <= epochs),
  );
}

/** The trainer options of every variant: the same mapping `msr-rec train` uses (trainerOptionsFor). */
export function variantTrainerOptions(c: RunConfig, totalSteps: number): TrainerOptions {
  return trainerOptionsFor(trainSettings(c.train, c.seed), totalSteps);
}

/**
 * Trains one variant; keeps the best epoch's adapter (betterEpoch: validation HitRatio@1, ties by
 * the recommendation NLL) at train/<v>/adapter.gguf. A finished variant (train/<v>/done.json) is
 * skipped, and a killed one continues from train/<v>/trainer.ckpt (parameters, AdamW state,
 * position in the epoch, epoch loss so far and the best epoch's scores), so the stage resumes
 * where it stopped.
 */
async function trainVariant(
  c: RunConfig,
  v: TrainVariant,
  data: TokenizedSft,
  log: (m: string) => void,
  quiet: boolean,
): Promise<void> {
  const L = runLayout(c.runDir);
  const dir = dirname(L.adapter(v.name));
  const done = join(dir, "done.json");
  if (existsSync(done) && existsSync(L.adapter(v.name))) {
    log(`[train] ${v.name}: finished before, kept`);
    return;
  }
  const { train, valid } = variantData(v, data);
  mkdirSync(dir, { recursive: true });
  const ckpt = join(dir, "trainer.ckpt");
  if (!existsSync(ckpt)) truncateTrainLog(L.trainLog, v.name, 0, 0);
  const model = await openModel(baseModelPath(c), c);
  const logLine = (l: TrainLogLine) => appendFileSync(L.trainLog, JSON.stringify(l) + "\n");
  let best: EpochScore | null = null;
  let epochsDone = 0;
  try {
    const steps = Math.ceil(train.length / c.train.batchSize) * c.train.epochs;
    const trainer = createTrainer(model, variantTrainerOptions(c, steps));
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
          // JSON turns NaN into null: the scores travel as strings.
          state: () => ({
            best: best && { hitRatio: String(best.hitRatio), recommendationNll: String(best.recommendationNll) },
            epochsDone,
          }),
          restore: (st, at) => {
            const r = (st ?? {}) as {
              best?: { hitRatio: string; recommendationNll: string } | null;
              epochsDone?: number;
            };
            best = r.best
              ? { hitRatio: Number(r.best.hitRatio), recommendationNll: Number(r.best.recommendationNll) }
              : null;
            epochsDone = r.epochsDone ?? 0;
            truncateTrainLog(L.trainLog, v.name, at, epochsDone);
            log(`[train] ${v.name}: continuing after step ${at} (${epochsDone} epochs finished)`);
          },
        },
        onStep: (epoch, r) =>
          logLine({
            type: "step",
            variant: v.name,
            epoch,
            step: r.step,
            loss: r.loss,
            lossRea: r.lossReasoning,
            lossRec: r.lossRecommendation,
            tokens: r.tokens,
          }),
        onEpoch: async (epoch, trainLoss) => {
          const epochAdapter = join(dir, `epoch-${epoch}.gguf`);
          await trainer.saveAdapter(epochAdapter);
          const ev = valid.length ? await trainer.evaluate(valid, { alpha: v.alpha, beta: v.beta }) : null;
          // The variant's own weighted loss is logged (loss curves) but selects nothing.
          const validLoss = ev ? ev.loss : Number.NaN;
          const score: EpochScore = {
            hitRatio: await epochHitRatio(model, epochAdapter, c, v),
            recommendationNll: ev ? ev.lossRecommendation : Number.NaN,
          };
          const isBest = betterEpoch(score, best);
          if (isBest) {
            best = score;
            copyFileSync(epochAdapter, `${L.adapter(v.name)}.tmp`);
            renameSync(`${L.adapter(v.name)}.tmp`, L.adapter(v.name));
          }
          epochsDone = epoch;
          logLine({
            type: "epoch",
            variant: v.name,
            epoch,
            trainLoss,
            validLoss,
            validHitRatio: score.hitRatio,
            validRecNll: score.recommendationNll,
            best: isBest,
          });
          log(
            `[train] ${v.name} epoch ${epoch}: train ${trainLoss.toFixed(3)}  valid ${validLoss.toFixed(3)}  valid HR@1 ${score.hitRatio.toFixed(3)}  rec NLL ${score.recommendationNll.toFixed(3)}${isBest ? "  (best)" : ""}`,
          );
        },
      });
    } finally {
      trainer.dispose();
    }
  } finally {
    model.dispose();
  }
  const kept = best as EpochScore | null;
  writeFileAtomic(
    done,
    JSON.stringify({
      variant: v.name,
      selectedBy: selectionName(c),
      bestValidHitRatio: kept?.hitRatio ?? null,
      bestValidRecNll: kept?.recommendationNll ?? null,
      epochs: c.train.epochs,
    }) + "\n",
  );
  rmSync(ckpt, { force: true });
}

/** The SFT splits as tokens: as written, without reasoning (`w/o reason`), in TALLRec's layout. */
interface TokenizedSft {
  withReasoning: { train: TokenizedSample[]; valid: TokenizedSample[] };
  behaviorOnly?: { train: TokenizedSample[]; valid: TokenizedSample[] };
  tallrec?: { train: TokenizedSample[]; valid: TokenizedSample[] };
}

/** The samples a train variant learns from. */
function variantData(v: TrainVariant, data: TokenizedSft): { train: TokenizedSample[]; valid: TokenizedSample[] } {
  if (v.format === "tallrec") return data.tallrec!;
  return v.withoutReasoning ? data.behaviorOnly! : data.withReasoning;
}

/**
 * Tokenizes every form of the SFT splits the variants need, each sample within
 * train.maxSampleTokens (oldest history items cut where needed, see sft-fit.ts); the
 * behavior-only form keeps the same, already fitted prompts. TALLRec's samples are the same users
 * and targets under its own prompt, fitted on their own.
 */
async function tokenizeSft(
  c: RunConfig,
  variants: readonly TrainVariant[],
  log: (m: string) => void,
): Promise<TokenizedSft> {
  const ds = loadRunDataset(c);
  const templates = loadTemplates();
  const byUser = new Map(ds.users.map((u) => [u.user, u]));
  const catalog = trainCatalog(c, ds);
  const tokenize = (records: SftSample[]) => tokenizeRecords(baseModelPath(c), records);
  const fit = async (split: "train" | "valid", format: TrainVariant["format"]) => {
    const written = readSftSamples(c, split);
    const sampleOf = (s: SftSample, h: number) => {
      const u = byUser.get(s.user);
      if (!u)
        throw new Error(`sft/${split}.jsonl names user ${s.user}, who is not in the dataset; re-run the sft stage`);
      return sampleFor(u, split, h, catalog, s.position);
    };
    const build = (i: number, h: number): SftSample => {
      const s = written[i]!;
      if (format === "tallrec")
        return {
          user: s.user,
          prompt: tallrecPrompt(ds, sampleOf(s, h)),
          reasoning: "",
          recommendation: s.recommendation,
          layout: "plain",
        };
      if (h === c.dataset.historyLength) return s;
      return { ...s, prompt: trainingPrompt(ds, templates, sampleOf(s, h)) };
    };
    const r = await fitToTokenBudget(written.length, c.dataset.historyLength, c.train.maxSampleTokens, build, tokenize);
    const what = format === "tallrec" ? `${split} samples in TALLRec's prompt` : `${split} samples`;
    if (r.cut > 0)
      log(
        `[train] ${r.cut} of ${written.length} ${what} lost their oldest history items (${r.itemsDropped} in all) to fit train.maxSampleTokens = ${c.train.maxSampleTokens}`,
      );
    if (format === "msr")
      writeFileAtomic(
        join(runLayout(c.runDir).train, `fit-${split}.json`),
        JSON.stringify({
          samples: written.length,
          cut: r.cut,
          itemsDropped: r.itemsDropped,
          maxSampleTokens: c.train.maxSampleTokens,
        }) + "\n",
      );
    return r;
  };
  const [train, valid] = [await fit("train", "msr"), await fit("valid", "msr")];
  const out: TokenizedSft = { withReasoning: { train: train.tokens, valid: valid.tokens } };
  if (variants.some((v) => v.withoutReasoning && v.format === "msr")) {
    const strip = (s: SftSample): SftSample => ({ ...s, reasoning: "" });
    const stripped = await tokenize([...train.records.map(strip), ...valid.records.map(strip)]);
    out.behaviorOnly = { train: stripped.slice(0, train.records.length), valid: stripped.slice(train.records.length) };
  }
  if (variants.some((v) => v.format === "tallrec"))
    out.tallrec = { train: (await fit("train", "tallrec")).tokens, valid: (await fit("valid", "tallrec")).tokens };
  return out;
}

/** Train stage: every variant of the config, in order (main adapter first). */
export async function trainStage(c: RunConfig, log: (m: string) => void, quiet = false): Promise<void> {
  const variants = trainVariants(c);
  mkdirSync(runLayout(c.runDir).train, { recursive: true });
  const data = await tokenizeSft(c, variants, log);
  for (const v of variants) await trainVariant(c, v, data, log, quiet);
}

export function trainSpec({ c, log, quiet }: StageContext): StageSpec {
  return {
    stage: "train",
    inputs: { train: { ...c.train, checkpointEvery: undefined }, ablations: c.ablations, model: c.model },
    outputs: ["train", "train.jsonl"],
    resumable: true,
    run: () => trainStage(c, log, quiet),
  };
}
