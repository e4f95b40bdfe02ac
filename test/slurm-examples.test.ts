// examples/slurm on a real one-node Slurm (scripts/slurm-local.sh): submit.sh runs a whole tiny
// run with synthesize and infer split over 3-task arrays, and every output equals a single
// unsharded run's byte for byte. Then an array task fails: the merge waits on its dependency,
// and the ways a user would recover (examples/slurm/README.md) are tried as they would type them.
// A shard made before a config change is refused by the merge until it is redone, and a job's
// engine threads follow its --cpus-per-task.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/util/paths.js";
import { tinyModelPath } from "./support/models.js";
import {
  FINAL_STATES,
  jobTable,
  startSlurmCluster,
  type SlurmCluster,
  type SlurmJob,
} from "./support/slurm-cluster.js";

const cli = join(packageRoot, "dist", "src", "cli", "main.js");
const slurmDir = join(packageRoot, "examples", "slurm");
const work = mkdtempSync(join(tmpdir(), "msr-rec-slurm-e2e-"));
let slurm: SlurmCluster | null = null;

/** A run config (one thread, so a sharded run and the reference compute the same floats). */
function runConfig(name: string, extra: Record<string, unknown> = {}): string {
  const file = join(work, `${name}.json`);
  const model = { path: tinyModelPath(), pretrainEpochs: 0, threads: 1 }; // the rule teacher is free and deterministic
  writeFileSync(
    file,
    JSON.stringify({ preset: "tiny", runDir: join(work, name), model, dataset: { users: 24 }, ...extra }),
  );
  return file;
}

// What a run writes that must not depend on how it was split. Left out: config.json and the
// stage stamps (they name the folder and the time), teacher/answers.jsonl (the merge appends the
// shards' answers in shard order), synthesis-stats.json (a merge counts reused answers) and
// report.html (it names the run's folder).
const outputs = [
  "dataset/items.jsonl",
  "dataset/users.jsonl",
  "teacher/reasoning.jsonl",
  "sft/train.jsonl",
  "sft/valid.jsonl",
  "train/msr/adapter.gguf",
  "train/wo-reason/adapter.gguf",
  "infer/msr.jsonl",
  "infer/msr-full.jsonl",
  "infer/wo-reason.jsonl",
  "infer/base-zero-shot.jsonl",
  "predictions.jsonl",
  "metrics.json",
  "results.md",
];

/**
 * Runs examples/slurm/submit.sh with CPU-only resources; returns the job ids by name. MSR_REC is
 * left to the script unless given (it finds this repository's dist).
 */
