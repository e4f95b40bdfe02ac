// The rl stage killed for real: `msr-rec rl` (the built CLI) runs in a child process on the `tiny`
// preset and gets SIGKILL once its log shows a step done, and again at a random moment between two
// checkpoints. Run again, it finishes with the same log (every number bitwise), the same kept step
// and the same adapter bytes as a run never killed, with no step logged twice and no temporary or
// torn file left behind (before one resume the test plants the temp file that a kill in the
// middle of the engine's checkpoint write leaves). The preset's base model is pretrained a little
// longer here (3 epochs, not 1) so that sampled completions sometimes name a candidate: rewards
// then differ within groups and the policy really updates, so the checkpoint's parameters and
// AdamW moments decide the later steps' numbers. (Its validation HitRatio@1 may stay at 0, and
// the kept step then is 0, the SFT adapter: the adapter bytes are compared all the same.)
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLayout, RL_VARIANT } from "../src/run/layout.js";
import type { GrpoLogLine } from "../src/train/grpo.js";
import { packageRoot } from "../src/util/paths.js";
import { addonMissing } from "./support/addon.js";

const missing = addonMissing("rl stage SIGKILL tests");
const cliPath = join(packageRoot, "dist", "src", "cli", "main.js");
const STEPS = 4;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the CLI; with `killWhen`, polls it every 20 ms and sends SIGKILL once it holds. */
function cli(args: string[], killWhen?: () => boolean): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [cliPath, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = killWhen
      ? setInterval(() => {
          if (killWhen()) p.kill("SIGKILL");
        }, 20)
      : undefined;
    p.on("error", reject);
    p.on("exit", (code, signal) => {
      if (timer) clearInterval(timer);
      resolve({ code, signal, stderr });
    });
  });
}

/** The lines of a log being written: a last line cut short by the kill is left out. */
function linesSoFar(path: string): GrpoLogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as GrpoLogLine];
      } catch {
        return [];
      }
    });
}

