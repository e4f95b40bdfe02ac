// The CPUs this process may use: the one owner of that number, for the engine's default thread
// count and every worker pool. A batch job's allocation shows up in one of three places, and
// none of them is the machine's core count:
// - the affinity mask (taskset, Slurm's task/affinity, Kubernetes' static CPU manager):
//   os.availableParallelism() counts it (libuv reads sched_getaffinity);
// - a CFS quota (Docker --cpus, Kubernetes CPU limits, Slurm's task/cgroup): cgroup v2
//   `cpu.max` "QUOTA PERIOD", or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, on the process's
//   cgroup and every cgroup above it; the tightest one counts, rounded down (threads beyond the
//   quota get throttled, and llama.cpp's threads spin-wait on each other);
// - SLURM_CPUS_PER_TASK (a job's --cpus-per-task), else SLURM_CPUS_ON_NODE (the job's CPUs on
//   this node; Slurm sets no CPUS_PER_TASK when the job did not ask): a cluster without task
//   binding (TaskPlugin=task/none) enforces the allocation nowhere else.
// The answer is the smallest of them, at least 1.
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, relative, sep } from "node:path";

type Env = Readonly<Record<string, string | undefined>>;

export interface CpuLimits {
  /** CPUs in the affinity mask. */
  affinity: number;
  /** CPUs the cgroup CPU quota allows (rounded down, at least 1); null without a quota. */
  quota: number | null;
  /** SLURM_CPUS_PER_TASK, else SLURM_CPUS_ON_NODE; null outside a Slurm job. */
  slurm: number | null;
  /** The smallest of the above: what this process may use. */
  cpus: number;
}

export interface CpuSources {
  env?: Env;
  /** CPUs in the affinity mask (default os.availableParallelism()). */
  affinity?: number;
  /**
   * The folder holding this process's `cgroup` and `mountinfo` files (default /proc/self): a
   * test points it at a fake cgroup tree.
   */
  proc?: string;
}

interface CgroupMount {
  /** Where the hierarchy is mounted. */
  mountPoint: string;
  /** The cgroup path the mount's root corresponds to (not "/" inside some containers). */
  root: string;
  version: 1 | 2;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** The cgroup v2 mount and the v1 mount carrying the cpu controller, from a mountinfo text. */
function cgroupMounts(mountinfo: string): { v1?: CgroupMount; v2?: CgroupMount } {
  const out: { v1?: CgroupMount; v2?: CgroupMount } = {};
  for (const line of mountinfo.split("\n")) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const f = left.split(" ");
    const [fsType, , superOptions = ""] = right.split(" ");
    const mount = { root: unescapeMount(f[3] ?? "/"), mountPoint: unescapeMount(f[4] ?? "") };
    if (fsType === "cgroup2") out.v2 ??= { ...mount, version: 2 };
    else if (fsType === "cgroup" && superOptions.split(",").includes("cpu")) out.v1 ??= { ...mount, version: 1 };
  }
  return out;
}

/** mountinfo writes spaces, tabs, newlines and backslashes in paths as octal escapes. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** This process's cgroup path in the v2 hierarchy ("0::/path") and in the v1 cpu one ("N:cpu,...:/path"). */
function cgroupPaths(cgroup: string): { v1?: string; v2?: string } {
  const out: { v1?: string; v2?: string } = {};
  for (const line of cgroup.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === "0" && m[2] === "") out.v2 = m[3];
    else if (m[2]!.split(",").includes("cpu")) out.v1 = m[3];
  }
  return out;
}

/** A "QUOTA PERIOD" pair as CPUs (rounded down, at least 1); null for no quota. */
export function quotaCpus(quota: number, period: number): number | null {
  if (!(quota > 0) || !(period > 0)) return null;
  return Math.max(1, Math.floor(quota / period));
}

/** The quota of one cgroup folder; null when it sets none. */
function folderQuota(dir: string, version: 1 | 2): number | null {
  if (version === 2) {
    const text = readText(join(dir, "cpu.max"));
    const m = text ? /^(\S+)\s+(\d+)/.exec(text.trim()) : null;
    return m && m[1] !== "max" ? quotaCpus(Number(m[1]), Number(m[2])) : null;
  }
  const quota = readText(join(dir, "cpu.cfs_quota_us"));
  const period = readText(join(dir, "cpu.cfs_period_us"));
  return quota && period ? quotaCpus(Number(quota.trim()), Number(period.trim())) : null;
}

/** The tightest quota from the process's cgroup up to the hierarchy's mount point. */
function hierarchyQuota(mount: CgroupMount, path: string): number | null {
  const rel = relative(mount.root, path);
  // A cgroup outside the mounted subtree (another namespace's view): only the mount point is ours.
  const inside = rel === "" || (!rel.startsWith("..") && !rel.startsWith(sep));
  let dir = inside ? join(mount.mountPoint, rel) : mount.mountPoint;
  let best: number | null = null;
  for (;;) {
    if (existsSync(dir)) {
      const q = folderQuota(dir, mount.version);
      if (q !== null && (best === null || q < best)) best = q;
    }
    if (dir === mount.mountPoint || !dir.startsWith(mount.mountPoint)) return best;
    dir = join(dir, "..");
  }
}

/** CPUs the cgroup CPU quota allows this process; null when no quota applies (or no cgroups). */
export function cgroupCpuQuota(proc = "/proc/self"): number | null {
  const mountinfo = readText(join(proc, "mountinfo"));
  const cgroup = readText(join(proc, "cgroup"));
  if (!mountinfo || !cgroup) return null;
  const mounts = cgroupMounts(mountinfo);
  const paths = cgroupPaths(cgroup);
  const found = [
    mounts.v2 && paths.v2 !== undefined ? hierarchyQuota(mounts.v2, paths.v2) : null,
    mounts.v1 && paths.v1 !== undefined ? hierarchyQuota(mounts.v1, paths.v1) : null,
  ].filter((q): q is number => q !== null);
  return found.length > 0 ? Math.min(...found) : null;
}

function positive(v: string | undefined): number | null {
  return v !== undefined && /^\s*\d+\s*$/.test(v) && Number(v) > 0 ? Number(v) : null;
}

function slurmCpus(env: Env): number | null {
  return positive(env.SLURM_CPUS_PER_TASK) ?? positive(env.SLURM_CPUS_ON_NODE);
}

/** Each limit and the CPUs they leave this process (see the top of this file). */
export function cpuLimits(o: CpuSources = {}): CpuLimits {
  const affinity = Math.max(1, o.affinity ?? availableParallelism());
  const quota = cgroupCpuQuota(o.proc);
  const slurm = slurmCpus(o.env ?? process.env);
  const cpus = Math.max(1, Math.min(affinity, quota ?? Infinity, slurm ?? Infinity));
  return { affinity, quota, slurm, cpus };
}

/** The CPUs this process may use: min(affinity, cgroup quota, Slurm's CPUs per task), at least 1. */
export function allowedCpus(o: CpuSources = {}): number {
  return cpuLimits(o).cpus;
}

/** One line saying how many CPUs and why, for logs: "2 CPUs (affinity 8, cgroup quota 2)". */
export function describeCpus(l: CpuLimits = cpuLimits()): string {
  const parts = [
    `affinity ${l.affinity}`,
    ...(l.quota !== null ? [`cgroup quota ${l.quota}`] : []),
    ...(l.slurm !== null ? [`Slurm job ${l.slurm}`] : []),
  ];
  return `${l.cpus} CPU${l.cpus === 1 ? "" : "s"} (${parts.join(", ")})`;
}