function submit(config: string, env: Record<string, string> = {}): Map<string, string> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "MSR_REC"));
  const r = spawnSync("bash", [join(slurmDir, "submit.sh")], {
    cwd: work,
    env: {
      ...clean,
      ...slurm!.env,
      RUN_CONFIG: config,
      SHARDS: "3",
      GPUS: "0",
      CPUS: "1",
      MEM: "1G",
      MERGE_MEM: "512M",
      TIME: "00:20:00",
      LOG_DIR: join(work, "logs"),
      ...env,
    },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`submit.sh exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return new Map([...r.stdout.matchAll(/^(msr-rec-[\w-]+)\s+(\d+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

const byTask = (jobs: SlurmJob[], array: string) =>
  jobs.filter((j) => j.id.startsWith(`${array}_`)).map((j) => `${j.id} ${j.state}`);
const reasoning = (name: string) => readFileSync(join(work, name, "teacher", "reasoning.jsonl"), "utf8");

beforeAll(() => {
  slurm = startSlurmCluster();
  if (!slurm) return;
  mkdirSync(join(work, "logs"));
  const r = spawnSync(process.execPath, [cli, "pipeline", "--config", runConfig("single"), "--to", "report"], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`the reference run failed:\n${r.stderr}`);
}, 600_000);

afterAll(() => {
  slurm?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("examples/slurm/submit.sh on a one-node Slurm", () => {
  it("runs every stage as a job, splits synthesize and infer over 3 array tasks, and equals the single run", async (ctx) => {
    if (!slurm) return ctx.skip("no Slurm cluster on this machine (see the printed reason)");
    const ids = submit(runConfig("sharded"));
    expect([...ids.keys()]).toEqual([
      "msr-rec-base",
      "msr-rec-synthesize",
      "msr-rec-synthesize-merge",
      "msr-rec-train",
      "msr-rec-infer",
      "msr-rec-infer-merge",
      "msr-rec-report",
    ]);
    const jobs = await slurm.waitJobs([...ids.values()], 480_000);
    console.log(`submit.sh, SHARDS=3 GPUS=0 CPUS=1 MEM=1G:\n${jobTable(jobs)}`);
    expect(jobs.filter((j) => j.state !== "COMPLETED").map((j) => `${j.id} ${j.name} ${j.state}`)).toEqual([]);
    for (const stage of ["synthesize", "infer"]) {
      const array = ids.get(`msr-rec-${stage}`)!;
      expect(byTask(jobs, array)).toEqual([0, 1, 2].map((t) => `${array}_${t} COMPLETED`));
      for (const t of [0, 1, 2])
        expect(existsSync(join(work, "logs", `msr-rec-${stage}-${array}_${t}.log`))).toBe(true);
    }
    // The stage jobs got CPUS and MEM; the merges one CPU and MERGE_MEM; nobody a GPU.
    const job = (name: string) => jobs.find((j) => j.jobId === ids.get(name))!.fields;
    expect([job("msr-rec-train")["CPUs/Task"], job("msr-rec-train").MinMemoryNode]).toEqual(["1", "1G"]);
    expect([job("msr-rec-infer-merge")["CPUs/Task"], job("msr-rec-infer-merge").MinMemoryNode]).toEqual(["1", "512M"]);
    expect(jobs.filter((j) => /gres|gpu/.test(j.fields.TresPerNode ?? "")).map((j) => j.id)).toEqual([]);
    expect(existsSync(join(work, "logs", `msr-rec-synthesize-merge-${ids.get("msr-rec-synthesize-merge")}.log`))).toBe(
      true,
    );

    for (const f of outputs)
      expect(readFileSync(join(work, "sharded", f)).equals(readFileSync(join(work, "single", f))), f).toBe(true);
    const synthStats = JSON.parse(readFileSync(join(work, "sharded", "teacher", "synthesis-stats.json"), "utf8")) as {
      requested: number;
    };
    expect(synthStats.requested).toBe(0); // the merge found every answer in the shards' stores
  }, 600_000);

  it("with GPUS=1 a stage job gets a GPU from the scheduler (here one without a device)", async (ctx) => {
    if (!slurm) return ctx.skip("no Slurm cluster on this machine (see the printed reason)");
    const ids = submit(runConfig("gpu"), { GPUS: "1", STOP_AFTER: "prepare" });
    const [job] = await slurm.waitJobs([ids.get("msr-rec-prepare")!], 120_000);
    expect([job!.state, job!.fields.TresPerNode]).toEqual(["COMPLETED", "gres:gpu:1"]);
  }, 180_000);
});

describe("a failed array task on a one-node Slurm", () => {
  // MSR_REC wraps the real CLI and fails array task 1 while its marker file exists: a stand-in
  // for a node that died. Removing the marker is the user fixing the cause.
  function flakyRun(name: string) {
    const marker = join(work, `${name}.fail-task-1`);
    writeFileSync(marker, "");
    const wrapper = join(work, `${name}.msr-rec.sh`);
    writeFileSync(
      wrapper,
      `#!/bin/bash\nif [ "\${SLURM_ARRAY_TASK_ID:-}" = 1 ] && [ -e ${marker} ]; then echo "task 1 fails" >&2; exit 1; fi\nexec ${process.execPath} ${cli} "$@"\n`,
    );
    const ids = submit(runConfig(name), { MSR_REC: `bash ${wrapper}`, STOP_AFTER: "synthesize" });
    return {
      array: ids.get("msr-rec-synthesize")!,
      merge: ids.get("msr-rec-synthesize-merge")!,
      marker,
      env: { ...slurm!.env, RUN_CONFIG: join(work, `${name}.json`), MSR_REC: `${process.execPath} ${cli}` },
    };
  }

  /** Waits for the array to end with task 1 FAILED; the merge then never starts by itself. */
  async function failed(run: { array: string; merge: string }) {
    const jobs = await slurm!.waitFor(
      [run.array, run.merge],
      (js) =>
        js.some((j) => j.jobId === run.merge && j.reason === "DependencyNeverSatisfied") &&
        js.filter((j) => j.id.startsWith(`${run.array}_`)).every((j) => FINAL_STATES.has(j.state)),
      180_000,
      "end of the array with the merge held back",
    );
    console.log(`after task 1 failed:\n${jobTable(jobs)}`);
    expect(byTask(jobs, run.array)).toEqual([
      `${run.array}_0 COMPLETED`,
      `${run.array}_1 FAILED`,
      `${run.array}_2 COMPLETED`,
    ]);
    const merge = jobs.find((j) => j.jobId === run.merge)!;
    expect([merge.state, merge.dependency]).toEqual(["PENDING", `afterok:${run.array}_*(failed)`]);
  }

  it("leaves the merge pending; retry-shards.sh requeues the task as the same shard and the merge completes", async (ctx) => {
    if (!slurm) return ctx.skip("no Slurm cluster on this machine (see the printed reason)");
    const run = flakyRun("requeued");
    await failed(run);
    rmSync(run.marker);
    const out = slurm.run("bash", [join(slurmDir, "retry-shards.sh"), run.array, run.merge]);
    expect(out).toContain(`requeued task ${run.array}_1`);
    expect(out).toContain(`now waits on afterok:${run.array}_0:${run.array}_1:${run.array}_2`);
    const jobs = await slurm.waitJobs([run.array, run.merge], 180_000);
    console.log(`after retry-shards.sh:\n${jobTable(jobs)}`);
    expect(jobs.map((j) => j.state)).toEqual(["COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"]);
    expect(jobs.find((j) => j.id === `${run.array}_1`)!.fields.Restarts).toBe("1");
    expect(reasoning("requeued")).toBe(reasoning("single"));
  }, 600_000);

  it("recovers by resubmitting shard 1/3 by its number as a plain job and pointing the merge at it", async (ctx) => {
    if (!slurm) return ctx.skip("no Slurm cluster on this machine (see the printed reason)");
    const run = flakyRun("renumbered");
    await failed(run);
    rmSync(run.marker);
    const retry = slurm.sbatch(
      [
        "--job-name=msr-rec-synthesize-retry",
        "--cpus-per-task=1",
        "--mem=1G",
        `--output=${join(work, "logs", "%x-%j.log")}`,
        join(slurmDir, "shards.sbatch"),
        "synthesize",
        "1/3",
      ],
      run.env,
      work,
    );
    slurm.scontrol("update", `JobId=${run.merge}`, `Dependency=afterok:${run.array}_0:${run.array}_2:${retry}`);
    const jobs = await slurm.waitJobs([retry, run.merge], 180_000);
    console.log(`after resubmitting shard 1/3:\n${jobTable(jobs)}`);
    expect(jobs.map((j) => `${j.name} ${j.state}`).sort()).toEqual([
      "msr-rec-synthesize-merge COMPLETED",
      "msr-rec-synthesize-retry COMPLETED",
    ]);
    expect(reasoning("renumbered")).toBe(reasoning("single"));
  }, 600_000);

  // The array ran `--shard auto/3` (submit.sh gives the count) and its first task recorded the
  // array's layout: the only task of a new array, id 1, is shard 1/3 again.
  it("recovers by resubmitting index 1 as a one-task array with the shard count given", async (ctx) => {
    if (!slurm) return ctx.skip("no Slurm cluster on this machine (see the printed reason)");
    const run = flakyRun("reindexed");
    await failed(run);
    rmSync(run.marker);
    const log = join(work, "logs", "reindexed-retry.log");
    const retry = slurm.sbatch(
      [
        "--array=1",
        "--job-name=msr-rec-synthesize-retry",
        "--cpus-per-task=1",
        "--mem=1G",
        `--output=${log}`,
        join(slurmDir, "shards.sbatch"),
        "synthesize",
        "auto/3",
      ],
      run.env,
      work,
    );
    await slurm.waitJobs([retry], 180_000);
    console.log(`the task resubmitted as --array=1 ran: ${readFileSync(log, "utf8").split("\n")[0]}`);
    expect(readFileSync(log, "utf8")).toContain(
      `[synthesize] shard 1/3 (task 1 of array ${run.array} (--array=0-2), as recorded by its first task)`,
    );
    slurm.scontrol("update", `JobId=${run.merge}`, `Dependency=afterok:${run.array}_0:${run.array}_2:${retry}_1`);
    const jobs = await slurm.waitJobs([run.merge], 180_000);
    expect(jobs.map((j) => j.state)).toEqual(["COMPLETED"]);
    expect(reasoning("reindexed")).toBe(reasoning("single"));
  }, 600_000);
});

