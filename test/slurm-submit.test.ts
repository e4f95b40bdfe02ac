// examples/slurm without a cluster: what submit.sh would submit (DRY_RUN=1 prints each sbatch
// command) for the resources a user asks for, which msr-rec command the scripts find, and the
// job scripts run by hand with the real CLI. The jobs themselves run on a real Slurm in
// slurm-examples.test.ts.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/util/paths.js";

const slurmDir = join(packageRoot, "examples", "slurm");
const cli = join(packageRoot, "dist", "src", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "msr-rec-slurm-submit-"));
// No msr-rec on this PATH unless a test puts one there; node stays reachable.
const basePath = `${dirname(process.execPath)}:/usr/bin:/bin`;
const config = join(work, "run.json");
writeFileSync(config, JSON.stringify({ preset: "tiny", runDir: join(work, "run") }));

afterAll(() => rmSync(work, { recursive: true, force: true }));

function bash(script: string, args: string[], env: Record<string, string>, cwd = work) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) =>
        !/^(MSR_REC|SLURM_|GPUS|CPUS|MEM|SHARDS|STOP_AFTER|PARTITION|ACCOUNT|SBATCH_EXTRA|LOG_DIR|JOB_PREFIX|MERGE_)/.test(
          k,
        ),
    ),
  );
  return spawnSync("bash", [script, ...args], { cwd, env: { ...clean, PATH: basePath, ...env }, encoding: "utf8" });
}

/** The sbatch command lines submit.sh would run, split into arguments. */
function dryRun(env: Record<string, string> = {}, submit = join(slurmDir, "submit.sh")) {
  const r = bash(submit, [], { DRY_RUN: "1", RUN_CONFIG: config, ...env });
  if (r.status !== 0) throw new Error(`submit.sh exited ${r.status}: ${r.stderr}`);
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("sbatch "));
  return { stdout: r.stdout, jobs: lines.map((l) => l.split(" ").slice(1)) };
}
const script = (args: string[]) =>
  args
    .find((a) => a.endsWith(".sbatch"))!
    .split("/")
    .pop()!;
