// The scale-out examples run as a scheduler would run them: examples/slurm's array script once per
// task under the variables Slurm sets, and the command of examples/kubernetes' Indexed Job once per
// completion index. Each sharded synthesize stage, merged, must equal the single-process run
// byte for byte, and the merge must find every answer already paid for.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { packageRoot } from "../src/util/paths.js";
import { tinyModelPath } from "./support/models.js";

const cli = join(packageRoot, "dist", "src", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "msr-rec-sched-"));
const examples = join(packageRoot, "examples");

interface JobManifest {
  kind: string;
  spec: {
    completionMode?: string;
    completions?: number;
    parallelism?: number;
    template: {
      spec: {
        containers: {
          command: string[];
          env?: { name: string; value?: string }[];
          resources?: { limits?: Record<string, unknown> };
        }[];
      };
    };
  };
}

function manifest(name: string): JobManifest {
  return parseYaml(readFileSync(join(examples, "kubernetes", name), "utf8")) as JobManifest;
}

/** A run folder whose prepare and base stages are done, under its own config file. */
function runFolder(name: string): string {
  const dir = join(work, name);
  cpSync(join(work, "base"), dir, { recursive: true });
  const config = join(work, `${name}.json`);
  writeFileSync(config, JSON.stringify({ ...baseConfig(), runDir: dir }));
  return config;
}

