// Property-based fuzz of the engine (test/support/fuzz.ts) in child processes: arbitrary scorer,
// generator, embed and trainer calls and dispose orders must each end with finite results or an
// ordinary Error, and the child must exit normally. Bounded by run count and by time; the seeds
// are fixed so a failure reproduces (the child's message carries fast-check's counterexample).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildChild, describeChild, makeFixtures, pool, runChild } from "./support/crash-runner.js";

// MSR_REC_FUZZ_SEEDS=1,2,3 and MSR_REC_FUZZ_RUNS=1000 run a longer fuzz (e.g. before a release).
const SEEDS = (process.env.MSR_REC_FUZZ_SEEDS ?? "11,12").split(",").map(Number);
const RUNS = Number(process.env.MSR_REC_FUZZ_RUNS ?? 200);

describe("engine fuzz", () => {
  it(`${SEEDS.length} × ${RUNS} random call sequences end in a result or an Error`, async () => {
    const file = await buildChild();
    const fixtures = await makeFixtures(mkdtempSync(join(tmpdir(), "msr-rec-fuzz-")));
    const results = await pool(SEEDS, 2, (seed) =>
      runChild(
        file,
        ["fuzz", JSON.stringify({ seed, runs: RUNS, timeLimitMs: RUNS > 200 ? 500_000 : 40_000 })],
        fixtures,
        600_000,
      ),
    );
    for (const r of results) {
      expect(r.signal, describeChild(r)).toBeNull();
      expect(r.code, describeChild(r)).toBe(0);
      expect(r.outcome?.outcome, describeChild(r)).toBe("resolved");
      expect(r.outcome!.runs!, describeChild(r)).toBeGreaterThan(20);
      // Enough runs get past option checks into native code for the property to mean something.
      expect(r.outcome!.resolvedRuns!, describeChild(r)).toBeGreaterThan(r.outcome!.runs! / 10);
    }
    console.log(
      `fuzz runs: ${results.map((r) => `${r.outcome?.runs} (${r.outcome?.resolvedRuns} returned a result)`).join(" + ")}`,
    );
  }, 1_200_000);
});
