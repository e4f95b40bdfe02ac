// Trainer files and runs on the tiny model: the saved adapter through llama.cpp's loader and our
// scorer, memorisation, full mode + saveModel/loadModel, checkpoints with exact resume (in
// process, and after SIGKILL of a child training process), and bad input.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { native, type NativeModel } from "../src/engine/bindings.js";
import { createTrainer } from "../src/engine/trainer.js";
import { runTrainingLoop } from "../src/train/loop.js";
import { Segment } from "../src/engine/train-batch.js";
import { packageRoot } from "../src/util/paths.js";
import { referenceLogits, trainingLogits } from "./support/dev.js";
import { tinyModelPath } from "./support/models.js";
import { randomSample as sample } from "./support/random.js";

const VOCAB = 32000;
let model: NativeModel;
let dir: string;

beforeAll(async () => {
  model = await native().loadModel(tinyModelPath(), { threads: 2 });
  dir = mkdtempSync(join(tmpdir(), "msr-trainer-io-"));
});
afterAll(() => {
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const data = [sample(1, 5, 6, 3), sample(2, 4, 0, 4), sample(3, 6, 4, 3), sample(4, 3, 5, 2)];

describe("adapter files", () => {
  it("saveAdapter writes a GGUF that llama.cpp loads; the scorer reproduces evaluate's loss with it", async () => {
    const t = createTrainer(model, { lora: { rank: 4, alpha: 16, seed: 2 }, optimizer: { lr: 1e-2 } });
    for (let i = 0; i < 3; i++) await t.step(data);
    const path = join(dir, "adapter.gguf");
    await t.saveAdapter(path);
    expect(readdirTmp(dir)).toEqual([]);
    const ev = await t.evaluate(data, { alpha: 0.7, beta: 0.3 });
    const adapter = await model.loadLora(path);
    const scorer = new (native().Scorer)(model, { contextSize: 64, sequences: 4, batchSize: 64 });
    const reqs = data.map((s) => {
      const cut = s.segments.findIndex((g) => g !== Segment.prompt);
      return { prompt: s.tokens.slice(0, cut), continuation: s.tokens.slice(cut) };
    });
    const scored = await scorer.score(reqs, { lora: [{ adapter, scale: 1 }] });
    const plain = await scorer.score(reqs);
    // Same weighting as the trainer: mean over samples of per-sample segment means.
    const terms = { rea: [] as number[], rec: [] as number[] };
    scored.forEach((r, i) => {
      const s = data[i]!;
      const cut = s.segments.findIndex((g) => g !== Segment.prompt);
      const seg = s.segments.slice(cut);
      for (const k of ["rea", "rec"] as const) {
        const code = k === "rea" ? Segment.reasoning : Segment.recommendation;
        const lps = Array.from(r.tokenLogprobs).filter((_, j) => seg[j] === code);
        if (lps.length) terms[k].push(-lps.reduce((a, b) => a + b, 0) / lps.length);
      }
    });
    const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
    const loss = 0.7 * mean(terms.rea) + 0.3 * mean(terms.rec);
    expect(Math.abs(loss - ev.loss)).toBeLessThan(2e-3 * ev.loss);
    // and the adapter is not a no-op
    expect(Math.abs(plain[0]!.logprob - scored[0]!.logprob)).toBeGreaterThan(1e-3);
    scorer.dispose();
    adapter.dispose();
    t.dispose();
  });
});

function readdirTmp(d: string): string[] {
  return readdirSync(d).filter((f) => f.includes(".tmp-"));
}

describe("learning", () => {
  it("full mode trains every weight; saveModel writes a GGUF that loadModel accepts with the same logits", async () => {
    const t = createTrainer(model, { mode: "full", optimizer: { lr: 1e-3 } });
    expect(t.paramNames()).toContain("token_embd.weight");
    expect(t.paramNames()).toContain("blk.1.attn_k.weight");
    const first = (await t.step(data)).loss;
    let last = first;
    for (let i = 0; i < 5; i++) last = (await t.step(data)).loss;
    expect(last).toBeLessThan(first);
    const path = join(dir, "full.gguf");
    await t.saveModel(path);
    const reloaded = await native().loadModel(path, { threads: 2 });
    const check = createTrainer(reloaded, { mode: "full" });
    const tokens = data[0]!.tokens;
    const a = await trainingLogits(t, tokens);
    const b = await referenceLogits(check, tokens); // llama_decode on the saved model
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-4 + 1e-3 * Math.abs(b[i]!));
    expect(reloaded.info().vocabSize).toBe(VOCAB);
    expect(reloaded.tokenize("hello world")).toEqual(model.tokenize("hello world"));
    check.dispose();
    reloaded.dispose();
    t.dispose();
  });

  it("a short LoRA run memorises a small set (loss at least halved)", async () => {
    // The tiny model's random output layer (std 0.02, n_embd 64) caps any logit near 1.3, too
    // little to memorise anything; a copy whose output_norm weights are 16 instead of 1 (made with
    // full mode + saveModel) has a usable logit range while still starting near the uniform loss
    // log(32000) = 10.4, and LoRA on the projections must do the rest.
    const full = createTrainer(model, { mode: "full" });
    full.setParam("output_norm.weight", new Float32Array(full.getParam("output_norm.weight").length).fill(16));
    const path = join(dir, "wide.gguf");
    await full.saveModel(path);
    full.dispose();
    const wide = await native().loadModel(path, { threads: 2 });
    const t = createTrainer(wide, { lora: { rank: 8, alpha: 32, seed: 1 }, optimizer: { lr: 3e-3 } });
    const set = [sample(70, 4, 3, 2), sample(71, 4, 3, 2)];
    const first = (await t.evaluate(set)).loss;
    for (let i = 0; i < 30; i++) await t.step(set);
    const last = (await t.evaluate(set)).loss;
    expect(first).toBeGreaterThan(10);
    expect(last).toBeLessThan(first / 2);
    t.dispose();
    wide.dispose();
  });
});

describe("checkpoints", () => {
  it("a resumed run continues exactly (parameters, AdamW moments and step restored)", async () => {
    const opts = {
      lora: { rank: 4, seed: 5 },
      optimizer: { lr: 5e-3, warmupSteps: 2, schedule: "cosine" as const, totalSteps: 6 },
    };
    const straight = createTrainer(model, opts);
    const want: number[] = [];
    for (let i = 0; i < 6; i++) want.push((await straight.step(data)).loss);
    straight.dispose();

    const a = createTrainer(model, opts);
    for (let i = 0; i < 3; i++) await a.step(data);
    const ckpt = join(dir, "run.ckpt");
    await a.saveCheckpoint(ckpt, "state-3");
    a.dispose();
    const b = createTrainer(model, { ...opts, lora: { rank: 4, seed: 999 } }); // other init: the checkpoint must overwrite it
    expect(await b.loadCheckpoint(ckpt)).toBe("state-3");
    expect(b.steps).toBe(3);
    const got: number[] = [];
    for (let i = 0; i < 3; i++) got.push((await b.step(data)).loss);
    expect(got).toEqual(want.slice(3));
    await expect(createTrainer(model, { lora: { rank: 2 } }).loadCheckpoint(ckpt)).rejects.toThrow(/rank/);
    b.dispose();
  });

  it("SIGKILL of a training process mid-run, then --resume: no corrupt file, same losses as an uninterrupted run", async () => {
    const child = await buildChild();
    const sft = join(dir, "sft.jsonl");
    const words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];
    writeFileSync(
      sft,
      words
        .map((w, i) =>
          JSON.stringify({
            prompt: `User liked ${w}. Next?`,
            reasoning: i % 3 ? `Because ${w} is similar to ${words[(i + 1) % 8]}.` : "",
            recommendation: words[(i + 1) % 8],
          }),
        )
        .join("\n") + "\n",
    );
    const base = {
      model: tinyModelPath(),
      data: sft,
      epochs: 6,
      batchSize: 2,
      seed: 3,
      checkpointEvery: 1,
      threads: 2,
    };
    const full = join(dir, "full-run");
    const killed = join(dir, "killed-run");
    mkdirSync(full);
    mkdirSync(killed);
    await runChild(child, { ...base, out: join(full, "a.gguf"), logPath: join(full, "log.jsonl") });
    const want = readLog(join(full, "log.jsonl"));
    expect(want.length).toBe(24);

    // Kill as soon as a few steps are logged (checkpoints are written after every step).
    await runChild(
      child,
      { ...base, out: join(killed, "a.gguf"), logPath: join(killed, "log.jsonl") },
      (log) => readLog(log).length >= 4,
    );
    expect(existsSync(join(killed, "a.gguf.ckpt"))).toBe(true);
    expect(readLog(join(killed, "log.jsonl")).length).toBeLessThan(24);
    await runChild(child, { ...base, out: join(killed, "a.gguf"), logPath: join(killed, "log.jsonl"), resume: true });
    const got = readLog(join(killed, "log.jsonl"));
    expect(got.map((l) => l.step)).toEqual(want.map((l) => l.step));
    expect(got.map((l) => l.loss)).toEqual(want.map((l) => l.loss));
    expect(readFileSync(join(killed, "a.gguf"))).toEqual(readFileSync(join(full, "a.gguf")));
  }, 120_000);
});

