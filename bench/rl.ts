// One GRPO step of MSR-Rec's reinforcement refinement, split into its three engine parts, on the
// tiny and small presets: real prompts (synthetic-catalog users' user-side prompts, ~300 tokens),
// G completions per prompt sampled at the inference settings through the trainer's live adapter,
//   - generation: all prompts × G in one batched call vs one sequence at a time (goal ≥ 3x);
//   - scoring: the completions' reference log-probs (base model) and old log-probs (live adapter),
//     as a GRPO loop with a KL penalty and more than one update per batch needs them;
//   - training: one policy step (group-normalised advantages of random 0/1 rewards, KL, clipping)
//     against one SFT step on the same tokens;
// tokens/s of each (generation: tokens generated; scoring and training: every token of the
// sequences, prompt included, since each runs a forward over all of them) and each part's share
// of the step's time.
import { loadModel, type Model } from "../src/engine/index.js";
import { createTrainer } from "../src/engine/trainer.js";
import { groupAdvantages, type PolicySample } from "../src/engine/policy.js";
import { Segment } from "../src/engine/train-batch.js";
import { mulberry32 } from "../src/util/random.js";
import { benchUsers } from "./fusion.js";
import { medianMs, newResult, type BenchResult, type FlagValues, type SuiteFlags } from "./lib.js";
import { benchModelPath, presetNamed } from "./support/models.js";

export const description =
  "one GRPO step (tiny, small): batched vs one-at-a-time generation, reference/old scoring, policy vs SFT step";
export const flags = {
  presets: { kind: "list", default: ["tiny", "small"], help: "init-model presets to measure" },
  prompts: { kind: "number", default: 4, help: "prompts (users) per step" },
  group: { kind: "number", default: 8, help: "G, completions sampled per prompt" },
  "max-tokens": { kind: "number", default: 64, help: "new tokens per completion at most" },
  threads: { kind: "number", help: "CPU threads of the model (default: one per allowed CPU)" },
  serial: {
    kind: "number",
    default: 8,
    help: "completions generated one sequence at a time for the baseline (a subset: it is slow)",
  },
} as const satisfies SuiteFlags;

type Flags = FlagValues<typeof flags>;

/** The inference settings (docs/method.md): temperature 0.7, top-k 40, top-p 0.95. */
const SAMPLING = { temperature: 0.7, topK: 40, topP: 0.95 } as const;

