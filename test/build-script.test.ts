// The native build script: its toolchain checks (a missing tool stops it with one message saying
// what to install, checked before any work, so these runs take milliseconds) and its git-free
// unpacking of llama.cpp's source bundle.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nodeLlamaCppDir, packageRoot } from "../src/util/paths.js";

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
    const tools = ["cmake", "c++"].map((t) => [t, which(t)] as const);
    if (tools.some(([, p]) => !p)) return; // this machine lacks the CPU toolchain itself (git is not part of it)
    const dir = mkdtempSync(join(tmpdir(), "msr-rec-path-"));
    for (const [name, p] of tools) symlinkSync(p!, join(dir, name));
    const r = runWithPath([dir], ["--cuda"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/nvcc was not found\. Install the CUDA toolkit/);
  });
});

describe("unpack-git-bundle.mjs", () => {
  // The build unpacks node-llama-cpp's llama.cpp bundle without git; git itself is the reference.
  it("checks out the same tree as `git clone` of the bundle: contents, executable bits and links", async () => {
    if (!which("git")) return; // no reference on this machine
    const { unpackGitBundle } = (await import(join(packageRoot, "scripts", "unpack-git-bundle.mjs"))) as {
      unpackGitBundle(bundle: string, dest: string): string;
    };
    const bundle = join(nodeLlamaCppDir(), "llama", "gitRelease.bundle");
    const work = mkdtempSync(join(tmpdir(), "msr-rec-bundle-"));
    try {
      const ours = join(work, "ours");
      const sha = unpackGitBundle(bundle, ours);
      const ref = join(work, "git");
      expect(spawnSync("git", ["clone", "--quiet", bundle, ref]).status).toBe(0);
      expect(spawnSync("git", ["-C", ref, "rev-parse", "HEAD"], { encoding: "utf8" }).stdout.trim()).toBe(sha);
      const a = treeDigest(ours);
      const b = treeDigest(ref);
      expect(a.size).toBeGreaterThan(1000);
      expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
      const differing = [...a].filter(([p, d]) => b.get(p) !== d).map(([p]) => p);
      expect(differing).toEqual([]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 120_000);
});

/** path -> kind, mode bits and content hash of every entry under `root` (except .git). */
function treeDigest(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir)) {
      if (rel === "" && name === ".git") continue;
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p, r);
      else if (st.isSymbolicLink()) out.set(r, `link:${readlinkSync(p)}`);
      else
        out.set(r, `file:${st.mode & 0o111 ? "x" : "-"}:${createHash("sha1").update(readFileSync(p)).digest("hex")}`);
    }
  };
  walk(root, "");
  return out;
}
