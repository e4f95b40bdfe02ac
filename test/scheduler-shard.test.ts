// `--shard auto`: the scheduler's environment → shard i/N, for Slurm job arrays and Kubernetes
// Indexed Jobs. The expected shards are listed by hand from each scheduler's documented variables.
import { describe, expect, it } from "vitest";
import { parseShard } from "../src/teacher/synthesize.js";
import { shardFromScheduler } from "../src/util/scheduler-shard.js";

/** The variables Slurm sets in each task of `--array=min-max[:step]`. */
function slurmArray(min: number, max: number, step = 1, withCount = true): Record<string, string>[] {
  const ids: number[] = [];
  for (let id = min; id <= max; id += step) ids.push(id);
  return ids.map((id) => ({
    SLURM_ARRAY_JOB_ID: "4242",
    SLURM_ARRAY_TASK_ID: String(id),
    SLURM_ARRAY_TASK_MIN: String(min),
    SLURM_ARRAY_TASK_MAX: String(max),
    SLURM_ARRAY_TASK_STEP: String(step),
    ...(withCount ? { SLURM_ARRAY_TASK_COUNT: String(ids.length) } : {}),
  }));
}

describe("--shard auto under Slurm job arrays", () => {
  it("maps --array=0-3 to shards 0..3 of 4", () => {
    expect(slurmArray(0, 3).map((e) => parseShard("auto", e))).toEqual([0, 1, 2, 3].map((index) => ({ index, count: 4 })));
  });

  it("maps arrays that start at 1 or step by 2 to consecutive shards", () => {
    expect(slurmArray(1, 8).map((e) => parseShard("auto", e).index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(slurmArray(10, 16, 2).map((e) => parseShard("auto", e))).toEqual([0, 1, 2, 3].map((index) => ({ index, count: 4 })));
  });

  it("derives the count from MIN/MAX when SLURM_ARRAY_TASK_COUNT is absent (older Slurm)", () => {
    expect(slurmArray(0, 5, 1, false).map((e) => parseShard("auto", e).count)).toEqual([6, 6, 6, 6, 6, 6]);
  });

  it("takes an explicit count from auto/N, and refuses an index past it", () => {
    expect(shardFromScheduler("auto/8", { SLURM_ARRAY_TASK_ID: "5" })).toEqual({ index: 5, count: 8, scheduler: "slurm" });
    expect(() => shardFromScheduler("auto/4", { SLURM_ARRAY_TASK_ID: "5" })).toThrow(/shard 5 of 4, which is out of range/);
    expect(() => shardFromScheduler("auto", { SLURM_ARRAY_TASK_ID: "5" })).toThrow(/needs the array's size/);
    expect(() => shardFromScheduler("auto", { SLURM_ARRAY_TASK_ID: "x" })).toThrow(/not a non-negative integer/);
  });
});

describe("--shard auto under Kubernetes Indexed Jobs", () => {
  it("reads JOB_COMPLETION_INDEX with the count from the command line or MSR_REC_SHARD_COUNT", () => {
    expect(parseShard("auto/3", { JOB_COMPLETION_INDEX: "2" })).toEqual({ index: 2, count: 3 });
    expect(parseShard("auto", { JOB_COMPLETION_INDEX: "0", MSR_REC_SHARD_COUNT: "5" })).toEqual({ index: 0, count: 5 });
    expect(shardFromScheduler("auto/6", { JOB_COMPLETION_INDEX: "1", MSR_REC_SHARD_COUNT: "5" }).count).toBe(6);
    expect(() => parseShard("auto", { JOB_COMPLETION_INDEX: "0" })).toThrow(/needs the completion count: give --shard auto\/N or set MSR_REC_SHARD_COUNT/);
  });
});

describe("--shard auto without a scheduler", () => {
  it("says which variables it reads and what to do instead", () => {
    expect(() => parseShard("auto", {})).toThrow(/found no scheduler: .*SLURM_ARRAY_TASK_ID.*JOB_COMPLETION_INDEX.*--shard i\/N/);
    expect(() => parseShard("auto", { SLURM_ARRAY_TASK_ID: "0", JOB_COMPLETION_INDEX: "0" })).toThrow(/both/);
    expect(() => parseShard("autox", {})).toThrow(/"auto" or "auto\/N"/);
    expect(parseShard("1/3", {})).toEqual({ index: 1, count: 3 });
  });
});
