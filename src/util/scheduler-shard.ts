// `--shard auto`: which shard of a split run this process is, read from the batch scheduler that
// started it, so one job script serves every task of an array.
//
// - Slurm job arrays (`sbatch --array=0-7`, or `1-8`, or `0-14:2`): SLURM_ARRAY_TASK_ID with
//   SLURM_ARRAY_TASK_MIN / _MAX / _STEP (and SLURM_ARRAY_TASK_COUNT when Slurm sets it). The
//   shard index is the task's position in the array, so arrays need not start at 0.
// - Kubernetes Indexed Jobs (`completionMode: Indexed`): JOB_COMPLETION_INDEX is the index; the
//   pod is not told the completion count, so it comes from `--shard auto/N` or MSR_REC_SHARD_COUNT
//   (the manifests in examples/kubernetes/ set it next to `completions`).

export interface SchedulerShard {
  index: number;
  count: number;
  scheduler: "slurm" | "kubernetes";
}

type Env = Readonly<Record<string, string | undefined>>;

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

function slurmShard(env: Env, count: number | undefined): SchedulerShard {
  const id = int(env, "SLURM_ARRAY_TASK_ID")!;
  const min = int(env, "SLURM_ARRAY_TASK_MIN") ?? 0;
  const step = int(env, "SLURM_ARRAY_TASK_STEP") ?? 1;
  const max = int(env, "SLURM_ARRAY_TASK_MAX");
  if (step < 1) throw new Error(`SLURM_ARRAY_TASK_STEP="${env.SLURM_ARRAY_TASK_STEP}" must be at least 1`);
  if ((id - min) % step !== 0) throw new Error(`SLURM_ARRAY_TASK_ID ${id} is not on the array's grid (min ${min}, step ${step})`);
  const n = count ?? int(env, "SLURM_ARRAY_TASK_COUNT") ?? (max !== undefined ? Math.floor((max - min) / step) + 1 : undefined);
  if (n === undefined) {
    throw new Error("--shard auto under a Slurm array needs the array's size: Slurm sets SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX; or give it as --shard auto/N");
  }
  return checked({ index: (id - min) / step, count: n, scheduler: "slurm" }, "the Slurm array");
}

function kubernetesShard(env: Env, count: number | undefined): SchedulerShard {
  const index = int(env, "JOB_COMPLETION_INDEX")!;
  const n = count ?? int(env, "MSR_REC_SHARD_COUNT");
  if (n === undefined) {
    throw new Error("--shard auto under a Kubernetes Indexed Job needs the completion count: give --shard auto/N or set MSR_REC_SHARD_COUNT to the Job's `completions`");
  }
  return checked({ index, count: n, scheduler: "kubernetes" }, "the Kubernetes Indexed Job");
}

/**
 * The shard of this process from its scheduler's environment. `spec` is "auto" or "auto/N" (N: the
 * shard count, overriding what the environment says).
 */
export function shardFromScheduler(spec: string, env: Env = process.env): SchedulerShard {
  const m = /^auto(?:\/(\d+))?$/.exec(spec.trim());
  if (!m) throw new Error(`--shard auto must look like "auto" or "auto/N", got "${spec}"`);
  const count = m[1] !== undefined ? Number(m[1]) : undefined;
  const slurm = env.SLURM_ARRAY_TASK_ID !== undefined && env.SLURM_ARRAY_TASK_ID !== "";
  const k8s = env.JOB_COMPLETION_INDEX !== undefined && env.JOB_COMPLETION_INDEX !== "";
  if (slurm && k8s) throw new Error("--shard auto found both a Slurm array task and a Kubernetes completion index; give --shard i/N explicitly");
  if (slurm) return slurmShard(env, count);
  if (k8s) return kubernetesShard(env, count);
  throw new Error(
    "--shard auto found no scheduler: it reads Slurm job arrays (SLURM_ARRAY_TASK_ID) and Kubernetes Indexed Jobs " +
      "(JOB_COMPLETION_INDEX). Outside them give the shard as --shard i/N.",
  );
}
