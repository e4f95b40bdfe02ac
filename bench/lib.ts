// Shared shape and helpers for benchmark suites. Each suite exports `run(): Promise<BenchResult>`;
// bench/run.ts runs one suite per fresh process and writes bench/results/<suite>.json.
import { cpus, totalmem, platform, arch } from "node:os";

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

/** Median wall time (ms) of `fn` over `runs` runs after `warmup` unmeasured runs. */
export async function medianMs(fn: () => Promise<unknown> | unknown, runs = 5, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
