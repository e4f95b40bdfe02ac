// Every training position as a sample (train.positions "all", the paper's "remaining records"):
// each position's sample is the user's items before it, the item at it, and its own fresh
// negatives; the last position's sample, its teacher prompts and stored answers are exactly those
// of the default one-sample-per-user run, so switching modes never pays for them twice. The
// dataset is the tiny preset's synthetic one; the teacher is the rule teacher (no model).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { presetConfig, type RunConfig } from "../src/pipeline/config.js";
import { prepareStage } from "../src/pipeline/stages/prepare.js";
import { synthesisCost, synthesizeStage } from "../src/pipeline/stages/synthesize.js";
import { readSftSamples, sftStage } from "../src/pipeline/stages/sft.js";
import { loadRunDataset, trainCatalog, trainingPrompt } from "../src/pipeline/run-data.js";
import { sampleFor, trainPositions, type PreparedDataset } from "../src/prompts/dataset.js";
import { loadTemplates } from "../src/prompts/templates.js";
import { answerKey, type ReasoningRecord } from "../src/teacher/synthesize.js";
import { parseStoreText } from "../src/teacher/store.js";
import { runLayout } from "../src/run/layout.js";

describe("every training position as a sample", () => {
  let dir: string;
  let last: RunConfig;
  let all: RunConfig;
  let ds: PreparedDataset;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "msr-positions-"));
    last = presetConfig("tiny", { runDir: join(dir, "last") });
    all = { ...last, runDir: join(dir, "all"), train: { ...last.train, positions: "all" } };
    await prepareStage(last);
    cpSync(join(dir, "last"), join(dir, "all"), { recursive: true });
    ds = loadRunDataset(last);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("gives each position the items before it, the item at it and fresh negatives of distinct titles", () => {
    const catalog = trainCatalog(all, ds);
    const h = all.dataset.historyLength;
    let positions = 0;
    for (const u of ds.users) {
      const at = trainPositions(u, "all");
      // Every item with at least one item before it, the last one as `undefined`.
      expect(at).toEqual([...Array.from({ length: Math.max(0, u.train.length - 2) }, (_, k) => k + 1), undefined]);
      expect(trainPositions(u, "last")).toEqual([undefined]);
      for (const p of at) {
        const k = p ?? u.train.length - 1;
        const s = sampleFor(u, "train", h, catalog, p);
        expect(s.target).toBe(u.train[k]);
        expect(s.history).toEqual(u.train.slice(Math.max(0, k - h), k));
        expect(s.candidates[s.targetIndex]).toBe(u.train[k]);
        const touched = new Set([...u.train, u.valid, u.test]);
        for (const id of s.candidates) if (id !== s.target) expect(touched.has(id)).toBe(false);
        expect(new Set(s.candidates.map((id) => ds.items.get(id)!.title.toLowerCase())).size).toBe(s.candidates.length);
        positions++;
      }
      expect(sampleFor(u, "train", h, catalog, undefined)).toEqual(sampleFor(u, "train", h, catalog));
    }
    expect(positions).toBeGreaterThan(2 * ds.users.length);
    expect(() => sampleFor(ds.users[0]!, "train", h, catalog, ds.users[0]!.train.length - 1)).toThrow(
      /leave it out for the last/,
    );
  });

  it("asks the teacher once per position, says so first, and reuses the last position's prompts and answers", async () => {
    const positions = ds.users.reduce((a, u) => a + trainPositions(u, "all").length, 0);
    expect(synthesisCost(all, ds)).toMatch(
      new RegExp(`^\\d+ teacher prompts \\(${positions} train samples, every training position;`),
    );
    expect(synthesisCost(last, ds)).toMatch(new RegExp(`\\(${ds.users.length} train samples, one per user;`));
    await synthesizeStage(last);
    await synthesizeStage(all);
    const read = (c: RunConfig) =>
      readFileSync(runLayout(c.runDir).reasoning, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as ReasoningRecord);
    const trainOf = (c: RunConfig) => read(c).filter((r) => r.split === "train");
    // One record per position that kept a path or fell back to behavior-only (tau 1).
    expect(trainOf(all)).toHaveLength(positions);
    expect(trainOf(last)).toHaveLength(ds.users.length);
    // The last position's records equal the default run's, prompt and reasoning alike.
    expect(trainOf(all).filter((r) => r.position === undefined)).toEqual(trainOf(last));
    const store = (c: RunConfig) =>
      new Map(
        parseStoreText(readFileSync(join(runLayout(c.runDir).teacher, "answers.jsonl"), "utf8")).answers.map((a) => [
          a.key,
          a,
        ]),
      );
    const [a, b] = [store(all), store(last)];
    for (const [key, ans] of b) expect(a.get(key)?.content, key).toBe(ans.content);
    const u = ds.users.find((x) => x.train.length >= 3)!;
    expect(a.has(answerKey(sampleFor(u, "train", all.dataset.historyLength, trainCatalog(all, ds), 1), 0))).toBe(true);
    expect(answerKey(sampleFor(u, "train", all.dataset.historyLength, trainCatalog(all, ds), 1), 0)).toBe(
      `train/${u.user}@1/0`,
    );

    // The SFT samples keep their positions, with the prompt of that position's sample.
    await sftStage(all);
    const sft = readSftSamples(all, "train");
    expect(sft).toHaveLength(positions);
    const templates = loadTemplates();
    const byUser = new Map(ds.users.map((x) => [x.user, x]));
    for (const s of sft)
      expect(s.prompt).toBe(
        trainingPrompt(
          ds,
          templates,
          sampleFor(byUser.get(s.user)!, "train", all.dataset.historyLength, trainCatalog(all, ds), s.position),
        ),
      );
    expect(new Set(sft.map((s) => `${s.user}@${s.position}`)).size).toBe(positions);
  });
});
