// GRPO over a fine-tuned LoRA adapter, on one model in one process: each step samples G
// completions of every prompt from the trainer's live adapter (batched generation, no adapter
// file), rewards them, normalises the rewards within each prompt's group, takes the reference
// policy's log-probs of the completions, and makes one policy-gradient update (one update per
// batch of rollouts: on-policy, so the PPO ratio is 1 and no old log-probs are needed). Every
// `evalEvery` steps the live adapter is validated; the best step's adapter is kept.
//
// Resume is exact, as in the SFT loop (src/train/loop.ts): a step depends only on the trainer's
// state (parameters, AdamW moments: in the checkpoint written after every step) and on pure
// functions of (seed, step): the step's prompts and the generation seed. A run killed anywhere
// continues after its last checkpointed step and writes the same log and adapter as a run that
// was never killed.
import { appendFileSync, existsSync } from "node:fs";
import type { LoraChoice, Model } from "../engine/index.js";
import { groupAdvantages, type PolicyLossType, type PolicySample } from "../engine/policy.js";
import type { Trainer } from "../engine/trainer.js";
import { Segment } from "../engine/train-batch.js";
import { removeTempFiles } from "../util/atomic-write.js";
import { keepJsonLines } from "../util/jsonl.js";
import { hashString } from "../util/random.js";
import type { RewardParts } from "./rl-rewards.js";

/** One prompt of a step: its tokens (ending where the policy starts writing) and its reward. */
export interface GrpoPrompt {
  tokens: Int32Array;
  reward: (text: string) => RewardParts;
}

export interface GrpoOptions {
  steps: number;
  /** G: completions per prompt. */
  group: number;
  /** KL coefficient to the reference trainer's policy (0: the reference is not used). */
  beta: number;
  lossType: PolicyLossType;
  /** Sampling settings (the inference ones); log-probs are taken at the same temperature. */
  temperature: number;
  topP: number;
  topK: number;
  maxTokens: number;
  /** Prompts per generate call. */
  parallel: number;
  seed: number;
  /** The prompts of step s (1-based): a pure function of s. */
  prompts: (step: number) => GrpoPrompt[];
  /** Validation score of the current policy (higher is better), given as a LoRA selection. */
  validate: (lora: readonly LoraChoice[]) => Promise<number>;
  evalEvery: number;
  checkpointPath: string;
  /** Where the best step's adapter is kept. */
  adapterPath: string;
  /** JSON lines, one per step and per validation (GrpoLogLine). */
  logPath: string;
  log?: (msg: string) => void;
}

export type GrpoLogLine =
  | {
      type: "step";
      step: number;
      /** Means over all rollouts of the step. */
      reward: number;
      hitRate: number;
      validRate: number;
      formatRate: number;
      /** Mean generated tokens per rollout. */
      length: number;
      /** Prompts whose group had different rewards (the others give no policy gradient and are left out). */
      groupsUsed: number;
      /** Of the policy step (null when no group was used and nothing was updated). */
      loss: number | null;
      /** To the reference policy; null when nothing was updated or there is none (beta 0). */
      kl: number | null;
      entropy: number | null;
      seconds: number;
    }
  | { type: "valid"; step: number; hitRatio: number; best: boolean };

interface GrpoState {
  step: number;
  best: number;
  bestStep: number;
}

/** The generation seed of a step: different for every step, the same on a resumed run. */
export function stepSeed(seed: number, step: number): number {
  return (hashString(`grpo ${seed} ${step}`) >>> 0) % 2 ** 31;
}

/**
 * Runs (or resumes) GRPO. `trainer` holds the policy (already set to the starting adapter on a
 * fresh run); `reference` the fixed reference policy (the starting adapter), used when beta > 0.
 * Returns the best validation score and its step (0 = the starting adapter).
 */
