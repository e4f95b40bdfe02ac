// `msr-rec synthesize` and `msr-rec prompts` outside a pipeline build the same prompts as a run
// with the same seed and history length (the synthesize stage's teacher prompts, the SFT inputs),
// so answers synthesize stores are the run's (no second paid call for a prompt that differs only
// in its drawn negatives). Reference: the stage's own sample construction (sampleFor with the
// run's train catalog).
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { presetConfig } from "../src/pipeline/config.js";
import { loadRunDataset, trainCatalog, trainingPrompt } from "../src/pipeline/run-data.js";
import { prepareStage } from "../src/pipeline/stages/prepare.js";
import { runLayout } from "../src/run/layout.js";
import { contextFor, sampleFor } from "../src/prompts/dataset.js";
import { fillTemplate } from "../src/prompts/build.js";
import { loadTemplates } from "../src/prompts/templates.js";
import { synthesisJobs } from "../src/teacher/jobs.js";
import { PromptPool } from "../src/prompts/pool.js";

describe("synthesis jobs outside a run", () => {
  it("draw the train split's negatives from the run's seed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-jobs-"));
    try {
      const c = presetConfig("demo", { runDir: dir });
      await prepareStage(c);
      const ds = loadRunDataset(c);
      const templates = loadTemplates();
      const stagePrompts = ds.users.map((u) =>
        fillTemplate(
          templates.teacher,
          contextFor(ds, sampleFor(u, "train", c.dataset.historyLength, trainCatalog(c, ds))),
        ),
      );
      const jobs = synthesisJobs(ds, templates, "train", undefined, c.dataset.historyLength, c.seed);
      expect(jobs.map((j) => j.prompt)).toEqual(stagePrompts);
      // Another seed draws other negatives for most users.
      const other = synthesisJobs(ds, templates, "train", undefined, c.dataset.historyLength, c.seed + 1);
      expect(other.filter((j, i) => j.prompt !== stagePrompts[i]).length).toBeGreaterThan(ds.users.length / 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the CLI sends the prompts of a run with the default seed and refuses a bad seed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-jobs-cli-"));
    try {
      const c = presetConfig("demo", { runDir: dir });
      expect(c.seed).toBe(42);
      await prepareStage(c);
      const cli = join(process.cwd(), "dist", "src", "cli", "main.js");
      const data = runLayout(dir).dataset;
      const ok = spawnSync(
        process.execPath,
        [cli, "synthesize", "--data", data, "--teacher", "rules", "--history-length", "1", "--out", join(dir, "synth")],
        { encoding: "utf8" },
      );
      expect(ok.status, ok.stderr).toBe(0);
      // The prompts it sent are the run's synthesize-stage prompts for seed 42.
      const ds = loadRunDataset(c);
      const templates = loadTemplates();
      const stage = new Map(
        ds.users.map(
          (u) =>
            [
              u.user,
              fillTemplate(templates.teacher, contextFor(ds, sampleFor(u, "train", 1, trainCatalog(c, ds)))),
            ] as const,
        ),
      );
      const sent = readFileSync(join(dir, "synth", "reasoning.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { user: string; prompt: string });
      expect(sent.length).toBeGreaterThan(0);
      for (const r of sent) expect(r.prompt).toBe(stage.get(r.user));
      const bad = spawnSync(
        process.execPath,
        [cli, "synthesize", "--data", data, "--teacher", "rules", "--seed", "x", "--out", join(dir, "synth2")],
        { encoding: "utf8" },
      );
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toContain("--seed must be an integer");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("`msr-rec prompts --split train` builds a default run's training prompts (its seed's negatives), on worker threads too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-jobs-prompts-"));
    try {
      const c = presetConfig("demo", { runDir: dir });
      await prepareStage(c);
      const ds = loadRunDataset(c);
      const templates = loadTemplates();
      // The run's SFT inputs: the train template on the stage's train samples.
      const run = ds.users.map((u) =>
        trainingPrompt(ds, templates, sampleFor(u, "train", c.dataset.historyLength, trainCatalog(c, ds))),
      );
      const workerFile = join(process.cwd(), "dist", "src", "prompts", "worker.js");
      for (const threads of [1, 2]) {
        const pool = PromptPool.fromFolder(
          {
            dataDir: runLayout(dir).dataset,
            split: "train",
            historyLength: c.dataset.historyLength,
            kind: "train",
            template: templates.train,
          },
          { threads, chunkSize: 16, workerFile },
        );
        try {
          const built = (await pool.build())
            .join("")
            .trim()
            .split("\n")
            .map((l) => (JSON.parse(l) as { prompt: string }).prompt);
          expect(built, `${threads} thread(s)`).toEqual(run);
        } finally {
          await pool.destroy();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