describe("bad input", () => {
  it("rejects out-of-range tokens, empty batches and over-long samples with clear errors", async () => {
    const t = createTrainer(model, { lora: { rank: 2 }, contextSize: 16 });
    const bad = sample(1, 3, 3, 3);
    bad.tokens[4] = VOCAB + 5;
    await expect(t.step([bad])).rejects.toThrow(/token id 32005 .* outside the model's vocabulary/);
    await expect(t.step([])).rejects.toThrow(/batch is empty/);
    await expect(t.step([sample(2, 10, 5, 5)])).rejects.toThrow(/20 tokens, more than the training context \(16\)/);
    expect(() => createTrainer(model, { lora: { targets: ["q", "nope" as "q"] } })).toThrow(
      /unknown LoRA target 'nope'/,
    );
    expect(t.steps).toBe(0);
    t.dispose();
  });

  it("a non-finite loss (absurd learning rate) stops with a clear error and the last checkpoint stays intact", async () => {
    const t = createTrainer(model, { lora: { rank: 4, seed: 1 }, optimizer: { lr: 1e30 } });
    const ckpt = join(dir, "bad.ckpt");
    const err = await runTrainingLoop(t, data, {
      epochs: 50,
      batchSize: 4,
      seed: 0,
      alpha: 0.7,
      beta: 0.3,
      checkpointPath: ckpt,
      checkpointEvery: 1,
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/not finite.*learning rate/);
    const good = t.steps;
    expect(good).toBeGreaterThan(0);
    const again = createTrainer(model, { lora: { rank: 4, seed: 1 } });
    const state = JSON.parse(await again.loadCheckpoint(ckpt)) as { epoch: number };
    expect(again.steps).toBe(good);
    expect(state.epoch).toBe(good);
    expect(readdirTmp(dir)).toEqual([]);
    again.dispose();
    t.dispose();
  });
});

// ---- child training process for the kill test ----

interface ChildOptions {
  model: string;
  data: string;
  out: string;
  logPath: string;
  epochs: number;
  batchSize: number;
  seed: number;
  checkpointEvery: number;
  threads: number;
  resume?: boolean;
}

/** Bundles a small script around src/train/run.ts so a plain `node` child can run it. */
async function buildChild(): Promise<string> {
  const out = join(packageRoot, ".cache", "test-bundles");
  mkdirSync(out, { recursive: true });
  const entry = join(out, "train-child.ts");
  writeFileSync(
    entry,
    `import { runTraining } from ${JSON.stringify(join(packageRoot, "src", "train", "run.ts"))};\n` +
      `import { TRAIN_DEFAULTS } from ${JSON.stringify(join(packageRoot, "src", "train", "options.ts"))};\n` +
      `await runTraining({ ...TRAIN_DEFAULTS, ...JSON.parse(process.argv[2]!) });\n`,
  );
  const { build } = await import("rolldown");
  const file = join(out, "train-child.mjs");
  await build({
    input: entry,
    platform: "node",
    external: [/node_modules/, /^node:/, "commander", "zod"],
    output: { file, format: "esm" },
    logLevel: "silent",
  });
  return file;
}

function runChild(file: string, opts: ChildOptions, killWhen?: (logPath: string) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [file, JSON.stringify(opts)], {
      stdio: ["ignore", "ignore", "pipe"],
      env: process.env,
    });
    let stderr = "";
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = killWhen
      ? setInterval(() => {
          if (existsSync(opts.logPath) && killWhen(opts.logPath)) p.kill("SIGKILL");
        }, 20)
      : undefined;
    p.on("exit", (code, signal) => {
      if (timer) clearInterval(timer);
      if (killWhen ? signal === "SIGKILL" : code === 0) resolve();
      else reject(new Error(`child exited with ${code ?? signal}: ${stderr}`));
    });
  });
}

function readLog(path: string): { step: number; loss: number }[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { step: number; loss: number }];
      } catch {
        return [];
      }
    });
}