/** A finished log, every line parsed (a torn line fails), with the step times (wall clock) left out. */
function finishedLog(runDir: string): string[] {
  const text = readFileSync(runLayout(runDir).rlLog, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  return text
    .slice(0, -1)
    .split("\n")
    .map((l) => {
      const line = JSON.parse(l) as GrpoLogLine;
      return JSON.stringify(line.type === "step" ? { ...line, seconds: 0 } : line);
    });
}

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

describe.skipIf(missing !== null)("rl stage after SIGKILL (tiny, built CLI)", () => {
  let dir: string;
  let config: string;
  let full: { log: string[]; kept: string; adapter: Buffer; stepSeconds: number };

  const rl = (runDir: string, killWhen?: () => boolean) =>
    cli(["rl", "--config", config, "--run-dir", runDir], killWhen);
  /** A copy of the run folder whose stages up to train are finished. */
  const copyOfTrained = (name: string) => {
    const to = join(dir, name);
    cpSync(join(dir, "trained"), to, { recursive: true });
    return to;
  };
  const keptStep = (e: Exit) => e.stderr.match(/\[rl\] kept step \d+ .*/)?.[0] ?? `none in:\n${e.stderr}`;

  /** What a killed-then-resumed run must end with: the uninterrupted run's results, nothing torn. */
  function expectSameAsUninterrupted(runDir: string, resumed: Exit) {
    expect(resumed.code, resumed.stderr).toBe(0);
    const log = finishedLog(runDir);
    const steps = log.map((l) => JSON.parse(l) as GrpoLogLine).filter((l) => l.type === "step");
    expect(steps.map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(log).toEqual(full.log);
    expect(keptStep(resumed)).toBe(full.kept);
    expect(readFileSync(runLayout(runDir).adapter(RL_VARIANT)).equals(full.adapter)).toBe(true);
    const files = filesUnder(runDir);
    expect(files.filter((f) => f.includes(".tmp"))).toEqual([]);
    expect(existsSync(runLayout(runDir).rlCheckpoint)).toBe(false);
    for (const f of files.filter((f) => f.endsWith(".json")))
      expect(() => JSON.parse(readFileSync(join(runDir, f), "utf8")), f).not.toThrow();
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "msr-rl-sigkill-"));
    config = join(dir, "config.json");
    writeFileSync(
      config,
      JSON.stringify({
        preset: "tiny",
        runDir: join(dir, "trained"),
        model: { threads: 2, pretrainEpochs: 3, pretrainLearningRate: 3e-3, pretrainBatchSize: 8 },
        train: { epochs: 2, learningRate: 5e-3 },
        infer: { maxTokens: 48 },
        ablations: { woReason: false, full: false },
        rl: { steps: STEPS, group: 4, usersPerStep: 4, evalEvery: 2 },
      }),
    );
    const trained = await cli(["pipeline", "--config", config, "--to", "train"]);
    expect(trained.code, trained.stderr).toBe(0);
    const runDir = copyOfTrained("uninterrupted");
    const r = await rl(runDir);
    expect(r.code, r.stderr).toBe(0);
    const lines = linesSoFar(runLayout(runDir).rlLog);
    full = {
      log: finishedLog(runDir),
      kept: keptStep(r),
      adapter: readFileSync(runLayout(runDir).adapter(RL_VARIANT)),
      stepSeconds: lines.reduce((a, l) => a + (l.type === "step" ? l.seconds : 0), 0),
    };
  }, 300_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the uninterrupted run updates the policy (the resume has state to restore)", () => {
    const steps = full.log.map((l) => JSON.parse(l) as GrpoLogLine).filter((l) => l.type === "step");
    expect(steps.map((l) => l.step)).toEqual([1, 2, 3, 4]);
    // Some step trains a group, and the policy moves away from the SFT adapter (KL > 0 later on).
    expect(steps.some((s) => s.groupsUsed > 0 && s.loss !== null)).toBe(true);
    expect(Math.max(...steps.map((s) => s.kl ?? 0))).toBeGreaterThan(0);
  });

  it("killed once step 2 is logged, then run again: the uninterrupted run's log, kept step and adapter", async () => {
    const runDir = copyOfTrained("killed-after-step");
    const L = runLayout(runDir);
    const killed = await rl(runDir, () => linesSoFar(L.rlLog).some((l) => l.type === "step" && l.step === 2));
    expect(killed.signal, killed.stderr).toBe("SIGKILL");
    expect(existsSync(L.rlCheckpoint)).toBe(true);
    const logged = linesSoFar(L.rlLog).filter((l) => l.type === "step").length;
    expect(logged).toBeLessThan(STEPS);
    // What a kill in the middle of a native file write leaves: the resumed run clears it away.
    writeFileSync(`${L.rlCheckpoint}.tmp-999999-1`, "torn");

    const resumed = await rl(runDir);
    // It continues after the last checkpointed step: step 2's, or step 1's when the kill came
    // before step 2's checkpoint. Only the step in flight is done again.
    const after = Number(resumed.stderr.match(/continuing after step (\d+)/)?.[1]);
    expect([logged - 1, logged], resumed.stderr).toContain(after);
    expectSameAsUninterrupted(runDir, resumed);
  }, 120_000);

  it("killed at a random moment between checkpoints, then run again: the same results", async () => {
    const runDir = copyOfTrained("killed-mid-step");
    const L = runLayout(runDir);
    // The clock starts at the first checkpoint (step 0's); the kill comes within the first 60%
    // of the steps' time in the uninterrupted run, so it lands before the run can finish.
    const delay = Math.random() * 0.6 * full.stepSeconds * 1000;
    let since = 0;
    const killed = await rl(runDir, () => {
      if (since === 0) since = existsSync(L.rlCheckpoint) ? performance.now() : 0;
      return since > 0 && performance.now() - since >= delay;
    });
    const at = `killed ${delay.toFixed(0)} ms after the first checkpoint`;
    expect(killed.signal, `${at}: ${killed.stderr}`).toBe("SIGKILL");
    const logged = linesSoFar(L.rlLog).filter((l) => l.type === "step").length;
    expect(logged, at).toBeLessThan(STEPS);

    const resumed = await rl(runDir);
    const after = Number(resumed.stderr.match(/continuing after step (\d+)/)?.[1]);
    expect([logged - 1, logged], `${at}: ${resumed.stderr}`).toContain(after);
    expectSameAsUninterrupted(runDir, resumed);
  }, 120_000);
});
