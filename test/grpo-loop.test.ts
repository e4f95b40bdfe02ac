// The GRPO loop (src/train/grpo.ts) on the tiny test model with a rule reward that varies between
// samples (so every group trains): it keeps the best validated step, and a run killed between a
// step's update and its checkpoint, resumed by new trainers from the checkpoint, ends with the
// same adapter bytes and the same log as the run that was never killed (the kill is a throw from
// the progress log, as test/pipeline.test.ts kills stages).
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type LoraChoice, type Model } from "../src/engine/index.js";
import { createTrainer, type Trainer } from "../src/engine/trainer.js";
import { runGrpo, stepSeed, type GrpoLogLine, type GrpoOptions } from "../src/train/grpo.js";
import { tinyModelPath } from "./support/models.js";

let model: Model;
let dir: string;
beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 2 });
  dir = mkdtempSync(join(tmpdir(), "msr-grpo-"));
});
afterAll(() => {
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const trainerOptions = { lora: { rank: 4, alpha: 8, seed: 5 }, optimizer: { lr: 5e-3 } };

function options(run: string, log?: (m: string) => void): GrpoOptions {
  const texts = ["Candidates: Amelie | Titanic. The user will watch:", "History: Alien. Next:"];
  const prompts = texts.map((t) => model.tokenize(t));
  const probe = { prompt: prompts[0]!, continuation: model.tokenize(" Amelie", { addBos: false }) };
  const scorer = model.createScorer({ contextSize: 256, sequences: 1 });
  return {
    steps: 4,
    group: 4,
    beta: 0.04,
    lossType: "sequence",
    temperature: 1,
    topP: 1,
    topK: 0,
    maxTokens: 8,
    parallel: 8,
    seed: 3,
    // A reward that differs between samples: the share of vowels in the text.
    prompts: () =>
      prompts.map((tokens) => ({
        tokens,
        reward: (text: string) => {
          const r = (text.match(/[aeiou]/gi)?.length ?? 0) / Math.max(1, text.length);
          return { reward: r, hit: r > 0.3, valid: true, format: true };
        },
      })),
    validate: async (lora: readonly LoraChoice[]) => (await scorer.score([probe], { lora }))[0]!.logprob,
    evalEvery: 2,
    checkpointPath: join(dir, `${run}.ckpt`),
    adapterPath: join(dir, `${run}.gguf`),
    logPath: join(dir, `${run}.jsonl`),
    ...(log ? { log } : {}),
  };
}

async function run(name: string, log?: (m: string) => void) {
  const policy: Trainer = createTrainer(model, trainerOptions);
  const reference: Trainer = createTrainer(model, trainerOptions);
  try {
    return await runGrpo(model, policy, reference, options(name, log));
  } finally {
    policy.dispose();
    reference.dispose();
  }
}

const lines = (name: string) =>
  readFileSync(join(dir, `${name}.jsonl`), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as GrpoLogLine)
    .map((l) => (l.type === "step" ? { ...l, seconds: 0 } : l));

describe("GRPO loop", () => {
  it("updates the policy every step, keeps the best validated step, and resumes a killed run exactly", async () => {
    const full = await run("full");
    const log = lines("full");
    const steps = log.filter((l) => l.type === "step");
    expect(steps.map((l) => l.step)).toEqual([1, 2, 3, 4]);
    for (const s of steps) {
      expect(s.groupsUsed).toBe(2);
      expect(s.loss).not.toBeNull();
      expect(s.kl).toBeGreaterThanOrEqual(0);
    }
    expect(steps[3]!.kl).toBeGreaterThan(0); // the policy moved away from the reference
    const valid = log.filter((l) => l.type === "valid");
    expect(valid.map((l) => l.step)).toEqual([0, 2, 4]);
    const best = valid.reduce((b, l) => (l.hitRatio > b.hitRatio ? l : b));
    expect(full).toEqual({ best: best.hitRatio, bestStep: best.step });

    // Killed after step 3's update, before its checkpoint: step 2's is on disk.
    await expect(
      run("killed", (m) => {
        if (m.startsWith("[rl] step 3/4")) throw new Error("killed");
      }),
    ).rejects.toThrow(/killed/);
    expect(existsSync(join(dir, "killed.ckpt"))).toBe(true);
    const said: string[] = [];
    expect(await run("killed", (m) => said.push(m))).toEqual(full);
    expect(said[0]).toMatch(/continuing after step 2/);
    expect(lines("killed")).toEqual(log);
    expect(readFileSync(join(dir, "killed.gguf")).equals(readFileSync(join(dir, "full.gguf")))).toBe(true);
  }, 300_000);

  it("trains without a reference policy when beta is 0, and logs no KL", async () => {
    const policy = createTrainer(model, trainerOptions);
    try {
      const before = policy.paramNames().map((n) => policy.getParam(n).slice());
      await runGrpo(model, policy, null, { ...options("noref"), beta: 0, steps: 2 });
      const steps = lines("noref").filter((l) => l.type === "step");
      expect(steps.map((l) => l.step)).toEqual([1, 2]);
      for (const s of steps) {
        expect(s.loss).not.toBeNull();
        expect(s.kl).toBeNull();
      }
      const moved = policy.paramNames().some((n, i) => policy.getParam(n).some((v, j) => v !== before[i]![j]));
      expect(moved).toBe(true);
    } finally {
      policy.dispose();
    }
  }, 300_000);

  it("seeds each step's generation differently and the same on every run", () => {
    expect(stepSeed(3, 1)).toBe(stepSeed(3, 1));
    expect(new Set([1, 2, 3, 4].map((s) => stepSeed(3, s))).size).toBe(4);
  });
});
