// Benchmark arguments: `npm run bench -- <suite> --flag value`. Each suite declares its flags with
// defaults; bench/run.ts checks every flag before any suite runs and prints a suite's --help.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseFlags, suiteHelp, timeRuns, type SuiteFlags } from "../bench/lib.js";
import { packageRoot } from "../src/util/paths.js";

const flags = {
  threads: { kind: "number", default: 2, help: "threads" },
  types: { kind: "list", default: ["F16", "Q4_0"], help: "weight types" },
  preset: { kind: "string", default: "small", help: "preset" },
  "gpu-layers": { kind: "number", help: "layers offloaded (default: the suite decides)" },
} as const satisfies SuiteFlags;

describe("parseFlags", () => {
  it("gives every flag its default when none is passed", () => {
    expect(parseFlags("x", flags, [])).toEqual({
      threads: 2,
      types: ["F16", "Q4_0"],
      preset: "small",
      "gpu-layers": undefined,
    });
  });

  it("reads --name value and --name=value, numbers as numbers and lists split on commas", () => {
    const v = parseFlags("x", flags, ["--threads", "8", "--types=Q8_0, F16", "--gpu-layers", "0", "--preset", "tiny"]);
    expect(v).toEqual({ threads: 8, types: ["Q8_0", "F16"], preset: "tiny", "gpu-layers": 0 });
  });

  it("refuses an unknown flag naming the known ones, a missing value and a non-number", () => {
    expect(() => parseFlags("ce", flags, ["--thread", "3"])).toThrow(
      /ce: unknown flag --thread; its flags: --threads, --types/,
    );
    expect(() => parseFlags("ce", flags, ["--threads"])).toThrow(/--threads needs a value/);
    expect(() => parseFlags("ce", flags, ["--threads", "two"])).toThrow(/--threads must be a number \(got "two"\)/);
    expect(() => parseFlags("ce", flags, ["--threads", ""])).toThrow(/must be a number/);
    expect(() => parseFlags("ce", flags, ["8"])).toThrow(/unexpected argument "8"/);
  });

  it("documents each flag with its default", () => {
    const help = suiteHelp("demo", { description: "a demo suite", flags });
    expect(help).toContain("--threads N\n      threads (default: 2)");
    expect(help).toContain("--types A,B\n      weight types (default: F16,Q4_0)");
    expect(help).toMatch(/--gpu-layers N\n {6}layers offloaded \(default: the suite decides\)$/m);
  });
});

describe("timeRuns", () => {
  it("runs the warm-up and exactly the measured runs, and reports their median", async () => {
    const delays = [30, 1, 2, 3, 50, 4];
    let calls = 0;
    const t = await timeRuns(
      async () => {
        await new Promise((r) => setTimeout(r, delays[calls++]!));
      },
      5,
      1,
    );
    expect(calls).toBe(6);
    expect(t.runs).toBe(5);
    // The warm-up's 30 ms is not a sample; the median of 1, 2, 3, 50, 4 ms (timer-rounded) is ~3 ms.
    expect(t.medianMs).toBeGreaterThanOrEqual(2.5);
    expect(t.medianMs).toBeLessThan(20);
    expect(t.meanMs).toBeGreaterThan(t.medianMs);
  });
});

describe("npm run bench (the compiled runner)", () => {
  const bench = (...args: string[]) =>
    spawnSync(process.execPath, [join(packageRoot, "dist", "bench", "run.js"), ...args], { encoding: "utf8" });

  it("lists the suites, and a suite's flags with --help", () => {
    const list = bench("--help");
    expect(list.status).toBe(0);
    for (const s of ["ce", "data", "gpu-8b", "train-memory", "train-memory-gpu"])
      expect(list.stdout).toMatch(new RegExp(`^  ${s} `, "m"));
    const help = bench("gpu-8b", "--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("--users N");
    expect(help.stdout).toContain("(default: 1500)");
  });

  it("refuses a bad flag or suite before running anything", () => {
    const typo = bench("data", "--mb", "1", "ce", "--thread", "2");
    expect(typo.status).toBe(1);
    expect(typo.stderr).toContain("ce: unknown flag --thread; its flags: --threads");
    expect(typo.stdout).not.toContain("written:"); // data did not run first
    const suite = bench("nosuch");
    expect(suite.status).toBe(1);
    expect(suite.stderr).toMatch(/unknown benchmark suite "nosuch"; known: .*train-memory-gpu/);
    const number = bench("gpu-8b", "--users", "many");
    expect(number.stderr).toContain('gpu-8b: --users must be a number (got "many")');
  });
});
