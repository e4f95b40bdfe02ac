// One default seed: every command that repeats a step of a run on its own gives, with no --seed,
// what a run with the default config gives. References: the pipeline's own prepare stage and eval
// stage baselines on the same data, and the run config's default.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { describe, expect, it, vi } from "vitest";
import { register as registerPrepare } from "../src/cli/commands/prepare.js";
import { register as registerBaselines } from "../src/cli/commands/baselines.js";
import { DEFAULT_SEED } from "../src/data/protocol.js";
import { readDataset } from "../src/data/dataset.js";
import { buildBaseline } from "../src/eval/baselines.js";
import { presetConfig, RunConfigSchema } from "../src/pipeline/config.js";
import { prepareStage } from "../src/pipeline/stages/prepare.js";
import { runLayout } from "../src/run/layout.js";

async function cli(...args: string[]): Promise<string> {
  const out: string[] = [];
  const spy = vi
    .spyOn(process.stdout, "write")
    .mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const err = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    const program = new Command("msr-rec").exitOverride();
    registerPrepare(program);
    registerBaselines(program);
    await program.parseAsync(["node", "msr-rec", ...args]);
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
  return out.join("");
}

describe("one default seed", () => {
  it("is a run's default seed", () => {
    expect(RunConfigSchema.parse({}).seed).toBe(DEFAULT_SEED);
  });

  it("`msr-rec prepare` without --seed writes the users a default run prepares, and `baselines` scores its random row", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-seed-"));
    try {
      const c = presetConfig("tiny", { runDir: join(dir, "run") });
      expect(c.seed).toBe(DEFAULT_SEED);
      await prepareStage(c);
      const d = c.dataset;
      // The stage generates twice the kept users (at least 100) as shoppers.
      const shoppers = Math.max(2 * d.users, 100);
      await cli(
        "prepare",
        "--format",
        "synthetic",
        "--out",
        join(dir, "cli"),
        "--users",
        String(d.users),
        "--synthetic-users",
        String(shoppers),
        "--items",
        String(d.syntheticItems),
        "--kcore",
        String(d.kCore),
        "--candidates",
        String(d.candidates),
      );
      const users = (p: string) => readFileSync(join(p, "users.jsonl"), "utf8");
      expect(users(join(dir, "cli"))).toBe(users(runLayout(c.runDir).dataset));

      const ds = await readDataset(join(dir, "cli"));
      const random = buildBaseline("random", ds.users, c.seed);
      const hits = ds.users.filter((u) => random.choose(u, "test") === u.test).length;
      const printed = await cli("baselines", "--data", join(dir, "cli"));
      expect(printed).toContain(`random     ${String(hits).padStart(6)} ${String(ds.users.length).padStart(6)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