async function measurePreset(model: Model, preset: string, f: Flags, res: BenchResult): Promise<void> {
  const users = await benchUsers(f.prompts);
  const prompts = users.map((u) => {
    const p = u.kase.prompts.user;
    return typeof p === "string" ? model.tokenize(p) : p;
  });
  const trainer = createTrainer(model, {
    lora: { rank: 8, alpha: 32 },
    microBatchTokens: 1024,
    optimizer: { lr: 1e-5 },
  });
  const live = await trainer.liveAdapter();
  const lora = [{ adapter: live }];
  const maxTokens = f["max-tokens"];
  const rolloutPrompts = prompts.flatMap((p) => Array.from({ length: f.group }, () => p));
  await model.generate(rolloutPrompts.slice(0, 2), { maxTokens: 4 }); // pages the weights in

  // Generation: every prompt × G in one call (prompt i sampled with seed + i), then a subset one
  // sequence at a time with the same seeds.
  let t0 = performance.now();
  const rollouts = await model.generate(rolloutPrompts, {
    ...SAMPLING,
    maxTokens,
    seed: 1,
    parallel: rolloutPrompts.length,
    lora,
  });
  const batchedS = (performance.now() - t0) / 1000;
  const generated = rollouts.reduce((n, r) => n + r.tokens.length, 0);
  const serial = Math.min(f.serial, rolloutPrompts.length);
  t0 = performance.now();
  const one = await model.generate(rolloutPrompts.slice(0, serial), {
    ...SAMPLING,
    maxTokens,
    seed: 1,
    parallel: 1,
    lora,
  });
  const serialS = (performance.now() - t0) / 1000;
  const serialTokens = one.reduce((n, r) => n + r.tokens.length, 0);

  // Scoring: reference (no adapter) and old (live adapter) log-probs of every completion.
  const requests = rollouts.map((r, i) => ({ prompt: rolloutPrompts[i]!, continuation: r.tokens }));
  const scorer = model.createScorer({ contextSize: 4096, sequences: 16 });
  const seqTokens = requests.reduce((n, r) => n + r.prompt.length + r.continuation.length, 0);
  let ref: Float32Array[] = [];
  let old: Float32Array[] = [];
  const scoreMs = await medianMs(
    async () => {
      ref = (await scorer.score(requests)).map((r) => r.tokenLogprobs);
      old = (await scorer.score(requests, { lora })).map((r) => r.tokenLogprobs);
    },
    2,
    1,
  );

  // Training: a policy step with a KL penalty and clipping, and an SFT step on the same tokens.
  const rand = mulberry32(7);
  const advantages = groupAdvantages(
    rollouts.map(() => (rand() < 0.4 ? 1 : 0)),
    f.group,
  );
  const samples: PolicySample[] = requests.map((r, i) => {
    const tokens = Int32Array.from([...r.prompt, ...r.continuation]);
    const segments = Uint8Array.from(tokens, (_, j) => (j < r.prompt.length ? Segment.prompt : Segment.reasoning));
    return { tokens, segments, advantage: advantages[i]!, refLogprobs: ref[i]!, oldLogprobs: old[i]! };
  });
  const policyMs = await medianMs(() => trainer.policyStep(samples, { beta: 0.04, epsilon: 0.2 }), 3, 1);
  const sftMs = await medianMs(
    () => trainer.step(samples.map((s) => ({ tokens: s.tokens, segments: s.segments }))),
    3,
    1,
  );

  const stepS = batchedS + scoreMs / 1000 + policyMs / 1000;
  const p = `${preset}: ${f.prompts} prompts x G=${f.group}, ${maxTokens} new tokens`;
  res.results.push(
    {
      name: `${p}: mean prompt length`,
      value: prompts.reduce((n, x) => n + x.length, 0) / prompts.length,
      unit: "tokens",
    },
    {
      name: `${p}: generation, batched (${rolloutPrompts.length} parallel)`,
      value: generated / batchedS,
      unit: "tokens/s",
    },
    {
      name: `${p}: generation, one sequence at a time (${serial} of them)`,
      value: serialTokens / serialS,
      unit: "tokens/s",
    },
    { name: `${p}: scoring, reference + old log-probs`, value: (2 * seqTokens) / (scoreMs / 1000), unit: "tokens/s" },
    { name: `${p}: training, policy step`, value: seqTokens / (policyMs / 1000), unit: "tokens/s" },
    { name: `${p}: training, SFT step on the same tokens`, value: seqTokens / (sftMs / 1000), unit: "tokens/s" },
    { name: `${p}: one GRPO step (batched generation + scoring + policy step)`, value: stepS, unit: "s" },
  );
  res.ratios[`${preset}: batched / one-at-a-time generation`] = generated / batchedS / (serialTokens / serialS);
  res.ratios[`${preset}: policy step / SFT step time`] = policyMs / sftMs;
  res.ratios[`${preset}: generation share of the GRPO step`] = batchedS / stepS;
  res.ratios[`${preset}: scoring share of the GRPO step`] = scoreMs / 1000 / stepS;
  res.ratios[`${preset}: training share of the GRPO step`] = policyMs / 1000 / stepS;
  scorer.dispose();
  live.dispose();
  trainer.dispose();
}

export async function run(f: Flags): Promise<BenchResult> {
  const res = newResult("rl");
  for (const name of f.presets) {
    const preset = presetNamed(name);
    const model = await loadModel(benchModelPath(preset), f.threads ? { threads: f.threads } : {});
    await measurePreset(model, preset, f, res);
    model.dispose();
  }
  return res;
}