/** The job script and its arguments, e.g. "shards.sbatch synthesize auto/4". */
const command = (args: string[]) =>
  args
    .slice(args.findIndex((a) => a.endsWith(".sbatch")))
    .join(" ")
    .replace(/^\S*\//, "");
const withPrefix = (args: string[], p: string) => args.filter((a) => a.startsWith(p));

describe("examples/slurm/submit.sh", () => {
  it("chains base, the synthesize array, its merge, train (and rl), the infer array, its merge and report", () => {
    const { jobs } = dryRun({ SHARDS: "4" });
    // The arrays give the shard count: a task resubmitted alone is still shard i of SHARDS.
    expect(jobs.map((a) => `${a.find((x) => x.startsWith("--job-name="))!.slice(11)} ${command(a)}`)).toEqual([
      "msr-rec-base single.sbatch base",
      "msr-rec-synthesize shards.sbatch synthesize auto/4",
      "msr-rec-synthesize-merge merge.sbatch synthesize",
      "msr-rec-train single.sbatch rl",
      "msr-rec-infer shards.sbatch infer auto/4",
      "msr-rec-infer-merge merge.sbatch infer",
      "msr-rec-report single.sbatch report",
    ]);
    // Each job waits on the one before it; the arrays have SHARDS tasks.
    expect(withPrefix(jobs[0]!, "--dependency")).toEqual([]);
    for (let i = 1; i < jobs.length; i++) {
      const before = jobs[i - 1]!.find((x) => x.startsWith("--job-name="))!.slice(11);
      expect(withPrefix(jobs[i]!, "--dependency=")).toEqual([`--dependency=afterok:\\<${before}\\>`]);
    }
    expect(jobs.filter((a) => a.includes("--array=0-3")).map(script)).toEqual(["shards.sbatch", "shards.sbatch"]);
    // Logs are named after the job and its id (and task).
    expect(withPrefix(jobs[1]!, "--output=")).toEqual(["--output=./%x-%A_%a.log"]);
    expect(withPrefix(jobs[2]!, "--output=")).toEqual(["--output=./%x-%j.log"]);
  });

  it("asks for no GPU by default, GPUS per stage job when set, and little for the merges", () => {
    for (const a of dryRun().jobs) expect(a.filter((x) => x.includes("gres"))).toEqual([]);
    const { jobs } = dryRun({
      GPUS: "2",
      CPUS: "6",
      MEM: "20G",
      TIME: "3:00:00",
      PARTITION: "gpu",
      ACCOUNT: "lab",
      SBATCH_EXTRA: "--qos=long --constraint=a100",
    });
    for (const a of jobs) {
      const merge = script(a) === "merge.sbatch";
      expect(withPrefix(a, "--gres")).toEqual(merge ? [] : ["--gres=gpu:2"]);
      expect(withPrefix(a, "--cpus-per-task=")).toEqual([merge ? "--cpus-per-task=1" : "--cpus-per-task=6"]);
      expect(withPrefix(a, "--mem=")).toEqual([merge ? "--mem=4G" : "--mem=20G"]);
      expect(withPrefix(a, "--time=")).toEqual([merge ? "--time=02:00:00" : "--time=3:00:00"]);
      expect(a).toEqual(
        expect.arrayContaining(["--partition=gpu", "--account=lab", "--qos=long", "--constraint=a100"]),
      );
    }
    const merge = dryRun({ MERGE_CPUS: "2", MERGE_MEM: "1G" }).jobs[2]!;
    expect(merge).toEqual(expect.arrayContaining(["--cpus-per-task=2", "--mem=1G"]));
  });

  it("stops after the stage STOP_AFTER names", () => {
    const names = (stop: string) => dryRun({ STOP_AFTER: stop }).jobs.map(command);
    expect(names("prepare")).toEqual(["single.sbatch prepare"]);
    expect(names("synthesize")).toEqual([
      "single.sbatch base",
      "shards.sbatch synthesize auto/8",
      "merge.sbatch synthesize",
    ]);
    expect(names("sft").at(-1)).toBe("single.sbatch sft");
    expect(names("infer").at(-1)).toBe("merge.sbatch infer");
    expect(names("eval").at(-1)).toBe("single.sbatch eval");
  });

  it("refuses bad settings before submitting anything, saying what to give", () => {
    const fails = (env: Record<string, string>) => {
      const r = bash(join(slurmDir, "submit.sh"), [], { DRY_RUN: "1", RUN_CONFIG: config, ...env });
      expect(r.stdout).not.toContain("sbatch ");
      expect(r.status).toBe(2);
      return r.stderr;
    };
    expect(fails({ STOP_AFTER: "train2" })).toMatch(
      /STOP_AFTER=train2 is not a stage; use one of: prepare base synthesize/,
    );
    expect(fails({ SHARDS: "0" })).toMatch(/SHARDS=0 must be a positive integer/);
    expect(fails({ GPUS: "one" })).toMatch(/GPUS=one must be a non-negative integer/);
    expect(fails({ RUN_CONFIG: join(work, "missing.json") })).toMatch(/missing\.json: no such file/);
  });
});

describe("finding the msr-rec command", () => {
  const found = (env: Record<string, string>, submit?: string) =>
    /^msr-rec: (.*)$/m.exec(dryRun(env, submit).stdout)![1];

  it("takes MSR_REC, else msr-rec on PATH, else node_modules/.bin above the run, else this repository's dist", () => {
    expect(found({ MSR_REC: "node /opt/msr-rec/main.js" })).toBe("node /opt/msr-rec/main.js");
    const bin = join(work, "bin");
    mkdirSync(bin, { recursive: true });
    symlinkSync(cli, join(bin, "msr-rec"));
    expect(found({ PATH: `${bin}:${basePath}` })).toBe(join(bin, "msr-rec"));
    const installed = join(work, "project", "node_modules", ".bin");
    mkdirSync(installed, { recursive: true });
    symlinkSync(cli, join(installed, "msr-rec"));
    const nested = join(work, "project", "runs", "a");
    mkdirSync(nested, { recursive: true });
    cpSync(config, join(nested, "run.json"));
    expect(found({ RUN_CONFIG: join(nested, "run.json") })).toBe(join(installed, "msr-rec"));
    expect(found({})).toBe(`${process.execPath} ${cli}`);
  });

  it("says how to point at msr-rec when there is none", () => {
    const copy = join(work, "outside", "slurm");
    cpSync(slurmDir, copy, { recursive: true }); // not inside a repository with a dist/
    const r = bash(join(copy, "submit.sh"), [], { DRY_RUN: "1", RUN_CONFIG: config });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /cannot find msr-rec: set MSR_REC to its command .*put msr-rec on PATH.*npm install msr-rec/,
    );
    for (const job of ["shards.sbatch", "merge.sbatch", "single.sbatch"]) {
      const j = bash(join(slurmDir, job), ["synthesize"], { RUN_CONFIG: config });
      expect(j.status, job).toBe(127);
      expect(j.stderr, job).toMatch(/msr-rec not found: set MSR_REC to its command/);
    }
  });

  it("the job scripts run the msr-rec installed where they were submitted, with the shard given", () => {
    const dir = join(work, "submitted-here");
    mkdirSync(join(dir, "node_modules", ".bin"), { recursive: true });
    symlinkSync(cli, join(dir, "node_modules", ".bin", "msr-rec"));
    const run = join(dir, "run.json");
    writeFileSync(run, JSON.stringify({ preset: "tiny", runDir: join(dir, "run"), dataset: { users: 12 } }));
    const single = bash(join(slurmDir, "single.sbatch"), ["prepare"], { RUN_CONFIG: run }, dir);
    expect(single.status, single.stderr).toBe(0);
    expect(existsSync(join(dir, "run", "dataset", "users.jsonl"))).toBe(true);
    // An explicit shard is passed through as --shard; the CLI checks it.
    const shard = bash(join(slurmDir, "shards.sbatch"), ["synthesize", "5/3"], { RUN_CONFIG: run }, dir);
    expect(shard.status).not.toBe(0);
    expect(shard.stderr).toMatch(/5\/3/);
  });
});
