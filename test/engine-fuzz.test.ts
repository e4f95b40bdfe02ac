// Property-based fuzz of the engine (test/support/fuzz.ts) in child processes: arbitrary scorer,
// generator, embed and trainer calls and dispose orders must each end with finite results or an
// ordinary Error, and the child must exit normally. Bounded by run count and by time; the seeds
// are fixed so a failure reproduces (the child's message carries fast-check's counterexample).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildChild, describeChild, makeFixtures, pool, runChild } from "./support/crash-runner.js";

const SEEDS = [11, 12];
const RUNS = 400;

describe("engine fuzz", () => {
  it(`${SEEDS.length} × ${RUNS} random call sequences end in a result or an Error`, async () => {
    const file = await buildChild();
    const fixtures = await makeFixtures(mkdtempSync(join(tmpdir(), "msr-rec-fuzz-")));
    const results = await pool(SEEDS, 2, (seed) => runChild(file, ["fuzz", JSON.stringify({ seed, runs: RUNS, timeLimitMs: 45_000 })], fixtures, 120_000));
    for (const r of results) {
      expect(r.signal, describeChild(r)).toBeNull();
      expect(r.code, describeChild(r)).toBe(0);
      expect(r.outcome?.outcome, describeChild(r)).toBe("resolved");
      expect(r.outcome!.runs!, describeChild(r)).toBeGreaterThan(20);
    }
    console.log(`fuzz runs: ${results.map((r) => r.outcome?.runs).join(" + ")}`);
  }, 240_000);
});
