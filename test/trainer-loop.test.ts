// Pure pieces of training: learning-rate schedules, the seeded epoch order, SFT JSON-lines parsing
// and the loop's resume bookkeeping (with a scripted trainer, so no model is needed).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { epochOrder, runTrainingLoop, stepsPerEpoch, type LoopTrainer } from "../src/train/loop.js";
import type { TokenizedSample } from "../src/engine/train-batch.js";
import { learningRate } from "../src/engine/schedule.js";
import { parseSftJsonl } from "../src/train/sft-data.js";

describe("learningRate", () => {
  const base = { lr: 1e-3, warmupSteps: 4, totalSteps: 14, minLrRatio: 0.1 };
  it("warms up linearly to the peak", () => {
    expect([0, 1, 2, 3].map((s) => learningRate(s, { ...base, schedule: "cosine" }))).toEqual([
      2.5e-4, 5e-4, 7.5e-4, 1e-3,
    ]);
  });
  it("cosine goes from the peak to the floor at totalSteps, halfway at the midpoint", () => {
    const o = { ...base, schedule: "cosine" as const };
    expect(learningRate(4, o)).toBeCloseTo(1e-3, 12);
    expect(learningRate(9, o)).toBeCloseTo(1e-4 + 0.5 * 9e-4, 12);
    expect(learningRate(14, o)).toBeCloseTo(1e-4, 12);
    expect(learningRate(100, o)).toBeCloseTo(1e-4, 12);
  });
  it("linear decays in equal steps; constant stays at the peak", () => {
    const o = { ...base, schedule: "linear" as const };
    expect(learningRate(9, o) - learningRate(10, o)).toBeCloseTo(learningRate(10, o) - learningRate(11, o), 12);
    expect(learningRate(50, { ...base, schedule: "constant" })).toBe(1e-3);
  });
});

describe("epochOrder", () => {
  it("is a permutation, the same for the same seed and epoch, different across epochs", () => {
    const a = epochOrder(50, 7, 0);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(epochOrder(50, 7, 0)).toEqual(a);
    expect(epochOrder(50, 7, 1)).not.toEqual(a);
    expect(epochOrder(50, 8, 0)).not.toEqual(a);
  });
  it("counts steps per epoch with a partial last batch", () => {
    expect(stepsPerEpoch(10, 3)).toBe(4);
    expect(stepsPerEpoch(9, 3)).toBe(3);
  });
});

describe("parseSftJsonl", () => {
  it("reads records, defaults a missing reasoning to empty, and names the bad line", () => {
    const rows = parseSftJsonl(
      '{"prompt":"p","reasoning":"r","recommendation":"x"}\n\n{"prompt":"q","recommendation":"y"}\n',
      "f.jsonl",
    );
    expect(rows).toEqual([
      { prompt: "p", reasoning: "r", recommendation: "x" },
      { prompt: "q", reasoning: "", recommendation: "y" },
    ]);
    expect(() => parseSftJsonl('{"prompt":"p","recommendation":"x"}\nnot json', "f.jsonl")).toThrow(
      /f\.jsonl:2: not valid JSON/,
    );
    expect(() => parseSftJsonl('{"prompt":"p","recommendation":""}', "f.jsonl")).toThrow(/f\.jsonl:1: recommendation/);
  });
});

/** A trainer whose "loss" is a pure function of the step and the sample ids, with a state file. */
class ScriptedTrainer implements LoopTrainer {
  steps = 0;
  async step(samples: readonly TokenizedSample[]) {
    this.steps++;
    const ids = samples.map((s) => s.tokens[0]!);
    return {
      loss: this.steps * 1000 + ids.reduce((a, b) => a * 31 + b, 0),
      lossReasoning: 0,
      lossRecommendation: 0,
      tokens: ids.length,
      gradNorm: 1,
      lr: 1,
    };
  }
  async saveCheckpoint(path: string, state: string) {
    writeFileSync(path, JSON.stringify({ steps: this.steps, state }));
  }
  async loadCheckpoint(path: string) {
    const c = JSON.parse(readFileSync(path, "utf8")) as { steps: number; state: string };
    this.steps = c.steps;
    return c.state;
  }
}