describe("a shard made before a config change, on a one-node Slurm", () => {
  it("the merge refuses it, naming it and its command; redone as a one-task array, a new merge equals a single run", async (ctx) => {
    if (!slurm) return ctx.skip("no Slurm cluster on this machine (see the printed reason)");
    const ids = submit(runConfig("stale"), { STOP_AFTER: "synthesize" });
    await slurm.waitJobs([...ids.values()], 240_000);
    // τ goes from 1 to 2; tasks 0 and 2 are redone as an array listed unevenly (the recorded
    // layout places them); task 1 is not.
    const config = runConfig("stale", { teacher: { tau: 2 } });
    const env = { RUN_CONFIG: config, MSR_REC: `${process.execPath} ${cli}` };
    const sbatch = (name: string, args: string[]) =>
      slurm!.sbatch(
        [`--job-name=${name}`, "--cpus-per-task=1", "--mem=1G", `--output=${join(work, "logs", "%x-%j.log")}`, ...args],
        env,
        work,
      );
    const redone = sbatch("stale-redo", ["--array=0,2", join(slurmDir, "shards.sbatch"), "synthesize", "auto/3"]);
    const refused = sbatch("stale-merge", [
      `--dependency=afterok:${redone}`,
      join(slurmDir, "merge.sbatch"),
      "synthesize",
    ]);
    // The next stage, as submit.sh chains it: it waits behind the merge.
    const next = sbatch("stale-sft", [
      `--dependency=afterok:${refused}`,
      "--kill-on-invalid-dep=no",
      join(slurmDir, "single.sbatch"),
      "sft",
    ]);
    const first = await slurm.waitJobs([redone, refused], 180_000);
    console.log(`after changing teacher.tau and redoing shards 0 and 2:\n${jobTable(first)}`);
    expect(first.map((j) => `${j.id} ${j.state}`)).toEqual([
      `${redone}_0 COMPLETED`,
      `${redone}_2 COMPLETED`,
      `${refused} FAILED`,
    ]);
    const log = readFileSync(join(work, "logs", `stale-merge-${refused}.log`), "utf8");
    expect(log).toContain(
      `synthesize shard 1/3 was made from other inputs (teacher.tau: 1 then, 2 now); redo it: msr-rec pipeline --config ${config} --only synthesize --shard 1/3`,
    );
    expect(log).not.toMatch(/shard [02]\/3/);

    const last = sbatch("stale-redo", ["--array=1", join(slurmDir, "shards.sbatch"), "synthesize", "auto/3"]);
    const merge = sbatch("stale-merge", [`--dependency=afterok:${last}`, join(slurmDir, "merge.sbatch"), "synthesize"]);
    slurm.scontrol("update", `JobId=${next}`, `Dependency=afterok:${merge}`);
    const second = await slurm.waitJobs([last, merge, next], 180_000);
    console.log(
      `after redoing shard 1, merging again and hanging the next stage on the new merge:\n${jobTable(second)}`,
    );
    expect(second.map((j) => `${j.name} ${j.state}`)).toEqual([
      "stale-redo COMPLETED",
      "stale-merge COMPLETED",
      "stale-sft COMPLETED",
    ]);
    // The reference: the single run's prepared folder, synthesized with τ = 2 in one process.
    cpSync(join(work, "single"), join(work, "single-tau2"), { recursive: true });
    const reference = runConfig("single-tau2", { teacher: { tau: 2 } });
    const r = spawnSync(process.execPath, [cli, "pipeline", "--config", reference, "--only", "synthesize"], {
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    expect(reasoning("stale")).toBe(reasoning("single-tau2"));
    expect(reasoning("stale")).not.toBe(reasoning("single"));
  }, 600_000);
});

describe("threads inside a Slurm job", () => {
  it("the engine's default thread count follows --cpus-per-task, not the node's CPUs", async (ctx) => {
    if (!slurm) return ctx.skip("no Slurm cluster on this machine (see the printed reason)");
    const nodeCpus = Number(slurm.run("sinfo", ["-h", "-o", "%c"]).trim());
    const probe = join(work, "threads.mjs");
    const dist = join(packageRoot, "dist", "src");
    writeFileSync(
      probe,
      [
        `import { loadModel } from ${JSON.stringify(join(dist, "engine", "index.js"))};`,
        `import { describeCpus } from ${JSON.stringify(join(dist, "util", "cpus.js"))};`,
        `const m = await loadModel(${JSON.stringify(tinyModelPath())});`,
        "console.log(JSON.stringify({ threads: m.info.threads, cpus: describeCpus() }));",
        "m.dispose();",
      ].join("\n"),
    );
    const asked = [...new Set([1, Math.min(2, nodeCpus)])];
    const ids = asked.map((n) =>
      slurm!.sbatch([
        `--cpus-per-task=${n}`,
        "--mem=1G",
        `--output=${join(work, "logs", `threads-${n}.log`)}`,
        `--wrap=${process.execPath} ${probe}`,
      ]),
    );
    const jobs = await slurm.waitJobs(ids, 120_000);
    console.log(`${nodeCpus}-CPU node:\n${jobTable(jobs)}`);
    for (const n of asked) {
      const out = JSON.parse(readFileSync(join(work, "logs", `threads-${n}.log`), "utf8").trim()) as {
        threads: number;
        cpus: string;
      };
      console.log(`--cpus-per-task=${n}: ${out.threads} engine threads; ${out.cpus}`);
      expect(out.threads).toBe(n);
      // task/none binds nothing: the affinity is the whole node, the allocation comes from Slurm.
      expect(out.cpus).toBe(`${n} CPU${n === 1 ? "" : "s"} (affinity ${nodeCpus}, Slurm job ${n})`);
    }
  }, 180_000);
});
