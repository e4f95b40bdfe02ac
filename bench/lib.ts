// Shared shape and helpers for benchmark suites. Each suite exports `description` (one line),
// `flags` (its arguments, each with a default and a help line) and `run(flags)`; bench/run.ts
// parses `npm run bench -- <suite> --flag value`, runs one suite per fresh process and writes
// bench/results/<suite>.json.
import { arch, cpus, platform, totalmem } from "node:os";
import { Bench } from "tinybench";

export interface BenchMeasurement {
  name: string;
  value: number;
  unit: string;
}

export interface BenchResult {
  suite: string;
  machine: string;
  date: string;
  results: BenchMeasurement[];
  ratios: Record<string, number>;
}

export function machineInfo(): string {
  const c = cpus();
  const gib = (totalmem() / 2 ** 30).toFixed(0);
  return `${platform()}-${arch()}, ${c.length} x ${c[0]?.model.trim() ?? "unknown CPU"}, ${gib} GiB, node ${process.version}`;
}

export function newResult(suite: string, machine = machineInfo()): BenchResult {
  return { suite, machine, date: new Date().toISOString(), results: [], ratios: {} };
}

// ---- timing ------------------------------------------------------------------------------------

export interface Timing {
  medianMs: number;
  meanMs: number;
  /** Half-width of the 95% confidence interval of the mean, in % of the mean: how noisy the runs were. */
  rmePercent: number;
  runs: number;
}

/**
 * Times `fn` with tinybench: `warmup` unmeasured runs, then exactly `runs` measured ones (no time
 * budget: on the models one run takes seconds, and each suite says how many it can afford).
 */
export async function timeRuns(fn: () => Promise<unknown> | unknown, runs = 5, warmup = 1): Promise<Timing> {
  const bench = new Bench({
    iterations: runs,
    time: 0,
    warmup: warmup > 0,
    warmupIterations: warmup,
    warmupTime: 0,
    throws: true,
  });
  // async: true spares tinybench calling fn once more to find out whether it returns a promise.
  bench.add("fn", async () => void (await fn()), { async: true });
  const [task] = await bench.run();
  const r = task!.result;
  if (r.state !== "completed") throw new Error(`benchmark task ended as ${r.state}`);
  return { medianMs: r.latency.p50, meanMs: r.latency.mean, rmePercent: r.latency.rme, runs: r.latency.samplesCount };
}

/** Median wall time (ms) of `fn` over `runs` runs after `warmup` unmeasured runs. */
export async function medianMs(fn: () => Promise<unknown> | unknown, runs = 5, warmup = 1): Promise<number> {
  return (await timeRuns(fn, runs, warmup)).medianMs;
}

/**
 * Median wall times (ms) of several functions measured in alternating rounds (each round runs every
 * function once, in rotating order, after `warmup` unmeasured rounds): on a shared machine a load
 * change then hits all of them alike, so their ratios stay meaningful.
 */
export async function interleavedMedianMs(fns: (() => Promise<unknown>)[], runs = 5, warmup = 1): Promise<number[]> {
  const times: number[][] = fns.map(() => []);
  for (let round = 0; round < warmup + runs; round++) {
    for (let k = 0; k < fns.length; k++) {
      const i = (k + round) % fns.length;
      const t0 = performance.now();
      await fns[i]!();
      if (round >= warmup) times[i]!.push(performance.now() - t0);
    }
  }
  return times.map((t) => median(t)!);
}

/** The median of some numbers; null for none. */
export function median(xs: readonly number[]): number | null {
  if (!xs.length) return null;
  const sorted = xs.slice().sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

// ---- arguments ---------------------------------------------------------------------------------

/** One `--name value` argument of a suite. Without a default, the suite decides (its help says how). */
export type FlagSpec =
  | { kind: "number"; default?: number; help: string }
  | { kind: "string"; default?: string; help: string }
  | { kind: "list"; default?: readonly string[]; help: string };

export type SuiteFlags = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S["kind"] extends "number"
  ? number
  : S["kind"] extends "list"
    ? readonly string[]
    : string;
/** A suite's parsed arguments: a flag with a default always has a value. */
export type FlagValues<F extends SuiteFlags> = {
  [K in keyof F]: F[K] extends { default: unknown } ? ValueOf<F[K]> : ValueOf<F[K]> | undefined;
};

/** What a suite module exports. */
export interface Suite<F extends SuiteFlags = SuiteFlags> {
  description: string;
  flags: F;
  run(flags: FlagValues<F>): Promise<BenchResult>;
}

function shown(spec: FlagSpec): string {
  if (spec.default === undefined) return "";
  return ` (default: ${Array.isArray(spec.default) ? spec.default.join(",") : spec.default})`;
}

/** The `npm run bench -- <suite> --help` text. */
export function suiteHelp(name: string, suite: Pick<Suite, "description" | "flags">): string {
  const lines = Object.entries(suite.flags).map(([flag, spec]) => {
    const value = spec.kind === "number" ? "N" : spec.kind === "list" ? "A,B" : "VALUE";
    return `  --${flag} ${value}\n      ${spec.help}${shown(spec)}`;
  });
  return [
    `npm run bench -- ${name} [--flag value ...]`,
    `  ${suite.description}`,
    "",
    ...(lines.length ? lines : ["  (no flags)"]),
  ].join("\n");
}

/** Parses `--name value` / `--name=value` pairs against a suite's flags; throws saying what is wrong. */
export function parseFlags<F extends SuiteFlags>(name: string, flags: F, argv: readonly string[]): FlagValues<F> {
  const values: Record<string, number | string | readonly string[] | undefined> = {};
  for (const [flag, spec] of Object.entries(flags)) values[flag] = spec.default;
  const known = Object.keys(flags).map((f) => `--${f}`);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (!m)
      throw new Error(
        `${name}: unexpected argument "${arg}"; flags are --name value (see \`npm run bench -- ${name} --help\`)`,
      );
    const [, flag, inline] = m as unknown as [string, string, string | undefined];
    const spec = flags[flag];
    if (!spec) {
      const list = known.length ? known.join(", ") : "none";
      throw new Error(`${name}: unknown flag --${flag}; its flags: ${list}`);
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined) throw new Error(`${name}: --${flag} needs a value`);
    if (spec.kind === "number") {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n))
        throw new Error(`${name}: --${flag} must be a number (got "${raw}")`);
      values[flag] = n;
    } else if (spec.kind === "list") {
      values[flag] = raw
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    } else {
      values[flag] = raw;
    }
  }
  return values as FlagValues<F>;
}

/** Keeps only the entries of `list` that are in `allowed` (case-insensitively); throws otherwise. */
export function oneOfEach<T extends string>(flag: string, list: readonly string[], allowed: readonly T[]): T[] {
  return list.map((item) => {
    const hit = allowed.find((a) => a.toLowerCase() === item.toLowerCase());
    if (!hit) throw new Error(`--${flag}: "${item}" is not one of ${allowed.join(", ")}`);
    return hit;
  });
}
