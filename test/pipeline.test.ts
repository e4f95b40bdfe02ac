// The whole pipeline on the `tiny` preset (a few synthetic users, the tiny model): every stage
// runs, the results are consistent with an independent recomputation (fusion decisions, one
// PPL re-scored alone), a second run skips everything, a run killed inside the infer stage
// resumes to the same results, and one killed inside base or train continues from its checkpoints. Skips, saying why, when the native addon is not built.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { presetConfig, type RunConfig } from "../src/pipeline/config.js";
import { runPipeline, type RunSummary } from "../src/pipeline/run.js";
import { STAGES, markerPath } from "../src/pipeline/stages.js";
import { runLayout } from "../src/run/layout.js";
import { parseJsonLines } from "../src/util/jsonl.js";
import type { MetricsFile, PredictionRecord } from "../src/run/results.js";
import { fuseByPerplexity, fuseEq3 } from "../src/infer/fusion.js";
import { readInferRecords } from "../src/infer/records.js";
import { tokenizeSample } from "../src/train/samples.js";
import { Segment } from "../src/engine/train-batch.js";
import { loadModel } from "../src/engine/index.js";
import { addonMissing } from "./support/addon.js";

const missing = addonMissing("pipeline end-to-end tests");

describe.skipIf(missing !== null)("pipeline end to end (tiny)", () => {
  let dir: string;
  let c: RunConfig;
  let first: RunSummary;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "msr-pipeline-"));
    c = presetConfig("tiny", { runDir: dir, model: { threads: 2 } });
    first = await runPipeline(c, { quiet: true });
  }, 600_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs every stage and writes the run folder", () => {
    expect(first.ran).toEqual([...STAGES]);
    const L = runLayout(dir);
    for (const f of [
      L.metrics,
      L.results,
      L.predictions,
      L.report,
      L.trainLog,
      L.adapter("msr"),
      L.adapter("wo-reason"),
      L.baseModel,
    ])
      expect(existsSync(f), f).toBe(true);
    for (const s of STAGES) expect(existsSync(markerPath(dir, s)), s).toBe(true);
  });

  it("reports every row with consistent counts", () => {
    const m = first.metrics!;
    const names = m.rows.map((r) => r.name);
    for (const n of [
      "Random",
      "Popularity",
      "Markov (first-order)",
      "Teacher zero-shot (rules-v1)",
      "TALLRec",
      "Base model (zero-shot)",
      "MSR-Rec",
      "MSR-Rec (Eq. 3 literal)",
      "MSR-Rec (user)",
      "MSR-Rec (item)",
      "MSR-Rec (full)",
      "MSR-Rec w/o reason",
      "MSR-Rec (constrained)",
    ])
      expect(names).toContain(n);
    for (const r of m.rows) {
      expect(r.users).toBe(c.infer.users);
      expect(r.hitRatio).toBeCloseTo(r.hits / r.users, 12);
      expect(r.validRatio).toBeCloseTo(r.valid / r.users, 12);
      expect(r.hits).toBeLessThanOrEqual(r.valid);
    }
  });

  it("fuses exactly as Eq. 3 says, on the recorded sides", () => {
    const L = runLayout(dir);
    const records = readInferRecords(L.inferOutputs("msr"));
    expect(records).toHaveLength(c.infer.users);
    for (const r of records) {
      const side = (s: typeof r.userSide) => ({
        choice: s!.choiceIndex >= 0 ? r.candidateIds[s!.choiceIndex]! : null,
        ppl: s!.ppl ?? Number.NaN,
      });
      expect(r.fused).toEqual(fuseByPerplexity(side(r.userSide), side(r.itemSide)));
    }
    // Eq. 3 as written: the PPLs of the whole outputs, no rule for invalid sides.
    for (const r of records) {
      const side = (s: typeof r.userSide) => ({
        choice: s!.choiceIndex >= 0 ? r.candidateIds[s!.choiceIndex]! : null,
        ppl: s!.pplOutput ?? Number.NaN,
      });
      expect(r.fusedEq3).toEqual(fuseEq3(side(r.userSide), side(r.itemSide)));
      expect(r.userSide!.pplOutput).toBeGreaterThan(0);
    }
    // The constrained row fuses the grammar-constrained answers with the same PPLs.
    for (const r of records) {
      const side = (s: typeof r.userSide) => ({
        choice: (s!.constrainedIndex ?? -1) >= 0 ? r.candidateIds[s!.constrainedIndex!]! : null,
        ppl: s!.ppl ?? Number.NaN,
      });
      expect(r.constrained).toEqual(fuseByPerplexity(side(r.userSide), side(r.itemSide)));
    }
    const preds = parseJsonLines<PredictionRecord>(readFileSync(L.predictions, "utf8"), L.predictions);
    const msr = first.metrics!.rows.find((x) => x.name === "MSR-Rec")!;
    expect(preds.filter((p) => p.hit).length).toBe(msr.hits);
  });

  it("the PPL of a side (from generation's log-probs) is the generated reasoning tokens scored alone after the trained prefix", async () => {
    const L = runLayout(dir);
    const records = readInferRecords(L.inferOutputs("msr")).filter((x) => x.userSide!.reasoning.length > 0);
    expect(records.length).toBeGreaterThan(0);
    const model = await loadModel(L.baseModel, { threads: 2 });
    try {
      const lora = [{ adapter: await model.loadLora(L.adapter("msr")) }];
      const scorer = model.createScorer({ contextSize: c.model.contextSize, sequences: 1 });
      // The prompt text from the template file and the dataset files, not from the pipeline's helpers.
      const lines = (f: string) =>
        readFileSync(join(dir, "dataset", f), "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      const users = new Map(
        (
          lines("users.jsonl") as unknown as Array<{
            user: string;
            train: string[];
            valid: string;
            candidates: { test: string[] };
          }>
        ).map((u) => [u.user, u]),
      );
      const title = new Map(lines("items.jsonl").map((i) => [String(i.id), String(i.title)]));
      // Trailing whitespace dropped, as the template loader documents.
      const template = readFileSync(join(process.cwd(), "src", "prompts", "templates", "user.txt"), "utf8").replace(
        /\s+$/,
        "",
      );
      const quoted = (ids: string[]) => ids.map((id) => `"${title.get(id)}"`).join(", ");
      const tok = { tokenize: (t: string, o?: { addBos?: boolean }) => model.tokenize(t, o), eosToken: model.info.eos };
      for (const r of records.slice(0, 3)) {
        const u = users.get(r.user)!;
        const text = template
          .replace("[dataset]", c.dataset.domain)
          .replace("[history]", quoted([...u.train, u.valid].slice(-c.dataset.historyLength)))
          .replace("[candidates]", quoted(u.candidates.test));
        // The trained prefix: the trainer's own sample tokens up to the first token that carries loss.
        const sample = tokenizeSample(tok, { prompt: text, reasoning: "Step 4 - Summary: x.", recommendation: "y" });
        const prefix = sample.tokens.slice(
          0,
          sample.segments.findIndex((g) => g !== Segment.prompt),
        );
        // The reasoning's tokens among the generated ones, by piece lengths: every token that
        // overlaps the reasoning's characters.
        const s = r.userSide!;
        const ids = Int32Array.from(s.tokenIds!);
        const pieces = model.tokenPieces(ids);
        // SentencePiece's detokenizer drops the word-initial space of the first piece.
        const joined = pieces.join("");
        const shift = joined.length - s.text.length;
        expect(shift === 0 || (shift === 1 && joined[0] === " ")).toBe(true);
        expect(joined.slice(shift)).toBe(s.text);
        const start = s.reasoningStart + shift,
          end = s.reasoningStart + shift + s.reasoning.length;
        let pos = 0,
          a = -1,
          b = 0;
        pieces.forEach((p, k) => {
          if (pos + p.length > start && pos < end) {
            if (a < 0) a = k;
            b = k + 1;
          }
          pos += p.length;
        });
        const [alone] = await scorer.score(
          [{ prompt: Int32Array.from([...prefix, ...ids.slice(0, a)]), continuation: ids.slice(a, b) }],
          { lora },
        );
        // Invariant numerics: generation's log-probs are the scorer's bit for bit, so the PPLs differ
        // at most in the last bits of exp() (taken in JS from generation, natively by the scorer).
        expect(Math.abs(alone!.ppl - s.ppl), r.user).toBeLessThanOrEqual(1e-14 * s.ppl);
        // Eq. 3 as written: every generated token (reasoning and answer) after the same prefix.
        const [whole] = await scorer.score([{ prompt: prefix, continuation: ids }], { lora });
        expect(Math.abs(whole!.ppl - s.pplOutput!), r.user).toBeLessThanOrEqual(1e-14 * s.pplOutput!);
      }
      scorer.dispose();
    } finally {
      model.dispose();
    }
  });

  it("keeps each variant's epoch by validation HitRatio@1, ties by recommendation NLL, and bounds teacher calls at τ + 3", () => {
    const L = runLayout(dir);
    const epochs = parseJsonLines<{
      type: string;
      variant: string;
      epoch: number;
      validHitRatio: number;
      validRecNll: number;
      best: boolean;
    }>(readFileSync(L.trainLog, "utf8"), L.trainLog).filter((l) => l.type === "epoch");
    expect(epochs.length).toBeGreaterThan(0);
    for (const v of new Set(epochs.map((e) => e.variant))) {
      let hr = -Infinity,
        nll = Infinity;
      for (const e of epochs.filter((x) => x.variant === v)) {
        const better = e.validHitRatio > hr || (e.validHitRatio === hr && e.validRecNll < nll);
        expect(e.best, `${v} epoch ${e.epoch}`).toBe(better);
        if (better) [hr, nll] = [e.validHitRatio, e.validRecNll];
      }
    }
    const stats = JSON.parse(readFileSync(join(dir, "teacher", "synthesis-stats.json"), "utf8")) as {
      maxAttempts: number;
    };
    expect(stats.maxAttempts).toBe(c.teacher.tau + 3);
  });

  it("a second run skips every stage", async () => {
    const again = await runPipeline(c, { quiet: true });
    expect(again.ran).toEqual([]);
    expect(again.skipped).toEqual([...STAGES]);
    // --from names a stage to run: it runs although finished, and so does everything after it.
    const before = readFileSync(runLayout(dir).metrics, "utf8");
    const fromEval = await runPipeline(c, { from: "eval", quiet: true });
    expect(fromEval.ran).toEqual(["eval", "report"]);
    expect(readFileSync(runLayout(dir).metrics, "utf8")).toBe(before);
  });

  it("a run killed inside infer resumes to the same results", async () => {
    const L = runLayout(dir);
    const before = readFileSync(L.metrics, "utf8");
    const predsBefore = readFileSync(L.predictions, "utf8");
    // Kill: the marker never got written and one output is half written.
    rmSync(markerPath(dir, "infer"));
    const partial = readFileSync(L.inferOutputs("msr"), "utf8");
    writeFileSync(L.inferOutputs("msr"), partial.slice(0, Math.floor(partial.length / 2)));
    const resumed = await runPipeline(c, { quiet: true });
    expect(resumed.ran).toEqual(["infer", "eval", "report"]);
    expect(resumed.skipped).toEqual(["prepare", "base", "synthesize", "sft", "train", "rl"]);
    expect(readFileSync(L.metrics, "utf8")).toBe(before);
    expect(readFileSync(L.predictions, "utf8")).toBe(predsBefore);
    const m = JSON.parse(before) as MetricsFile;
    expect(m.rows.length).toBeGreaterThan(5);
  });

  it("sharded inference, merged, is byte for byte the single-process run, for any shard count and batch size", async () => {
    const L = runLayout(dir);
    const variants = ["msr", "msr-full", "wo-reason", "base-zero-shot"];
    const single = variants.map((v) => readFileSync(L.inferOutputs(v), "utf8"));
    // Which users share a generate or scorer call changes with the shard count and the prompts per
    // call (3: a user's two sides fall into different calls); with invariant numerics no record
    // changes, PPLs included. N = 2 with the run's own settings last: the next test uses its shards.
    const odd: RunConfig = { ...c, infer: { ...c.infer, batchSize: 3 } };
    for (const [cfg, count] of [
      [odd, 2],
      [c, 8],
      [c, 3],
      [c, 2],
    ] as const) {
      // One shard count at a time: the merge refuses a folder holding two.
      rmSync(join(dir, "infer", "shards"), { recursive: true, force: true });
      for (let index = count - 1; index >= 0; index--)
        await runPipeline(cfg, { only: "infer", shard: { index, count }, quiet: true });
      const merged = await runPipeline(cfg, { only: "infer", mergeShards: true, force: true, quiet: true });
      expect(merged.ran).toEqual(["infer"]);
      variants.forEach((v, i) =>
        expect(readFileSync(L.inferOutputs(v), "utf8"), `${v}, ${count} shards, batch ${cfg.infer.batchSize}`).toBe(
          single[i],
        ),
      );
    }
    // The stages after a re-run stage are stale until the next full run redoes them.
    expect(existsSync(markerPath(dir, "eval"))).toBe(false);
    expect((await runPipeline(c, { quiet: true })).ran).toEqual(["eval", "report"]);
  });

  it("a merge refuses an infer shard made with another temperature, naming it and its command; redone, it merges as before", async () => {
    // The shards of the test above are there and match the config; shard 1 is redone hotter.
    const L = runLayout(dir);
    const variants = ["msr", "msr-full", "wo-reason", "base-zero-shot"];
    const merged = variants.map((v) => readFileSync(L.inferOutputs(v), "utf8"));
    const hotter: RunConfig = { ...c, infer: { ...c.infer, temperature: c.infer.temperature + 0.5 } };
    await runPipeline(hotter, { only: "infer", shard: { index: 1, count: 2 }, quiet: true });
    const merge = () => runPipeline(c, { only: "infer", mergeShards: true, force: true, quiet: true });
    await expect(merge()).rejects.toThrow(
      new RegExp(
        `infer shard 1/2 was made from other inputs \\(infer\\.temperature: ${hotter.infer.temperature} then, ${c.infer.temperature} now\\); redo it: msr-rec pipeline --config ${L.config} --only infer --shard 1/2\n`,
      ),
    );
    expect(readFileSync(L.inferOutputs("msr"), "utf8")).toBe(merged[0]); // nothing half-merged
    await runPipeline(c, { only: "infer", shard: { index: 1, count: 2 }, quiet: true });
    expect((await merge()).ran).toEqual(["infer"]);
    variants.forEach((v, i) => expect(readFileSync(L.inferOutputs(v), "utf8"), v).toBe(merged[i]));
    await runPipeline(c, { quiet: true });
  });

  it("a run killed inside base or train continues from its checkpoints to the same model, adapters and log", async () => {
    // Two pretraining and two training epochs with a checkpoint after every step; the prepared
    // dataset is shared (its inputs are unchanged). A kill is a throw from the progress log at the
    // moment the message is written: nothing after that point of the stage runs.
    const copy = () => {
      const d = mkdtempSync(join(tmpdir(), "msr-resume-"));
      cpSync(join(dir, "dataset"), join(d, "dataset"), { recursive: true });
      cpSync(markerPath(dir, "prepare"), markerPath(d, "prepare"));
      return d;
    };
    const cfg = (d: string): RunConfig => ({
      ...c,
      runDir: d,
      model: { ...c.model, pretrainEpochs: 2 },
      train: { ...c.train, epochs: 2, checkpointEvery: 1 },
    });
    const killAt = (pattern: RegExp) => (m: string) => {
      if (pattern.test(m)) throw new Error(`killed at: ${m}`);
    };
    const [ref, killed] = [copy(), copy()];
    try {
      await runPipeline(cfg(ref), { to: "train", quiet: true });
      // Killed after the second pretraining epoch, before its checkpoint: epoch 1's is on disk.
      await expect(
        runPipeline(cfg(killed), { to: "train", quiet: true, log: killAt(/pretrain epoch 2/) }),
      ).rejects.toThrow(/killed/);
      expect(existsSync(join(killed, "base", "pretrain.ckpt"))).toBe(true);
      // Killed inside msr's second epoch end, after the epoch's steps (mid-epoch checkpoints only).
      const second: string[] = [];
      await expect(
        runPipeline(cfg(killed), {
          to: "train",
          quiet: true,
          log: (m) => (second.push(m), killAt(/\] msr epoch 2/)(m)),
        }),
      ).rejects.toThrow(/killed/);
      expect(second).toContain("[base] continuing after pretraining epoch 1");
      const third: string[] = [];
      const resumed = await runPipeline(cfg(killed), { to: "train", quiet: true, log: (m) => third.push(m) });
      expect(resumed.ran).toEqual(["train"]);
      expect(resumed.skipped).toEqual(["prepare", "base", "synthesize", "sft"]);
      expect(third.some((m) => /\[train\] msr: continuing after step \d+ \(1 epochs finished\)/.test(m))).toBe(true);
      // The same bytes as the run that was never killed: parameters, AdamW state, data order,
      // epoch means and the best-epoch choice all came back.
      expect(
        readFileSync(join(killed, "base", "model.gguf")).equals(readFileSync(join(ref, "base", "model.gguf"))),
      ).toBe(true);
      for (const v of ["msr", "wo-reason"]) {
        expect(readFileSync(runLayout(killed).adapter(v)).equals(readFileSync(runLayout(ref).adapter(v))), v).toBe(
          true,
        );
      }
      expect(readFileSync(runLayout(killed).trainLog, "utf8")).toBe(readFileSync(runLayout(ref).trainLog, "utf8"));
      expect(existsSync(join(killed, "train", "msr", "trainer.ckpt"))).toBe(false);
    } finally {
      for (const d of [ref, killed]) rmSync(d, { recursive: true, force: true });
    }
  }, 600_000);

  it("--only needs the earlier stages finished with the same config", async () => {
    const changed = { ...c, infer: { ...c.infer, temperature: 0.1 } };
    await expect(runPipeline(changed, { only: "eval", quiet: true })).rejects.toThrow(
      /stage "infer" has not finished with this config/,
    );
  });
});
