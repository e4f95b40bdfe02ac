// `--shard auto`: which shard of a split run this process is, read from the batch scheduler that
// started it, so one job script serves every task of an array.
//
// - Slurm job arrays (`sbatch --array=0-7`, or `1-8`, or `0-14:2`): SLURM_ARRAY_TASK_ID with
//   SLURM_ARRAY_TASK_MIN / _MAX / _STEP / _COUNT. The shard index is the task's position in the
//   array, so arrays need not start at 0.
// - Kubernetes Indexed Jobs (`completionMode: Indexed`): JOB_COMPLETION_INDEX is the index (a
//   retried pod keeps it); the pod is not told the completion count, so it comes from
//   `--shard auto/N` or MSR_REC_SHARD_COUNT (the manifests in examples/kubernetes/ set it next
//   to `completions`).
//
// Recovery. A failed task resubmitted on its own (`sbatch --array=2 ...`) is the only task of a
// new array, whose MIN, MAX and COUNT say nothing of the original one. So the first task of an
// array records the array's layout (job id, MIN, STEP, count) under the shards folder
// (shard-folders.ts), and a task of another array that fits inside a recorded layout takes its
// shard from it: task 2 is shard 2/4 again. Without a record, `auto/N` takes a task of an array
// smaller than N by its id: the shard number (arrays numbered from 0, as examples/slurm submits
// them). An array given as a list (`--array=0,3,5`) cannot be placed: Slurm exports its MIN, MAX
// and COUNT but not the list; it works through a record or with auto/N only.

export interface Shard {
  index: number;
  count: number;
}

export interface SchedulerShard extends Shard {
  scheduler: "slurm" | "kubernetes";
}

/** `--shard` as given: shard i of N, or "auto" / "auto/N" (resolved from the scheduler). */
export type ShardSpec = Shard | { auto: true; count?: number };

/** What the first task of an array records under the shards folder (see the top of this file). */
export interface ArrayLayout {
  scheduler: "slurm" | "kubernetes";
  /** Slurm's SLURM_ARRAY_JOB_ID; null under Kubernetes (a retried pod keeps its index anyway). */
  arrayJobId: string | null;
  /** The task id of shard 0 and the id step between shards. */
  min: number;
  step: number;
  count: number;
}

export interface ResolvedShard {
  shard: SchedulerShard;
  /** How the shard was found, for the job's log. */
  how: string;
  /** The layout this task's array defines, to record; null when a recorded one was used. */
  layout: ArrayLayout | null;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Parses "i/N" (0 <= i < N), "auto" or "auto/N"; says what it wants otherwise. */
export function parseShardSpec(s: string): ShardSpec {
  const t = s.trim();
  const auto = /^auto(?:\/(\d+))?$/.exec(t);
  if (auto) {
    if (auto[1] !== undefined && Number(auto[1]) < 1) throw new Error(`--shard auto/N needs N >= 1, got "${s}"`);
    return auto[1] !== undefined ? { auto: true, count: Number(auto[1]) } : { auto: true };
  }
  if (t.startsWith("auto")) throw new Error(`--shard auto must look like "auto" or "auto/N", got "${s}"`);
  const m = /^(\d+)\/(\d+)$/.exec(t);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count)
    throw new Error(`--shard must look like i/N with 0 <= i < N (e.g. 0/4), or auto, got "${s}"`);
  return { index, count };
}

export function isAuto(spec: ShardSpec): spec is { auto: true; count?: number } {
  return "auto" in spec;
}

function int(env: Env, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v.trim() === "") return undefined;
  if (!/^\d+$/.test(v.trim())) throw new Error(`${name}="${v}" is not a non-negative integer`);
  return Number(v.trim());
}

function checked(shard: SchedulerShard, source: string): SchedulerShard {
  if (!(shard.count >= 1) || !(shard.index >= 0 && shard.index < shard.count)) {
    throw new Error(`--shard auto: ${source} gives shard ${shard.index} of ${shard.count}, which is out of range`);
  }
  return shard;
}

const layoutText = (l: ArrayLayout) => `${l.min}-${l.min + (l.count - 1) * l.step}${l.step > 1 ? `:${l.step}` : ""}`;

/** The position of task `id` in a recorded layout, or null when it is not one of its tasks. */
function positionIn(l: ArrayLayout, id: number): number | null {
  const k = (id - l.min) / l.step;
  return Number.isInteger(k) && k >= 0 && k < l.count ? k : null;
}

