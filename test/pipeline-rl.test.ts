// The rl stage in the pipeline, on the `tiny` preset: off by default (no rows, no files); turned
// on, only it and the stages after it run, its log and adapter appear, the "MSR-Rec + GRPO"
// rows (fused, user, item) join the results, and the report draws GRPO's curves. Whether GRPO
// learns is test/grpo-loop.test.ts's and test/grpo-toy.test.ts's business: the tiny model's
// outputs rarely name a candidate, so its rewards barely vary.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { presetConfig, type RunConfig } from "../src/pipeline/config.js";
import { runPipeline } from "../src/pipeline/run.js";
import { markerPath } from "../src/pipeline/stages.js";
import { runLayout, RL_VARIANT } from "../src/run/layout.js";
import { parseJsonLines } from "../src/util/jsonl.js";
import type { GrpoLogLine } from "../src/train/grpo.js";
import { addonMissing } from "./support/addon.js";

const missing = addonMissing("pipeline rl stage tests");

describe.skipIf(missing !== null)("pipeline rl stage (tiny)", () => {
  let dir: string;
  let c: RunConfig;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "msr-pipeline-rl-"));
    c = presetConfig("tiny", { runDir: dir, model: { threads: 2 }, ablations: { woReason: false, full: false } });
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("is off by default, and turned on adds its rows and curves after running only what depends on it", async () => {
    const L = runLayout(dir);
    const off = await runPipeline(c, { quiet: true });
    expect(off.ran).toContain("rl");
    expect(existsSync(L.rl)).toBe(false);
    expect(off.metrics!.rows.some((r) => r.name.includes("GRPO"))).toBe(false);
    // Turned off, the stage blocks nothing: infer alone runs without its marker (a scheduler's
    // jobs may never run it), and enabling it later is a config change infer must wait for.
    rmSync(markerPath(dir, "rl"));
    await runPipeline(c, { quiet: true, only: "infer" });
    const enabled: RunConfig = { ...c, rl: { ...c.rl, enabled: true } };
    await expect(runPipeline(enabled, { quiet: true, only: "infer" })).rejects.toThrow(/stage "rl" has not finished/);

    const on: RunConfig = { ...c, rl: { ...c.rl, enabled: true, steps: 2, group: 2, usersPerStep: 2, evalEvery: 1 } };
    const s = await runPipeline(on, { quiet: true });
    expect(s.ran).toEqual(["rl", "infer", "eval", "report"]);
    expect(existsSync(L.adapter(RL_VARIANT))).toBe(true);
    expect(existsSync(L.rlCheckpoint)).toBe(false);
    const log = parseJsonLines<GrpoLogLine>(readFileSync(L.rlLog, "utf8"), L.rlLog);
    expect(log.filter((l) => l.type === "step").map((l) => l.step)).toEqual([1, 2]);
    expect(log.filter((l) => l.type === "valid").map((l) => l.step)).toEqual([0, 1, 2]);
    const names = s.metrics!.rows.map((r) => r.name);
    for (const n of ["MSR-Rec + GRPO", "MSR-Rec + GRPO (user)", "MSR-Rec + GRPO (item)"]) expect(names).toContain(n);
    const grpo = s.metrics!.rows.find((r) => r.name === "MSR-Rec + GRPO")!;
    expect(grpo.kind).toBe("msr");
    expect(grpo.note).toContain(`KL ${on.rl.beta} to the SFT adapter`);
    expect(grpo.users).toBe(s.metrics!.rows.find((r) => r.name === "MSR-Rec")!.users);
    const html = readFileSync(L.report, "utf8");
    expect(html).toContain("Reinforcement refinement (GRPO)");
    for (const t of [
      "Reward per step",
      "KL to the SFT adapter",
      "Entropy per step",
      "Response length",
      "Validation HitRatio@1 (both sides",
    ])
      expect(html).toContain(t);
    expect((await runPipeline(on, { quiet: true })).ran).toEqual([]);
  }, 600_000);
});
