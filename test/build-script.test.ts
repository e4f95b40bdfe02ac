// The native build script's toolchain checks: a missing tool stops it with one message saying what
// to install (checked before any work, so these runs take milliseconds).
import { spawnSync } from "node:child_process";
import { mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../src/util/paths.js";

const script = join(packageRoot, "scripts", "build-native.mjs");

function runWithPath(dirs: string[], args: string[] = []) {
  return spawnSync(process.execPath, [script, ...args, "--out", "build-never-used"], {
    env: { PATH: dirs.join(":"), HOME: process.env.HOME ?? "/tmp" },
    encoding: "utf8",
  });
}

function which(cmd: string): string | null {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

describe("build-native.mjs toolchain checks", () => {
  it("says to install cmake when it is missing", () => {
    const empty = mkdtempSync(join(tmpdir(), "msr-rec-path-"));
    const r = runWithPath([empty]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cmake was not found on PATH\. Install CMake/);
  });

  it("says to install the CUDA toolkit when --cuda is asked for without nvcc", () => {
    const tools = ["cmake", "c++", "git"].map((t) => [t, which(t)] as const);
    if (tools.some(([, p]) => !p)) return; // this machine lacks the CPU toolchain itself
    const dir = mkdtempSync(join(tmpdir(), "msr-rec-path-"));
    for (const [name, p] of tools) symlinkSync(p!, join(dir, name));
    const r = runWithPath([dir], ["--cuda"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/nvcc was not found\. Install the CUDA toolkit/);
  });
});
