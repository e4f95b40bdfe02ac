// The CPUs this process may use (src/util/cpus.ts): a child under `taskset -c 0` counts 1 (the
// affinity mask), a fake cgroup tree passed as the process's /proc folder gives its quota (v2
// cpu.max at any level above the process, v1 cfs_quota_us, a container's mount root), and Slurm's
// variables bound it. The engine's default thread count and the worker pools take this number.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { addonPath } from "../src/engine/bindings.js";
import { allowedCpus, cgroupCpuQuota, cpuLimits, describeCpus, quotaCpus } from "../src/util/cpus.js";
import { packageRoot } from "../src/util/paths.js";
import { addonMissing } from "./support/addon.js";
import { tinyModelPath } from "./support/models.js";

const work = mkdtempSync(join(tmpdir(), "msr-rec-cpus-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A /proc/self stand-in: `mountinfo` lines and a `cgroup` file; cgroup files under `work`. */
function fakeProc(name: string, mounts: string[], cgroup: string, files: Record<string, string>): string {
  const proc = join(work, name, "proc");
  mkdirSync(proc, { recursive: true });
  writeFileSync(join(proc, "mountinfo"), mounts.join("\n") + "\n");
  writeFileSync(join(proc, "cgroup"), cgroup);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(work, name, path, ".."), { recursive: true });
    writeFileSync(join(work, name, path), text);
  }
  return proc;
}

describe("allowed CPUs", () => {
  it("a child process under taskset -c 0 counts one CPU", (ctx) => {
    const cli = join(packageRoot, "dist", "src", "util", "cpus.js");
    if (spawnSync("taskset", ["-c", "0", "true"]).status !== 0) return ctx.skip("taskset cannot set an affinity here");
    if (!existsSync(cli)) return ctx.skip("dist/ is not built (npx tsc -p tsconfig.json)");
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SLURM_")));
    const child = (prefix: string[]) => {
      const r = spawnSync(
        prefix[0]!,
        [
          ...prefix.slice(1),
          process.execPath,
          "--input-type=module",
          "-e",
          `import { allowedCpus } from ${JSON.stringify(cli)}; console.log(allowedCpus())`,
        ],
        { env, encoding: "utf8" },
      );
      expect(r.status, r.stderr).toBe(0);
      return Number(r.stdout.trim());
    };
    expect(child(["taskset", "-c", "0"])).toBe(1);
    expect(child(["env"])).toBe(allowedCpus({ env }));
  });

  it("the raw addon's default thread count (loadModel without threads) follows the affinity too", (ctx) => {
    if (spawnSync("taskset", ["-c", "0", "true"]).status !== 0) return ctx.skip("taskset cannot set an affinity here");
    if (addonMissing("the addon's default threads")) return ctx.skip();
    const script = `const a = require(${JSON.stringify(addonPath())});
      a.loadModel(${JSON.stringify(tinyModelPath())}).then((m) => { console.log(m.info().threads); m.dispose(); });`;
    const threads = (prefix: string[]) => {
      const r = spawnSync(prefix[0]!, [...prefix.slice(1), process.execPath, "-e", script], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      return Number(r.stdout.trim());
    };
    expect(threads(["taskset", "-c", "0"])).toBe(1);
    // Without a mask: the CPUs of the process's affinity (the native code reads no cgroup quota).
    expect(threads(["env"])).toBe(Math.min(512, cpuLimits({ env: {} }).affinity));
  }, 60_000);

  it("reads a cgroup v2 quota at any level above the process; the tightest one counts, rounded down", () => {
    const mount = `30 22 0:27 / ${join(work, "v2", "cg")} rw,relatime - cgroup2 cgroup2 rw`;
    const proc = fakeProc("v2", [mount], "0::/job/step\n", {
      "cg/cpu.max": "max 100000\n",
      "cg/job/cpu.max": "250000 100000\n",
      "cg/job/step/cpu.max": "max 100000\n",
    });
    expect(cgroupCpuQuota(proc)).toBe(2);
    expect(cpuLimits({ proc, affinity: 8, env: {} })).toEqual({ affinity: 8, quota: 2, slurm: null, cpus: 2 });
    expect(describeCpus(cpuLimits({ proc, affinity: 8, env: {} }))).toBe("2 CPUs (affinity 8, cgroup quota 2)");
  });

  it("reads a cgroup v1 CFS quota, and a container whose mount root is its own cgroup", () => {
    const v1 = fakeProc(
      "v1",
      [`31 30 0:28 / ${join(work, "v1", "cpu")} rw,relatime - cgroup cgroup rw,cpu,cpuacct`],
      "4:memory:/x\n3:cpu,cpuacct:/slurm/job7\n",
      {
        "cpu/cpu.cfs_quota_us": "-1\n",
        "cpu/cpu.cfs_period_us": "100000\n",
        "cpu/slurm/job7/cpu.cfs_quota_us": "150000\n",
        "cpu/slurm/job7/cpu.cfs_period_us": "100000\n",
      },
    );
    expect(cgroupCpuQuota(v1)).toBe(1);
    const pod = fakeProc(
      "pod",
      [`40 22 0:30 /kubepods/pod1 ${join(work, "pod", "cg")} rw - cgroup2 cgroup2 rw`],
      "0::/kubepods/pod1\n",
      { "cg/cpu.max": "400000 100000\n" },
    );
    expect(cgroupCpuQuota(pod)).toBe(4);
    // No quota anywhere, or no cgroup files at all.
    expect(
      cgroupCpuQuota(
        fakeProc("none", [`30 22 0:27 / ${join(work, "none", "cg")} rw - cgroup2 cgroup2 rw`], "0::/\n", {
          "cg/cpu.max": "max 100000\n",
        }),
      ),
    ).toBeNull();
    expect(cgroupCpuQuota(join(work, "no-such-proc"))).toBeNull();
    expect([quotaCpus(50000, 100000), quotaCpus(-1, 100000), quotaCpus(300000, 100000)]).toEqual([1, null, 3]);
  });

  it("takes Slurm's CPUs per task, else the job's CPUs on the node, and never less than 1", () => {
    const proc = join(work, "no-such-proc");
    expect(allowedCpus({ proc, affinity: 2, env: { SLURM_CPUS_PER_TASK: "1", SLURM_CPUS_ON_NODE: "2" } })).toBe(1);
    expect(allowedCpus({ proc, affinity: 8, env: { SLURM_CPUS_ON_NODE: "3" } })).toBe(3);
    expect(allowedCpus({ proc, affinity: 2, env: { SLURM_CPUS_PER_TASK: "16" } })).toBe(2);
    expect(allowedCpus({ proc, affinity: 0, env: {} })).toBe(1);
    expect(describeCpus(cpuLimits({ proc, affinity: 2, env: { SLURM_CPUS_PER_TASK: "1" } }))).toBe(
      "1 CPU (affinity 2, Slurm job 1)",
    );
  });
});
