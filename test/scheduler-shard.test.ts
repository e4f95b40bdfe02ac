// `--shard auto`: the scheduler's environment → shard i/N, for Slurm job arrays and Kubernetes
// Indexed Jobs. The expected shards are listed by hand from each scheduler's documented variables.
import { describe, expect, it } from "vitest";
import { parseShard } from "../src/teacher/synthesize.js";
import { parseShardSpec, resolveSchedulerShard, shardFromScheduler } from "../src/util/scheduler-shard.js";

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
    expect(slurmArray(0, 3).map((e) => parseShard("auto", e))).toEqual(
      [0, 1, 2, 3].map((index) => ({ index, count: 4 })),
    );
  });

  it("maps arrays that start at 1 or step by 2 to consecutive shards", () => {
    expect(slurmArray(1, 8).map((e) => parseShard("auto", e).index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(slurmArray(10, 16, 2).map((e) => parseShard("auto", e))).toEqual(
      [0, 1, 2, 3].map((index) => ({ index, count: 4 })),
    );
  });

  it("derives the count from MIN/MAX when SLURM_ARRAY_TASK_COUNT is absent (older Slurm)", () => {
    expect(slurmArray(0, 5, 1, false).map((e) => parseShard("auto", e).count)).toEqual([6, 6, 6, 6, 6, 6]);
  });

  it("takes an explicit count from auto/N, and refuses an index past it", () => {
    expect(shardFromScheduler("auto/8", { SLURM_ARRAY_TASK_ID: "5" })).toEqual({
      index: 5,
      count: 8,
      scheduler: "slurm",
    });
    expect(() => shardFromScheduler("auto/4", { SLURM_ARRAY_TASK_ID: "5" })).toThrow(
      /shard 5 of 4, which is out of range/,
    );
    expect(() => shardFromScheduler("auto", { SLURM_ARRAY_TASK_ID: "5" })).toThrow(/needs the array's size/);
    expect(() => shardFromScheduler("auto", { SLURM_ARRAY_TASK_ID: "x" })).toThrow(/not a non-negative integer/);
  });
});

describe("--shard auto under Kubernetes Indexed Jobs", () => {
  it("reads JOB_COMPLETION_INDEX with the count from the command line or MSR_REC_SHARD_COUNT", () => {
    expect(parseShard("auto/3", { JOB_COMPLETION_INDEX: "2" })).toEqual({ index: 2, count: 3 });
    expect(parseShard("auto", { JOB_COMPLETION_INDEX: "0", MSR_REC_SHARD_COUNT: "5" })).toEqual({ index: 0, count: 5 });
    expect(shardFromScheduler("auto/6", { JOB_COMPLETION_INDEX: "1", MSR_REC_SHARD_COUNT: "5" }).count).toBe(6);
    expect(() => parseShard("auto", { JOB_COMPLETION_INDEX: "0" })).toThrow(
      /needs the completion count: give --shard auto\/N or set MSR_REC_SHARD_COUNT/,
    );
  });
});

describe("--shard auto without a scheduler", () => {
  it("says which variables it reads and what to do instead", () => {
    expect(() => parseShard("auto", {})).toThrow(
      /found no scheduler: .*SLURM_ARRAY_TASK_ID.*JOB_COMPLETION_INDEX.*--shard i\/N/,
    );
    expect(() => parseShard("auto", { SLURM_ARRAY_TASK_ID: "0", JOB_COMPLETION_INDEX: "0" })).toThrow(/both/);
    expect(() => parseShard("autox", {})).toThrow(/"auto" or "auto\/N"/);
    expect(parseShard("1/3", {})).toEqual({ index: 1, count: 3 });
  });
});

describe("--shard auto for a task resubmitted on its own", () => {
  // The variables of a task of an array submitted as --array=IDS, with its job id.
  const task = (jobId: string, id: number, ids: number[]) => ({
    SLURM_ARRAY_JOB_ID: jobId,
    SLURM_ARRAY_TASK_ID: String(id),
    SLURM_ARRAY_TASK_MIN: String(Math.min(...ids)),
    SLURM_ARRAY_TASK_MAX: String(Math.max(...ids)),
    // What Slurm 22.05 sets for a list such as 0,3,5: STEP 1 and COUNT 3 (seen on the test cluster).
    SLURM_ARRAY_TASK_STEP: String(
      ids.length > 1 && ids.every((x, k) => k === 0 || x - ids[k - 1]! === ids[1]! - ids[0]!) ? ids[1]! - ids[0]! : 1,
    ),
    SLURM_ARRAY_TASK_COUNT: String(ids.length),
  });
  const range = (a: number, b: number, step = 1) =>
    Array.from({ length: Math.floor((b - a) / step) + 1 }, (_, k) => a + k * step);

  it("the original array's tasks record its layout; a task of another array inside it gets its original shard", () => {
    const original = resolveSchedulerShard({}, task("100", 2, range(0, 3)));
    expect(original.shard).toEqual({ index: 2, count: 4, scheduler: "slurm" });
    expect(original.layout).toEqual({ scheduler: "slurm", arrayJobId: "100", min: 0, step: 1, count: 4 });
    const recorded = original.layout!;
    // sbatch --array=2 (with or without the count): shard 2/4, not 0/1 or 0/4.
    for (const spec of [{}, { count: 4 }]) {
      const again = resolveSchedulerShard(spec, task("200", 2, [2]), recorded);
      expect(again.shard).toEqual({ index: 2, count: 4, scheduler: "slurm" });
      expect(again.layout).toBeNull();
      expect(again.how).toMatch(/task 2 of array 100 \(--array=0-3\)/);
    }
    // An array that did not start at 0, and one with a step: the recorded positions hold.
    const fromOne = resolveSchedulerShard({}, task("300", 3, range(1, 4))).layout!;
    expect(resolveSchedulerShard({ count: 4 }, task("301", 3, [3]), fromOne).shard.index).toBe(2);
    const stepped = resolveSchedulerShard({}, task("400", 14, range(10, 16, 2))).layout!;
    expect(resolveSchedulerShard({}, task("401", 14, [14]), stepped).shard).toEqual({
      index: 2,
      count: 4,
      scheduler: "slurm",
    });
    // A requeued task keeps its array's job id: its own array's positions.
    expect(resolveSchedulerShard({}, task("100", 3, range(0, 3)), recorded).layout).toEqual(recorded);
  });

  it("without a record, auto/N takes a task id of a smaller array as its shard number", () => {
    const r = resolveSchedulerShard({ count: 4 }, task("200", 2, [2]));
    expect([r.shard.index, r.shard.count, r.layout]).toEqual([2, 4, null]);
    expect(() => resolveSchedulerShard({ count: 4 }, task("200", 5, [5]))).toThrow(
      /shard 5 of 4, which is out of range, and no earlier array .* recorded/,
    );
    // A whole array of N tasks is the split itself, wherever it starts.
    expect(resolveSchedulerShard({ count: 4 }, task("201", 4, range(1, 4))).shard.index).toBe(3);
    expect(() => resolveSchedulerShard({ count: 2 }, task("202", 1, range(0, 3)))).toThrow(
      /has 4 tasks, more than the 2 shards/,
    );
  });

  it("an array listed unevenly fails saying why, unless a record or the count places its tasks", () => {
    const ids = [0, 3, 5];
    expect(() => resolveSchedulerShard({}, task("500", 3, ids))).toThrow(
      /given as a list \(3 tasks between 0 and 5\); Slurm exports .* not the list.*--shard auto\/N/,
    );
    expect(resolveSchedulerShard({ count: 6 }, task("500", 5, ids)).shard.index).toBe(5);
    const recorded = { scheduler: "slurm" as const, arrayJobId: "100", min: 0, step: 1, count: 6 };
    expect(ids.map((id) => resolveSchedulerShard({}, task("500", id, ids), recorded).shard.index)).toEqual([0, 3, 5]);
  });

  it("a bigger new array, or another count, is a new split and records itself", () => {
    const recorded = { scheduler: "slurm" as const, arrayJobId: "100", min: 0, step: 1, count: 4 };
    const bigger = resolveSchedulerShard({}, task("600", 1, range(0, 7)), recorded);
    expect([bigger.shard.count, bigger.layout?.arrayJobId]).toEqual([8, "600"]);
    const other = resolveSchedulerShard({ count: 2 }, task("601", 1, range(0, 1)), recorded);
    expect([other.shard.index, other.shard.count, other.layout?.count]).toEqual([1, 2, 2]);
    // With the count of the record, a task id outside it is refused, naming the record.
    expect(() => resolveSchedulerShard({ count: 4 }, task("602", 7, [7]), recorded)).toThrow(
      /task 7 is not a task of array 100 \(--array=0-3\)/,
    );
  });

  it("Kubernetes: the completion index is the shard; the layout records the count", () => {
    const r = resolveSchedulerShard({}, { JOB_COMPLETION_INDEX: "3", MSR_REC_SHARD_COUNT: "8" });
    expect(r.shard).toEqual({ index: 3, count: 8, scheduler: "kubernetes" });
    expect(r.layout).toEqual({ scheduler: "kubernetes", arrayJobId: null, min: 0, step: 1, count: 8 });
  });
});

describe("--shard syntax", () => {
  it("parses i/N, auto and auto/N, and names what it wants otherwise", () => {
    expect(parseShardSpec("2/4")).toEqual({ index: 2, count: 4 });
    expect(parseShardSpec("auto")).toEqual({ auto: true });
    expect(parseShardSpec("auto/4")).toEqual({ auto: true, count: 4 });
    expect(() => parseShardSpec("auto/0")).toThrow(/N >= 1/);
    expect(() => parseShardSpec("4/4")).toThrow(/0 <= i < N/);
    expect(() => parseShardSpec("auto/x")).toThrow(/"auto" or "auto\/N"/);
  });
});