function slurmShard(env: Env, given: number | undefined, recorded: ArrayLayout | null): ResolvedShard {
  const id = int(env, "SLURM_ARRAY_TASK_ID")!;
  const jobId = env.SLURM_ARRAY_JOB_ID?.trim() || null;
  const min = int(env, "SLURM_ARRAY_TASK_MIN") ?? 0;
  const max = int(env, "SLURM_ARRAY_TASK_MAX");
  const step = int(env, "SLURM_ARRAY_TASK_STEP") ?? 1;
  if (step < 1) throw new Error(`SLURM_ARRAY_TASK_STEP="${env.SLURM_ARRAY_TASK_STEP}" must be at least 1`);
  const span = max !== undefined ? Math.floor((max - min) / step) + 1 : undefined;
  const tasks = int(env, "SLURM_ARRAY_TASK_COUNT") ?? span;
  // A list such as 0,3,5: Slurm exports MIN 0, MAX 5, STEP 1 and COUNT 3, not the ids.
  const listed = (tasks !== undefined && span !== undefined && tasks !== span) || (id - min) % step !== 0;

  // 1. An array inside the recorded one (a resubmitted part of it): the recorded positions. The
  // test looks at the array, not the task, so that all tasks of one array decide alike; without
  // a count, an array reaching past the record is a new split.
  if (
    recorded &&
    recorded.scheduler === "slurm" &&
    recorded.arrayJobId !== jobId &&
    (given === undefined || given === recorded.count)
  ) {
    const inside =
      given !== undefined ||
      (positionIn(recorded, min) !== null &&
        (max === undefined || positionIn(recorded, max) !== null) &&
        (tasks === 1 || listed || step % recorded.step === 0));
    if (inside) {
      const k = positionIn(recorded, id);
      if (k === null) {
        throw new Error(
          `--shard auto: task ${id} is not a task of array ${recorded.arrayJobId ?? "?"} (--array=${layoutText(recorded)}), whose layout this stage recorded; resubmit one of its ids, or give --shard i/${recorded.count}`,
        );
      }
      return {
        shard: { index: k, count: recorded.count, scheduler: "slurm" },
        how: `task ${id} of array ${recorded.arrayJobId ?? "?"} (--array=${layoutText(recorded)}), as recorded by its first task`,
        layout: null,
      };
    }
  }
  // 2. A count, and fewer tasks than shards (or a list): the task id is the shard number.
  if (given !== undefined && (tasks === undefined || tasks < given || listed)) {
    if (id >= given) {
      throw new Error(
        `--shard auto/${given}: task ${id} gives shard ${id} of ${given}, which is out of range, and no earlier array of this stage recorded how its tasks map to shards; ` +
          `resubmit with the task ids of the original array (numbered from 0 they are the shard numbers), or give --shard i/${given}`,
      );
    }
    return {
      shard: { index: id, count: given, scheduler: "slurm" },
      how: `task id ${id} as the shard number (no recorded array this task belongs to)`,
      layout: null,
    };
  }
  // 3. This array is the whole split.
  if (listed) {
    throw new Error(
      `--shard auto: task ${id} belongs to an array given as a list (${tasks} tasks between ${min} and ${max}); Slurm exports the array's MIN, MAX, STEP and COUNT but not the list, ` +
        "so the task's place in it is unknown. Give the shard count: with --shard auto/N a task id is its shard number (submit --array=0-(N-1), resubmit any ids of it, " +
        "e.g. --array=1,3); or run one shard as a plain job with --shard i/N",
    );
  }
  const n = given ?? tasks;
  if (n === undefined) {
    throw new Error(
      "--shard auto under a Slurm array needs the array's size: Slurm sets SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX; or give it as --shard auto/N",
    );
  }
  if (given !== undefined && tasks !== undefined && tasks > given) {
    throw new Error(
      `--shard auto/${given}: this array has ${tasks} tasks, more than the ${given} shards; submit --array=0-${given - 1} or give the array's size`,
    );
  }
  const shard = checked({ index: (id - min) / step, count: n, scheduler: "slurm" }, "the Slurm array");
  return {
    shard,
    how: `task ${id} of array ${jobId ?? "?"} (--array=${min}-${max ?? "?"}${step > 1 ? `:${step}` : ""})`,
    layout: { scheduler: "slurm", arrayJobId: jobId, min, step, count: n },
  };
}

function kubernetesShard(env: Env, given: number | undefined): ResolvedShard {
  const index = int(env, "JOB_COMPLETION_INDEX")!;
  const n = given ?? int(env, "MSR_REC_SHARD_COUNT");
  if (n === undefined) {
    throw new Error(
      "--shard auto under a Kubernetes Indexed Job needs the completion count: give --shard auto/N or set MSR_REC_SHARD_COUNT to the Job's `completions`",
    );
  }
  const shard = checked({ index, count: n, scheduler: "kubernetes" }, "the Kubernetes Indexed Job");
  return {
    shard,
    how: `completion index ${index} of ${n}`,
    layout: { scheduler: "kubernetes", arrayJobId: null, min: 0, step: 1, count: n },
  };
}

/**
 * The shard of this process from its scheduler's environment and, for a resubmitted task, the
 * layout its original array recorded (see the top of this file).
 */
export function resolveSchedulerShard(
  spec: { count?: number },
  env: Env,
  recorded: ArrayLayout | null = null,
): ResolvedShard {
  const slurm = env.SLURM_ARRAY_TASK_ID !== undefined && env.SLURM_ARRAY_TASK_ID !== "";
  const k8s = env.JOB_COMPLETION_INDEX !== undefined && env.JOB_COMPLETION_INDEX !== "";
  if (slurm && k8s)
    throw new Error(
      "--shard auto found both a Slurm array task and a Kubernetes completion index; give --shard i/N explicitly",
    );
  if (slurm) return slurmShard(env, spec.count, recorded);
  if (k8s) return kubernetesShard(env, spec.count);
  throw new Error(
    "--shard auto found no scheduler: it reads Slurm job arrays (SLURM_ARRAY_TASK_ID) and Kubernetes Indexed Jobs " +
      "(JOB_COMPLETION_INDEX). Outside them give the shard as --shard i/N.",
  );
}

/**
 * The shard of this process from its scheduler's environment alone (no recorded layout). `spec`
 * is "auto" or "auto/N" (N: the shard count, overriding what the environment says).
 */
export function shardFromScheduler(spec: string, env: Env = process.env): SchedulerShard {
  const parsed = parseShardSpec(spec);
  if (!isAuto(parsed)) throw new Error(`--shard auto must look like "auto" or "auto/N", got "${spec}"`);
  return resolveSchedulerShard(parsed, env).shard;
}