function baseConfig() {
  // The rule teacher is deterministic and free; the given model skips pretraining.
  return {
    preset: "tiny",
    runDir: join(work, "base"),
    model: { path: tinyModelPath(), pretrainEpochs: 0 },
    dataset: { users: 24 },
  };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(cmd, args, { cwd: work, env: { ...process.env, ...env }, encoding: "utf8" });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

const reasoning = (config: string) =>
  readFileSync(join(JSON.parse(readFileSync(config, "utf8")).runDir as string, "teacher", "reasoning.jsonl"), "utf8");
const stats = (config: string) =>
  JSON.parse(
    readFileSync(
      join(JSON.parse(readFileSync(config, "utf8")).runDir as string, "teacher", "synthesis-stats.json"),
      "utf8",
    ),
  ) as { requested: number; reused: number; samples: number };

let single = "";

beforeAll(() => {
  writeFileSync(join(work, "base.json"), JSON.stringify(baseConfig()));
  run(process.execPath, [cli, "pipeline", "--config", join(work, "base.json"), "--to", "base"]);
  single = runFolder("single");
  run(process.execPath, [cli, "pipeline", "--config", single, "--only", "synthesize"]);
}, 300_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("examples/slurm", () => {
  it("the array script's tasks (--array=1-3) and the dependent merge equal the single run", () => {
    const config = runFolder("slurm");
    const env = { RUN_CONFIG: config, MSR_REC: `${process.execPath} ${cli}` };
    for (const id of [1, 2, 3]) {
      run("bash", [join(examples, "slurm", "shards.sbatch"), "synthesize"], {
        ...env,
        SLURM_ARRAY_JOB_ID: "77",
        SLURM_ARRAY_TASK_ID: String(id),
        SLURM_ARRAY_TASK_MIN: "1",
        SLURM_ARRAY_TASK_MAX: "3",
        SLURM_ARRAY_TASK_STEP: "1",
        SLURM_ARRAY_TASK_COUNT: "3",
      });
    }
    const shards = readdirSync(join(work, "slurm", "teacher", "shards")).sort();
    expect(shards).toEqual(["layout.json", "shard-0-of-3", "shard-1-of-3", "shard-2-of-3"]);
    // The first task recorded the array: ids 1-3 are shards 0-2 of 3, for any task resubmitted later.
    expect(JSON.parse(readFileSync(join(work, "slurm", "teacher", "shards", "layout.json"), "utf8"))).toMatchObject({
      scheduler: "slurm",
      arrayJobId: "77",
      min: 1,
      step: 1,
      count: 3,
    });
    shards.shift();
    // The tasks split the samples between them: each asked only for its own users.
    const perShard = shards.map(
      (d) =>
        (
          JSON.parse(readFileSync(join(work, "slurm", "teacher", "shards", d, "synthesis-stats.json"), "utf8")) as {
            samples: number;
          }
        ).samples,
    );
    expect(perShard.every((n) => n > 0 && n < stats(single).samples)).toBe(true);
    expect(perShard.reduce((a, b) => a + b, 0)).toBe(stats(single).samples);
    run("bash", [join(examples, "slurm", "merge.sbatch"), "synthesize"], env);
    expect(reasoning(config)).toBe(reasoning(single));
    const s = stats(config);
    expect(s.requested).toBe(0); // every answer came from the shards' stores
    expect(s.reused).toBeGreaterThanOrEqual(s.samples);
  }, 300_000);

  it("the scripts parse", () => {
    // What submit.sh submits (resources, GPUs, dependencies) is checked in slurm-submit.test.ts.
    for (const f of ["shards.sbatch", "merge.sbatch", "single.sbatch", "submit.sh", "retry-shards.sh"]) {
      expect(spawnSync("bash", ["-n", join(examples, "slurm", f)]).status, f).toBe(0);
    }
  });
});

describe("msr-rec synthesize outside the pipeline", () => {
  it("shards under a Slurm array, merged, equal a single run byte for byte; a shard made with another tau is refused until redone", () => {
    const data = join(work, "standalone-data");
    run(process.execPath, [cli, "prepare", "--format", "synthetic", "--users", "60", "--items", "120", "--out", data]);
    const args = (out: string, tau = "1") => [
      cli,
      "synthesize",
      "--data",
      data,
      "--teacher",
      "rules",
      "--tau",
      tau,
      "--split",
      "train",
      "--out",
      join(work, out),
    ];
    run(process.execPath, args("standalone-single"));
    const array = (id: number) => ({
      SLURM_ARRAY_JOB_ID: "88",
      SLURM_ARRAY_TASK_ID: String(id),
      SLURM_ARRAY_TASK_MIN: "0",
      SLURM_ARRAY_TASK_MAX: "2",
      SLURM_ARRAY_TASK_STEP: "1",
      SLURM_ARRAY_TASK_COUNT: "3",
    });
    for (const id of [2, 0, 1]) run(process.execPath, [...args("standalone-sharded"), "--shard", "auto"], array(id));
    const file = (out: string, f = "reasoning.jsonl") => readFileSync(join(work, out, f));
    // In shard order the same lines make another file: what the merge used to write.
    const inShardOrder = Buffer.concat(
      [0, 1, 2].map((i) => file("standalone-sharded", `shard-${i}-of-3/reasoning.jsonl`)),
    );
    expect(inShardOrder.equals(file("standalone-single"))).toBe(false);
    run(process.execPath, [...args("standalone-sharded"), "--merge"]);
    expect(file("standalone-sharded").equals(file("standalone-single"))).toBe(true);

    // Shard 1 redone with tau 2: the merge with tau 1 names it and the command that redoes it.
    run(process.execPath, [...args("standalone-sharded", "2"), "--shard", "1/3"]);
    const refused = spawnSync(process.execPath, [...args("standalone-sharded"), "--merge"], {
      cwd: work,
      encoding: "utf8",
    });
    expect(refused.status).not.toBe(0);
    const redo = /redo it: (msr-rec synthesize .*)$/m.exec(refused.stderr)?.[1];
    expect(refused.stderr).toMatch(/synthesize shard 1\/3 was made from other inputs \(tau: 2 then, 1 now\)/);
    expect(redo).toBe(
      `msr-rec synthesize --data ${data} --teacher rules --tau 1 --split train --out ${join(work, "standalone-sharded")} --shard 1/3`,
    );
    run(process.execPath, [cli, ...redo!.split(" ").slice(1)]);
    run(process.execPath, [...args("standalone-sharded"), "--merge"]);
    expect(file("standalone-sharded").equals(file("standalone-single"))).toBe(true);
  }, 300_000);
});

describe("examples/kubernetes", () => {
  it("the Indexed Job's command at each completion index, an index retried by shard-retry.yaml, then the merge Job's, equal the single run", () => {
    const job = manifest("synthesize-shards.yaml");
    expect(job.kind).toBe("Job");
    expect(job.spec.completionMode).toBe("Indexed");
    const container = job.spec.template.spec.containers[0]!;
    const count = Number(container.env?.find((e) => e.name === "MSR_REC_SHARD_COUNT")?.value);
    expect(count).toBe(job.spec.completions); // the pod learns the count only from this variable
    expect(container.resources?.limits?.["nvidia.com/gpu"]).toBe(1);

    const config = runFolder("k8s");
    // The container's command, with this machine's msr-rec and config in place of the image's.
    const local = (cmd: string[]) => {
      expect(cmd.slice(0, 2)).toEqual(["npx", "msr-rec"]);
      return [cli, ...cmd.slice(2).map((a) => (a === "/runs/run.json" ? config : a))];
    };
    // Index 1 used up its retries; the others completed.
    for (let index = 0; index < count; index++) {
      if (index !== 1)
        run(process.execPath, local(container.command), {
          JOB_COMPLETION_INDEX: String(index),
          MSR_REC_SHARD_COUNT: String(count),
        });
    }
    const merge = manifest("synthesize-merge.yaml").spec.template.spec.containers[0]!.command;
    const [mergeStep] = merge[2]!.split(" && ");
    const refused = spawnSync(process.execPath, local(mergeStep!.split(" ")), { cwd: work, encoding: "utf8" });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(
      `synthesize shard 1/${count} is missing; run it: msr-rec pipeline --config ${config} --only synthesize --shard 1/${count}`,
    );
    // shard-retry.yaml runs it as a plain Job: Kubernetes puts the container's STAGE and SHARD
    // into its command's $(STAGE) and $(SHARD).
    const retry = manifest("shard-retry.yaml").spec.template.spec.containers[0]!;
    expect(retry.env?.filter((e) => e.value !== undefined).map((e) => e.name)).toEqual(["STAGE", "SHARD"]);
    const vars: Record<string, string> = { STAGE: "synthesize", SHARD: `1/${count}` };
    run(process.execPath, local(retry.command.map((a) => a.replace(/\$\((\w+)\)/g, (_, k: string) => vars[k]!))));
    run(process.execPath, local(mergeStep!.split(" ")));
    expect(reasoning(config)).toBe(reasoning(single));
    expect(stats(config).requested).toBe(0);
  }, 300_000);

  it("every manifest parses as a batch/v1 Job mounting the shared run folder", () => {
    const files = readdirSync(join(examples, "kubernetes")).filter((f) => f.endsWith(".yaml"));
    expect(files.sort()).toEqual([
      "base.yaml",
      "infer-merge.yaml",
      "infer-shards.yaml",
      "shard-retry.yaml",
      "synthesize-merge.yaml",
      "synthesize-shards.yaml",
    ]);
    for (const f of files) {
      const m = parseYaml(readFileSync(join(examples, "kubernetes", f), "utf8")) as JobManifest & {
        apiVersion: string;
      };
      expect(m.apiVersion, f).toBe("batch/v1");
      expect(m.kind, f).toBe("Job");
      expect(JSON.stringify(m.spec.template.spec.containers[0]!.command), f).toContain("/runs/run.json");
    }
    const infer = manifest("infer-shards.yaml").spec.template.spec.containers[0]!.command;
    expect(infer.join(" ")).toBe("npx msr-rec pipeline --config /runs/run.json --only infer --shard auto");
  });
});