export async function runGrpo(
  model: Model,
  trainer: Trainer,
  reference: Trainer | null,
  o: GrpoOptions,
): Promise<{ best: number; bestStep: number }> {
  const log = o.log ?? (() => {});
  const line = (l: GrpoLogLine) => appendFileSync(o.logPath, JSON.stringify(l) + "\n");
  const live = await trainer.liveAdapter();
  const lora = [{ adapter: live, scale: 1 }];
  // The reference policy scores the rollouts only for a KL penalty; without one no KL is measured.
  const klReference = o.beta > 0 ? reference : null;
  // The trainer writes its files whole or not at all (temp file, fsync, rename).
  const saveBest = () => trainer.saveAdapter(o.adapterPath);
  const checkpoint = (st: GrpoState) => trainer.saveCheckpoint(o.checkpointPath, JSON.stringify(st));

  // A process killed while writing one of these files left its temp file beside it.
  for (const p of [o.checkpointPath, o.adapterPath, o.logPath]) removeTempFiles(p);
  let st: GrpoState;
  if (existsSync(o.checkpointPath)) {
    st = JSON.parse(await trainer.loadCheckpoint(o.checkpointPath)) as GrpoState;
    keepJsonLines<GrpoLogLine>(o.logPath, (l) => l.step <= st.step);
    log(
      `[rl] continuing after step ${st.step} (best validation HitRatio@1 ${st.best.toFixed(3)} at step ${st.bestStep})`,
    );
  } else {
    keepJsonLines<GrpoLogLine>(o.logPath, () => false);
    const v0 = await o.validate(lora);
    line({ type: "valid", step: 0, hitRatio: v0, best: true });
    log(`[rl] step 0 (the SFT adapter): validation HitRatio@1 ${v0.toFixed(3)}`);
    await saveBest();
    st = { step: 0, best: v0, bestStep: 0 };
    await checkpoint(st);
  }

  for (let step = st.step + 1; step <= o.steps; step++) {
    const t0 = performance.now();
    const prompts = o.prompts(step);
    const rolloutPrompts = prompts.flatMap((p) => Array.from({ length: o.group }, () => p.tokens));
    const outs = await model.generate(rolloutPrompts, {
      maxTokens: o.maxTokens,
      temperature: o.temperature,
      topP: o.topP,
      topK: o.topK,
      seed: stepSeed(o.seed, step),
      parallel: o.parallel,
      lora,
    });
    const parts = outs.map((g, i) => prompts[Math.floor(i / o.group)]!.reward(g.text));
    const advantages = groupAdvantages(
      parts.map((p) => p.reward),
      o.group,
    );
    // Groups whose rewards are all equal have advantages 0: no policy gradient, left out.
    const samples: PolicySample[] = [];
    let groupsUsed = 0,
      completionTokens = 0;
    for (let g = 0; g < prompts.length; g++) {
      const idx = Array.from({ length: o.group }, (_, k) => g * o.group + k);
      if (idx.every((i) => advantages[i] === 0)) continue;
      groupsUsed++;
      for (const i of idx) {
        const p = rolloutPrompts[i]!;
        const gen = outs[i]!;
        // The end of sequence is one of the policy's choices: it is trained like any token.
        const completion = gen.finishReason === "eos" ? [...gen.tokens, model.info.eos] : [...gen.tokens];
        completionTokens += completion.length;
        const tokens = Int32Array.from([...p, ...completion]);
        const segments = Uint8Array.from(tokens, (_, j) => (j < p.length ? Segment.prompt : Segment.reasoning));
        samples.push({ tokens, segments, advantage: advantages[i]! });
      }
    }
    const pol = { temperature: o.temperature, lossType: o.lossType, maxTokens: o.maxTokens + 1 };
    let stats: { loss: number; kl: number; entropy: number } | null = null;
    // Nothing to learn when every used completion is empty (the policy step would refuse it).
    if (completionTokens > 0) {
      if (klReference) {
        const ref = await klReference.evaluatePolicy(samples, pol);
        samples.forEach((s, i) => (s.refLogprobs = ref.logprobs[i]!));
      }
      stats = await trainer.policyStep(samples, { ...pol, beta: klReference ? o.beta : 0 });
    }
    const mean = (f: (p: RewardParts) => number) => parts.reduce((a, p) => a + f(p), 0) / parts.length;
    const entry: GrpoLogLine = {
      type: "step",
      step,
      reward: mean((p) => p.reward),
      hitRate: mean((p) => +p.hit),
      validRate: mean((p) => +p.valid),
      formatRate: mean((p) => +p.format),
      length: outs.reduce((a, g) => a + g.tokens.length, 0) / outs.length,
      groupsUsed,
      loss: stats?.loss ?? null,
      kl: klReference ? (stats?.kl ?? null) : null,
      entropy: stats?.entropy ?? null,
      seconds: (performance.now() - t0) / 1000,
    };
    line(entry);
    log(
      `[rl] step ${step}/${o.steps}: reward ${entry.reward.toFixed(3)}  hit ${entry.hitRate.toFixed(3)}  valid ${entry.validRate.toFixed(3)}${entry.kl === null ? "" : `  KL ${entry.kl.toFixed(4)}`}  groups ${groupsUsed}/${prompts.length}`,
    );
    if (step % o.evalEvery === 0 || step === o.steps) {
      const v = await o.validate(lora);
      const better = v > st.best;
      if (better) {
        await saveBest();
        st = { ...st, best: v, bestStep: step };
      }
      line({ type: "valid", step, hitRatio: v, best: better });
      log(`[rl] step ${step}: validation HitRatio@1 ${v.toFixed(3)}${better ? " (best)" : ""}`);
    }
    st = { ...st, step };
    await checkpoint(st);
  }
  return { best: st.best, bestStep: st.bestStep };
}
