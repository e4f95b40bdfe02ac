// Stage bookkeeping, config validation and shard merging, without a model: the stage runner
// skips finished stages, re-runs stale ones from scratch (partial outputs removed), and
// inference shards merge back in user order.
import { describe, expect, it } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashInputs, markerPath, readMarker, runStage, stableStringify } from "../src/pipeline/stages.js";
import { parseRunConfig, presetConfig, trainVariants, PRESETS } from "../src/pipeline/config.js";
import { inferVariants } from "../src/pipeline/variants.js";
import {
  inferShardFile,
  mergeInferShards,
  readInferRecords,
  writeInferRecords,
  type InferRecord,
} from "../src/infer/records.js";
import { candidateGrammar, parseOutput } from "../src/infer/parse.js";

const tmp = () => mkdtempSync(join(tmpdir(), "msr-stages-"));

describe("runStage", () => {
  it("runs once, skips while inputs match, re-runs from scratch when they change", async () => {
    const dir = tmp();
    try {
      let runs = 0;
      const spec = (inputs: unknown) => ({
        stage: "sft" as const,
        inputs,
        outputs: ["sft"],
        run: async () => {
          runs++;
          // A fresh run never sees a previous run's files.
          expect(existsSync(join(dir, "sft", "partial.txt"))).toBe(false);
          mkdirSync(join(dir, "sft"), { recursive: true });
          writeFileSync(join(dir, "sft", "out.txt"), `run ${runs}`);
        },
      });
      const log: string[] = [];
      expect((await runStage(dir, "up", spec({ a: 1 }), false, (m) => log.push(m))).outcome).toBe("ran");
      expect((await runStage(dir, "up", spec({ a: 1 }), false, (m) => log.push(m))).outcome).toBe("skipped");
      expect(runs).toBe(1);
      // Simulated kill: a partial file left behind and the marker gone.
      writeFileSync(join(dir, "sft", "partial.txt"), "half");
      rmSync(markerPath(dir, "sft"));
      expect((await runStage(dir, "up", spec({ a: 1 }), false, () => {})).outcome).toBe("ran");
      expect(existsSync(join(dir, "sft", "partial.txt"))).toBe(false);
      // Changed inputs or a changed upstream hash invalidate the marker.
      expect((await runStage(dir, "up", spec({ a: 2 }), false, () => {})).outcome).toBe("ran");
      expect((await runStage(dir, "other", spec({ a: 2 }), false, () => {})).outcome).toBe("ran");
      expect(runs).toBe(4);
      expect(readMarker(dir, "sft")!.inputsHash).toBe(hashInputs("other", "sft", { a: 2 }));
      // Missing outputs also force a re-run, even with a matching marker.
      rmSync(join(dir, "sft"), { recursive: true });
      expect((await runStage(dir, "other", spec({ a: 2 }), false, () => {})).outcome).toBe("ran");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lets a killed resumable stage keep its partial outputs while its inputs are unchanged", async () => {
    const dir = tmp();
    try {
      const seen: string[] = [];
      const spec = (inputs: unknown, kill: boolean) => ({
        stage: "train" as const,
        inputs,
        outputs: ["train"],
        resumable: true,
        run: async () => {
          const f = join(dir, "train", "ckpt.txt");
          seen.push(existsSync(f) ? readFileSync(f, "utf8") : "none");
          mkdirSync(join(dir, "train"), { recursive: true });
          writeFileSync(f, `after ${JSON.stringify(inputs)}`);
          if (kill) throw new Error("killed");
        },
      });
      await expect(runStage(dir, "up", spec({ a: 1 }, true), false, () => {})).rejects.toThrow("killed");
      const log: string[] = [];
      expect((await runStage(dir, "up", spec({ a: 1 }, false), false, (m) => log.push(m))).outcome).toBe("ran");
      expect(log[0]).toMatch(/resuming/);
      // Finished: a re-run asked for starts over, as does a killed run whose inputs changed.
      await expect(runStage(dir, "up", spec({ a: 1 }, true), { rerun: true, fresh: false }, () => {})).rejects.toThrow(
        "killed",
      );
      await expect(runStage(dir, "up", spec({ a: 2 }, true), false, () => {})).rejects.toThrow("killed");
      // Killed with the same inputs but told to start fresh (an upstream stage re-ran).
      expect((await runStage(dir, "up", spec({ a: 2 }, false), { rerun: true, fresh: true }, () => {})).outcome).toBe(
        "ran",
      );
      expect(seen).toEqual(["none", 'after {"a":1}', "none", "none", "none"]);
      expect(existsSync(join(dir, "stages", "train.started.json"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("leaves no marker when the stage throws", async () => {
    const dir = tmp();
    try {
      const failing = {
        stage: "train" as const,
        inputs: {},
        outputs: ["train"],
        run: async () => {
          throw new Error("boom");
        },
      };
      await expect(runStage(dir, "", failing, false, () => {})).rejects.toThrow("boom");
      expect(readMarker(dir, "train")).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("hashes objects independently of key order", () => {
    expect(stableStringify({ b: 1, a: [1, { d: 2, c: 3 }] })).toBe('{"a":[1,{"c":3,"d":2}],"b":1}');
    expect(hashInputs({ x: 1, y: 2 })).toBe(hashInputs({ y: 2, x: 1 }));
    expect(hashInputs({ x: 1 })).not.toBe(hashInputs({ x: 2 }));
  });
});

describe("run config", () => {
  const real = {
    dataset: { source: "amazon-2018", path: "Electronics_5.json.gz", meta: "meta_Electronics.json.gz" },
    model: { path: "llama-3-8b.gguf" },
    teacher: { kind: "openai", endpoint: "https://api.deepseek.com", model: "deepseek-reasoner" },
  } as const;

  it("fills the paper's defaults", () => {
    const c = parseRunConfig(real);
    expect([
      c.train.alpha,
      c.train.beta,
      c.train.loraRank,
      c.train.loraAlpha,
      c.train.epochs,
      c.train.batchSize,
    ]).toEqual([0.7, 0.3, 8, 32, 5, 32]);
    expect([c.infer.temperature, c.infer.maxTokens, c.dataset.candidates]).toEqual([0.7, 1024, 6]);
  });

  it("names every bad field", () => {
    expect(() => parseRunConfig({ train: { alpha: -1, epochs: 0 }, infer: { temperature: "hot" } })).toThrow(
      /train\.alpha[\s\S]*train\.epochs[\s\S]*infer\.temperature/,
    );
    expect(() => parseRunConfig({ ...real, dataset: { source: "amazon-2018" } })).toThrow(/needs dataset.path/);
  });

  it("the paper preset refuses to run on the demo's stand-ins, naming each missing piece", () => {
    const refusal = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error("expected a refusal");
    };
    const all = refusal(() => presetConfig("paper"));
    for (const piece of ["dataset.source", "model.path", "teacher.kind"]) expect(all).toContain(piece);
    expect(refusal(() => parseRunConfig({}))).toBe(all.replace('preset "paper"', "config"));
    // Each piece alone is named alone.
    expect(refusal(() => parseRunConfig({ ...real, model: {} }))).toMatch(
      /missing what a run needs:\n {2}model\.path[^\n]*\nThe synthetic/,
    );
    expect(refusal(() => parseRunConfig({ ...real, dataset: {} }))).toMatch(
      /needs:\n {2}dataset\.source[^\n]*\nThe synthetic/,
    );
    expect(refusal(() => parseRunConfig({ ...real, teacher: {} }))).toMatch(
      /needs:\n {2}teacher\.kind[^\n]*\nThe synthetic/,
    );
    // Stated explicitly, the stand-ins are allowed; demo and tiny default to them.
    expect(
      parseRunConfig({ dataset: { source: "synthetic" }, model: { initSize: "small" }, teacher: { kind: "rule" } })
        .model.initSize,
    ).toBe("small");
    for (const name of ["demo", "tiny"] as const)
      expect(presetConfig(name)).toMatchObject({
        dataset: { source: "synthetic" },
        model: { initSize: "tiny" },
        teacher: { kind: "rule" },
      });
  });

  it("presets validate and the sweep adds one adapter per pair except the default", () => {
    for (const name of Object.keys(PRESETS) as Array<keyof typeof PRESETS>)
      expect(presetConfig(name, real).runDir).toBeTruthy();
    const c = presetConfig("paper", real);
    expect(trainVariants(c).map((v) => v.name)).toEqual([
      "msr",
      "wo-reason",
      "sweep-0.3-0.7",
      "sweep-0.5-0.5",
      "sweep-0.9-0.1",
      "tallrec",
    ]);
    expect(trainVariants(c).find((v) => v.name === "wo-reason")).toMatchObject({
      alpha: 0,
      withoutReasoning: true,
      format: "msr",
    });
    expect(trainVariants(c).find((v) => v.name === "tallrec")).toMatchObject({
      alpha: 0,
      beta: 1,
      withoutReasoning: true,
      format: "tallrec",
    });
    expect(inferVariants(c).map((v) => v.name)).toEqual([
      "msr",
      "msr-full",
      "wo-reason",
      "sweep-0.3-0.7",
      "sweep-0.5-0.5",
      "sweep-0.9-0.1",
      "tallrec",
      "base-zero-shot",
    ]);
    expect(
      trainVariants(presetConfig("paper", { ...real, ablations: { tallrec: false } })).map((v) => v.name),
    ).not.toContain("tallrec");
  });
});

describe("output parsing", () => {
  const titles = ["Sonix Phone Pro", "Voltra Laptop Air", "Gripo Case for Sonix Phones"];
  it("judges the text after [reasoning_end] and keeps the reasoning between the markers", () => {
    const text = "Step 1: likes Sonix Phone Pro and Voltra Laptop Air.\n[reasoning_end] Voltra Laptop Air";
    const p = parseOutput(text, titles);
    expect(p.choiceIndex).toBe(1);
    expect(p.reasoning).toBe("Step 1: likes Sonix Phone Pro and Voltra Laptop Air.");
    expect(text.slice(p.reasoningStart, p.reasoningStart + p.reasoning.length)).toBe(p.reasoning);
  });

  it("falls back to the whole text without an end marker (LLaRA's rule decides)", () => {
    expect(parseOutput("I recommend gripo case for sonix phones", titles).choiceIndex).toBe(2);
    expect(parseOutput("Sonix Phone Pro or Voltra Laptop Air", titles).choiceIndex).toBe(-1);
  });

  it("builds a GBNF alternation of the escaped titles", () => {
    expect(candidateGrammar(['A "quoted" \\ title', "B"])).toBe('root ::= " "? ("A \\"quoted\\" \\\\ title" | "B")\n');
  });
});

describe("inference shards", () => {
  const rec = (user: string): InferRecord => ({
    user,
    candidateIds: ["a", "b"],
    candidateTitles: ["A", "B"],
    targetIndex: 0,
  });

  it("merges all N shards in dataset order and refuses incomplete or overlapping sets", () => {
    const dir = tmp();
    try {
      const shards = [0, 1].map((i) => join(dir, "shards", `shard-${i}-of-2`));
      writeInferRecords(inferShardFile(shards[0]!, "msr"), [rec("u3"), rec("u1")]);
      expect(() => mergeInferShards(shards, "msr", join(dir, "msr.jsonl"))).toThrow(
        /shard 1\/2 has no "msr" records .* is missing/,
      );
      writeInferRecords(inferShardFile(shards[1]!, "msr"), [rec("u2")]);
      expect(mergeInferShards(shards, "msr", join(dir, "msr.jsonl"), ["u1", "u2", "u3"])).toBe(3);
      expect(readInferRecords(join(dir, "msr.jsonl")).map((r) => r.user)).toEqual(["u1", "u2", "u3"]);
      writeInferRecords(inferShardFile(shards[1]!, "msr"), [rec("u2"), rec("u1")]);
      expect(() => mergeInferShards(shards, "msr", join(dir, "msr.jsonl"))).toThrow(/appears in two shards/);
      expect(readFileSync(join(dir, "msr.jsonl"), "utf8").split("\n").filter(Boolean)).toHaveLength(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("eval rows", async () => {
  const { rowMetrics, pickFused, pickUser, pickItem, pickConstrained } = await import("../src/pipeline/stages/eval.js");
  const titles = ["Alpha Phone", "Beta Laptop", "Gamma Watch"];
  const side = (answer: string, choiceIndex: number, ppl: number) => ({
    reasoning: "r",
    answer,
    choiceIndex,
    reasoningStart: 0,
    text: `r [reasoning_end] ${answer}`,
    finishReason: "eos",
    ppl,
  });
  // Hand-checked: target is "Alpha Phone" (index 0) for all three users.
  const records: InferRecord[] = [
    // both valid and agree on the target → fused hit
    {
      user: "u1",
      candidateIds: ["a", "b", "c"],
      candidateTitles: titles,
      targetIndex: 0,
      userSide: side("Alpha Phone", 0, 2),
      itemSide: side("alpha phone!", 0, 3),
      fused: { side: "user", choice: "a", case: "agree" },
      constrained: { side: "user", choice: "a", case: "agree" },
    },
    // disagree; the item side (higher PPL) names Beta → fused miss, user side alone hits
    {
      user: "u2",
      candidateIds: ["a", "b", "c"],
      candidateTitles: titles,
      targetIndex: 0,
      userSide: side("Alpha Phone", 0, 2),
      itemSide: side("Beta Laptop", 1, 9),
      fused: { side: "item", choice: "b", case: "disagree" },
      constrained: { side: "item", choice: "b", case: "disagree" },
    },
    // neither side valid (two titles / none) → invalid everywhere except the constrained row
    {
      user: "u3",
      candidateIds: ["a", "b", "c"],
      candidateTitles: titles,
      targetIndex: 0,
      userSide: side("Alpha Phone or Beta Laptop", -1, 2),
      itemSide: side("nothing", -1, 4),
      fused: { side: null, choice: null, case: "none" },
      constrained: { side: "user", choice: "a", case: "agree" },
    },
  ];

  it("counts hits over all users and over valid answers, per row", () => {
    expect(rowMetrics("fused", "msr", records, pickFused)).toMatchObject({
      users: 3,
      valid: 2,
      hits: 1,
      hitRatio: 1 / 3,
      hitRatioValid: 1 / 2,
      validRatio: 2 / 3,
    });
    expect(rowMetrics("user", "ablation", records, pickUser)).toMatchObject({
      valid: 2,
      hits: 2,
      hitRatio: 2 / 3,
      hitRatioValid: 1,
    });
    expect(rowMetrics("item", "ablation", records, pickItem)).toMatchObject({ valid: 2, hits: 1 });
    expect(rowMetrics("constrained", "ablation", records, pickConstrained)).toMatchObject({
      valid: 3,
      hits: 2,
      validRatio: 1,
    });
  });
});

describe("prepare stage on real data", () => {
  const ml100k = join(process.cwd(), "..", "shared", "data", "ml-100k");
  const present = existsSync(join(ml100k, "ml-100k.inter"));
  if (!present) console.log(`skipped real-data prepare test: ${ml100k} not found`);

  it.skipIf(!present)("reads ml-100k (RecBole files) through the protocol into the run folder", async () => {
    const { prepareStage } = await import("../src/pipeline/stages/prepare.js");
    const { loadRunDataset } = await import("../src/pipeline/run-data.js");
    const dir = tmp();
    try {
      const c = parseRunConfig({
        runDir: dir,
        dataset: { source: "recbole", path: ml100k, users: 30, domain: "movie" },
        model: { initSize: "tiny" },
        teacher: { kind: "rule" },
      });
      await prepareStage(c);
      const ds = loadRunDataset(c);
      expect(ds.users).toHaveLength(30);
      for (const u of ds.users) {
        expect(u.candidates.test).toHaveLength(6);
        expect(u.candidates.test.filter((id) => id === u.test)).toHaveLength(1);
        expect(u.train.length).toBeGreaterThanOrEqual(3); // 5-core: at least 5 interactions per user
        expect(u.train).not.toContain(u.test);
      }
      const stats = JSON.parse(readFileSync(join(dir, "dataset", "stats.json"), "utf8")) as {
        users: number;
        raw: { interactions: number };
      };
      expect(stats.users).toBe(30);
      expect(stats.raw.interactions).toBe(100_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
