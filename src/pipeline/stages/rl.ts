// Rl stage: reinforcement refinement of the MSR-Rec adapter after SFT (GRPO, src/train/grpo.ts),
// on the prompts inference uses. Each step takes rl.usersPerStep training samples (every training
// position of every user, in a seeded order, cycled), their user-side and item-side prompts after `[reasoning_start]`, and rl.group
// completions of each at the inference sampling settings; the reward is the evaluation's rules
// on the user's ground-truth item (src/train/rl-rewards.ts); the KL penalty is to the SFT adapter.
// The best step by validation HitRatio@1 (greedy, both sides) is kept at rl/adapter.gguf
// (step 0 = the SFT adapter itself), which the "MSR-Rec + GRPO" rows infer with. Off unless
// rl.enabled; a killed stage continues from rl/trainer.ckpt, written after every step.
import { mkdirSync, rmSync } from "node:fs";
import type { LoraChoice } from "../../engine/index.js";
import { createTrainer, type Trainer, type TrainerOptions } from "../../engine/trainer.js";
import { fillTemplate } from "../../prompts/build.js";
import {
  contextFor,
  sampleFor,
  trainPositions,
  type PreparedDataset,
  type PromptSample,
} from "../../prompts/dataset.js";
import { loadTemplates, type PromptTemplates } from "../../prompts/templates.js";
import { parseOutput } from "../../infer/parse.js";
import { loadAdapterWeights } from "../../train/adapter-weights.js";
import { runGrpo, type GrpoPrompt } from "../../train/grpo.js";
import { trainerOptionsFor } from "../../train/options.js";
import { outputReward } from "../../train/rl-rewards.js";
import { trainedPrefix } from "../../train/samples.js";
import { Rng } from "../../util/random.js";
import { runLayout, RL_VARIANT } from "../../run/layout.js";
import { trainSettings, type RunConfig } from "../config.js";
import { loadRunDataset, trainCatalog, validationUsers } from "../run-data.js";
import { openModel, type EngineModel } from "../engine.js";
import { baseModelPath } from "./base.js";
import type { StageContext, StageSpec } from "../stages.js";

/** A user's two inference prompts for a sample, as the adapter continues them, and the candidates. */
function sidePrompts(model: EngineModel, ds: PreparedDataset, t: PromptTemplates, s: PromptSample) {
  const ctx = contextFor(ds, s);
  const tokenize = (text: string, o?: { addBos?: boolean }) => model.tokenize(text, o);
  return {
    prompts: [t.user, t.item].map((tpl) => trainedPrefix(tokenize, fillTemplate(tpl, ctx), false)),
    titles: [...ctx.candidates],
  };
}

/** The policy trainer's options: the SFT adapter's LoRA shape, AdamW at rl.learningRate, constant. */
export function rlTrainerOptions(c: RunConfig): TrainerOptions {
  const settings = trainSettings(c.train, c.seed);
  return {
    ...trainerOptionsFor(
      { ...settings, lr: c.rl.learningRate, warmupSteps: 0, schedule: "constant", clipGradNorm: 1 },
      c.rl.steps,
    ),
    contextSize: c.model.contextSize,
  };
}

export async function rlStage(c: RunConfig, log: (m: string) => void): Promise<void> {
  const L = runLayout(c.runDir);
  mkdirSync(L.rl, { recursive: true });
  const ds = loadRunDataset(c);
  const templates = loadTemplates();
  const model = await openModel(baseModelPath(c), c);
  const trainers: Trainer[] = [];
  try {
    const open = async () => {
      const t = createTrainer(model, rlTrainerOptions(c));
      trainers.push(t);
      await loadAdapterWeights(t, c.rl.from ?? L.adapter("msr"));
      return t;
    };
    const policy = await open();
    const reference = c.rl.beta > 0 ? await open() : null;

    const catalog = trainCatalog(c, ds);
    // Every training position of every user (the samples before a user's last training item are
    // prompts SFT never saw, whatever train.positions), in a seeded order, cycled.
    const order = new Rng(c.seed, "rl samples").shuffle(
      ds.users.flatMap((u) => trainPositions(u, "all").map((p) => ({ u, p }))),
    );
    const weights = { valid: c.rl.validReward, format: c.rl.formatReward };
    const steps = c.train.reasoningSteps;
    const prompts = (step: number): GrpoPrompt[] =>
      Array.from({ length: c.rl.usersPerStep }, (_, k) => order[((step - 1) * c.rl.usersPerStep + k) % order.length]!)
        .map(({ u, p }) => sampleFor(u, "train", c.dataset.historyLength, catalog, p))
        .flatMap((s) => {
          const { prompts: sides, titles } = sidePrompts(model, ds, templates, s);
          return sides.map((tokens) => ({
            tokens,
            reward: (text: string) => outputReward(text, titles, s.targetIndex, steps, weights),
          }));
        });

    // Validation HitRatio@1: greedy answers of both sides of the validation users, the mean of
    // the two sides' hit rates (the fusion needs PPL scoring; each side is what GRPO trains).
    const valid = validationUsers(c, ds).map((u) => {
      const s = sampleFor(u, "valid", c.dataset.historyLength);
      return { s, ...sidePrompts(model, ds, templates, s) };
    });
    const validate = async (lora: readonly LoraChoice[]) => {
      if (valid.length === 0) return Number.NaN;
      const out = await model.generate(
        valid.flatMap((v) => v.prompts),
        { maxTokens: c.infer.maxTokens, temperature: 0, seed: c.seed, parallel: c.infer.batchSize, lora },
      );
      const hits = out.filter((g, i) => {
        const v = valid[Math.floor(i / 2)]!;
        return parseOutput(g.text, v.titles).choiceIndex === v.s.targetIndex;
      }).length;
      return hits / out.length;
    };

    const r = await runGrpo(model, policy, reference, {
      steps: c.rl.steps,
      group: c.rl.group,
      beta: c.rl.beta,
      lossType: c.rl.lossType,
      temperature: c.infer.temperature,
      topP: c.infer.topP,
      topK: c.infer.topK,
      maxTokens: c.infer.maxTokens,
      parallel: Math.max(c.infer.batchSize, c.rl.group),
      seed: c.seed,
      prompts,
      validate,
      evalEvery: c.rl.evalEvery,
      checkpointPath: L.rlCheckpoint,
      adapterPath: L.adapter(RL_VARIANT),
      logPath: L.rlLog,
      log,
    });
    log(`[rl] kept step ${r.bestStep} (validation HitRatio@1 ${r.best.toFixed(3)})`);
  } finally {
    for (const t of trainers) t.dispose();
    model.dispose();
  }
  rmSync(L.rlCheckpoint, { force: true });
}

export function rlSpec({ c, log }: StageContext): StageSpec {
  return {
    stage: "rl",
    // Off, its settings change nothing downstream.
    inputs: c.rl.enabled ? { rl: c.rl, infer: c.infer } : { rl: { enabled: false } },
    outputs: c.rl.enabled ? ["rl", "rl.jsonl"] : [],
    disabled: !c.rl.enabled,
    resumable: true,
    run: () => (c.rl.enabled ? rlStage(c, log) : Promise.resolve()),
  };
}
