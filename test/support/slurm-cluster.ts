// A real one-node Slurm cluster for tests: scripts/slurm-local.sh starts munged, slurmctld and
// slurmd with everything under a temp folder; tests submit with sbatch and read each job's final
// state from `scontrol show job` (there is no accounting database, so no sacct; the cluster keeps
// finished jobs for an hour).
//
//   const slurm = await startSlurmCluster();        // in beforeAll; null + printed reason: skip
//   const id = slurm.sbatch(["--array=0-2", script, "synthesize"], { RUN_CONFIG: config });
//   const records = await slurm.waitJobs([id], 120_000);  // one record per array task
//   afterAll(() => slurm?.stop());
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../../src/util/paths.js";

const script = join(packageRoot, "scripts", "slurm-local.sh");

/** The states a job leaves only if someone requeues it. */
export const FINAL_STATES = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "BOOT_FAIL",
  "DEADLINE",
  "PREEMPTED",
]);

/** One line of `scontrol show job -o`: one job, or one task of an array (or its pending rest). */
export interface SlurmJob {
  /** "12" for a plain job, "12_3" for array task 3; "12_[4-7]" for tasks not yet started. */
  id: string;
  jobId: string;
  name: string;
  state: string;
  reason: string;
  exitCode: string;
  /** The run time as Slurm prints it, e.g. 00:00:12. */
  elapsed: string;
  dependency: string;
  /** Every field as scontrol printed it (CPUs/Task, MinMemoryNode, TresPerNode, StdOut, ...). */
  fields: Record<string, string>;
}

export function parseJobRecord(line: string): SlurmJob {
  const fields: Record<string, string> = {};
  // Values never contain spaces except the last ones we do not read (Command may: keep it whole).
  for (const m of line.matchAll(/(?:^|\s)([A-Za-z/:]+)=(\S*)/g)) fields[m[1]!] ??= m[2]!;
  const task = fields.ArrayTaskId;
  const id =
    fields.ArrayJobId && task !== undefined
      ? `${fields.ArrayJobId}_${/^\d+$/.test(task) ? task : `[${task}]`}`
      : fields.JobId!;
  return {
    id,
    jobId: fields.JobId!,
    name: fields.JobName ?? "",
    state: fields.JobState ?? "",
    reason: fields.Reason ?? "",
    exitCode: fields.ExitCode ?? "",
    elapsed: fields.RunTime ?? "",
    dependency: fields.Dependency ?? "",
    fields,
  };
}

/** The jobs as a table: id, name, state, elapsed, exit code, reason. */
export function jobTable(jobs: SlurmJob[]): string {
  const rows = [
    ["JOBID", "NAME", "STATE", "ELAPSED", "EXIT", "REASON"],
    ...jobs.map((j) => [j.id, j.name, j.state, j.elapsed, j.exitCode, j.reason]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r
        .map((v, c) => v.padEnd(widths[c]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SlurmCluster {
  /** SLURM_CONF for the client commands and the jobs; merge it into a job's environment. */
  readonly env: { SLURM_CONF: string };

  constructor(readonly dir: string) {
    this.env = { SLURM_CONF: join(dir, "etc", "slurm.conf") };
  }

  /** Runs a command against this cluster; throws with its output when it fails. */
  run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): string {
    const r = spawnSync(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env, ...this.env },
      encoding: "utf8",
    });
    if (r.status !== 0)
      throw new Error(`${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  scontrol(...args: string[]): string {
    return this.run("scontrol", args);
  }

  /** Submits a job; returns its id. */
  sbatch(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): string {
    return this.run("sbatch", ["--parsable", ...args], { env, cwd })
      .trim()
      .split(";")[0]!;
  }

  /** The records of a job: one per array task once the tasks started. */
  jobs(id: string): SlurmJob[] {
    return this.scontrol("show", "job", "-o", id)
      .split("\n")
      .filter((l) => l.startsWith("JobId="))
      .map(parseJobRecord)
      .sort((a, b) => a.id.localeCompare(b.id, "en", { numeric: true }));
  }

  /** Polls until `done` holds for the jobs' records; throws with the job table on timeout. */
  async waitFor(
    ids: string[],
    done: (jobs: SlurmJob[]) => boolean,
    timeoutMs: number,
    what = "the condition",
  ): Promise<SlurmJob[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const jobs = ids.flatMap((id) => this.jobs(id));
      if (done(jobs)) return jobs;
      if (Date.now() > deadline)
        throw new Error(`jobs ${ids.join(", ")}: no ${what} after ${timeoutMs / 1000} s:\n${jobTable(jobs)}`);
      await sleep(500);
    }
  }

  /** Waits until every record of the jobs is in a final state (COMPLETED, FAILED, ...). */
  waitJobs(ids: string[], timeoutMs: number): Promise<SlurmJob[]> {
    return this.waitFor(ids, (jobs) => jobs.every((j) => FINAL_STATES.has(j.state)), timeoutMs, "final state");
  }

  stop(): void {
    spawnSync("bash", [script, "stop", this.dir], { stdio: "inherit" });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Starts a cluster in a new temp folder. Returns null, after printing why, when the packages
 * cannot be installed or the daemons cannot start on this machine (the script's exit 3 or 4);
 * throws on anything else (a usage error is a bug).
 */
export function startSlurmCluster(opts: { fakeGpus?: number } = {}): SlurmCluster | null {
  const dir = mkdtempSync(join(tmpdir(), "msr-rec-slurm-"));
  const r = spawnSync("bash", [script, "start", dir], {
    env: { ...process.env, SLURM_LOCAL_FAKE_GPUS: String(opts.fakeGpus ?? 1) },
    encoding: "utf8",
  });
  if (r.status === 0) return new SlurmCluster(dir);
  const why = `${r.stderr}${r.stdout}`.trim();
  spawnSync("bash", [script, "stop", dir]);
  rmSync(dir, { recursive: true, force: true });
  if (r.status === 3 || r.status === 4) {
    console.warn(
      `Slurm tests skipped: no one-node Slurm cluster on this machine (scripts/slurm-local.sh start exited ${r.status}):\n${why}`,
    );
    return null;
  }
  throw new Error(`scripts/slurm-local.sh start exited ${r.status ?? r.signal}:\n${why}`);
}