describe("runTrainingLoop", () => {
  const samples = Array.from({ length: 7 }, (_, i): TokenizedSample => ({
    tokens: Int32Array.of(i),
    segments: Uint8Array.of(2),
  }));
  it("visits every sample once per epoch and resumes exactly where a stopped run left off", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-loop-"));
    try {
      const opts = { epochs: 3, batchSize: 3, seed: 5, alpha: 0.7, beta: 0.3, checkpointEvery: 1 };
      const full = await runTrainingLoop(new ScriptedTrainer(), samples, { ...opts, logPath: join(dir, "a.jsonl") });
      expect(full.length).toBe(9);
      const ckpt = join(dir, "b.ckpt");
      const first = await runTrainingLoop(new ScriptedTrainer(), samples, {
        ...opts,
        checkpointPath: ckpt,
        logPath: join(dir, "b.jsonl"),
        maxSteps: 4,
      });
      expect(first.length).toBe(4);
      const rest = await runTrainingLoop(new ScriptedTrainer(), samples, {
        ...opts,
        checkpointPath: ckpt,
        logPath: join(dir, "b.jsonl"),
        resume: true,
      });
      expect([...first, ...rest].map((l) => l.loss)).toEqual(full.map((l) => l.loss));
      const log = readFileSync(join(dir, "b.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { step: number });
      expect(log.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      await expect(
        runTrainingLoop(new ScriptedTrainer(), samples.slice(1), { ...opts, checkpointPath: ckpt, resume: true }),
      ).rejects.toThrow(/same data and seed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("checkpoints an epoch's end after onEpochEnd, with the caller's state, and repeats a killed epoch end", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-loop-"));
    try {
      const ckpt = join(dir, "c.ckpt");
      // Caller state: the sum of the losses seen so far, as a running epoch mean would keep it.
      const run = (kill: boolean, trace: string[]) => {
        let sum = 0;
        let restored: unknown = "none";
        const p = runTrainingLoop(new ScriptedTrainer(), samples, {
          epochs: 2,
          batchSize: 3,
          seed: 9,
          alpha: 1,
          beta: 1,
          checkpointPath: ckpt,
          checkpointEvery: 100,
          resume: true,
          checkpointState: () => ({ sum }),
          onResume: (st, at) => {
            restored = st;
            sum = (st as { sum: number }).sum;
            trace.push(`resume e${at.epoch} b${at.batch} s${at.steps}`);
          },
          onStep: (l) => void (sum += l.loss),
          onEpochEnd: async (e) => {
            trace.push(`end ${e} sum ${sum}`);
            if (kill && e === 1) throw new Error("killed inside the epoch end");
          },
        });
        return p.then((logs) => ({ logs, sum, restored }));
      };
      const ref: string[] = [];
      const full = await run(false, ref);
      rmSync(ckpt);
      const killed: string[] = [];
      await expect(run(true, killed)).rejects.toThrow(/killed/);
      const resumed: string[] = [];
      const rest = await run(false, resumed);
      // Epoch 0 ended and was checkpointed after its end ran; the killed end of epoch 1 runs again
      // from the end of epoch 0, with the caller's sum restored.
      expect(resumed[0]).toBe("resume e1 b0 s3");
      expect(rest.restored).toEqual({ sum: Number(ref[0]!.split(" sum ")[1]) });
      expect(resumed.slice(1)).toEqual(ref.slice(1));
      expect(rest.sum).toBe(full.sum);
      expect(killed).toEqual(ref);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects empty data and bad sizes", async () => {
    await expect(
      runTrainingLoop(new ScriptedTrainer(), [], { epochs: 1, batchSize: 2, seed: 0, alpha: 1, beta: 1 }),
    ).rejects.toThrow(/no training samples/);
    await expect(
      runTrainingLoop(new ScriptedTrainer(), samples, { epochs: 1, batchSize: 0, seed: 0, alpha: 1, beta: 1 }),
    ).rejects.toThrow(/batch size/);
  });
});
