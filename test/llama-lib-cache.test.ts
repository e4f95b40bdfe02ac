// The per-user llama.cpp library cache (scripts/llama-lib-cache.mjs): an entry is compiled exactly
// as the addon's own build compiles llama.cpp (CMake is the reference: both builds are configured
// and every llama.cpp source's compile command compared), and its key changes with everything
// that changes the libraries.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { nodeLlamaCppDir, packageRoot } from "../src/util/paths.js";

interface KeyInputs {
  commit: string;
  optionsFile: string;
  ggmlNative: boolean;
  patches?: string;
  env?: NodeJS.ProcessEnv;
}
interface LibraryKey {
  fields: Record<string, unknown>;
  id: string;
  dir: string;
}
const cache = (await import(join(packageRoot, "scripts", "llama-lib-cache.mjs"))) as {
  cacheRoot(env?: NodeJS.ProcessEnv): string;
  libraryKey(inputs: KeyInputs): LibraryKey;
  entryMatches(dir: string, fields: Record<string, unknown>): boolean;
};
const bundle = (await import(join(packageRoot, "scripts", "unpack-git-bundle.mjs"))) as {
  bundleHead(path: string): string;
  unpackGitBundle(path: string, dest: string): string;
};

const optionsFile = join(packageRoot, "cmake", "llama-options.cmake");
const commit = "80fb11ac73e66d89eae2c6a91d8a77428fa733ed";
const work = mkdtempSync(join(tmpdir(), "msr-rec-libcache-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const hasTool = (cmd: string) => spawnSync(cmd, ["--version"]).status === 0;

describe("llama.cpp library cache key", () => {
  const env = { PATH: process.env.PATH, HOME: "/home/someone" };
  const key = (over: Partial<KeyInputs> = {}, envOver: NodeJS.ProcessEnv = {}) =>
    cache.libraryKey({ commit, optionsFile, ggmlNative: true, env: { ...env, ...envOver }, ...over });

  it("lives under $MSR_REC_CACHE, else $XDG_CACHE_HOME/msr-rec, else ~/.cache/msr-rec", () => {
    expect(cache.cacheRoot({ HOME: "/h" })).toMatch(/^\/.*\/\.cache\/msr-rec$/);
    expect(cache.cacheRoot({ XDG_CACHE_HOME: "/x" })).toBe("/x/msr-rec");
    expect(cache.cacheRoot({ XDG_CACHE_HOME: "/x", MSR_REC_CACHE: "/m" })).toBe("/m");
    expect(key({}, { MSR_REC_CACHE: "/m" }).dir).toMatch(
      new RegExp(`^/m/llama\\.cpp/${commit.slice(0, 12)}-cpu-[0-9a-f]{16}$`),
    );
  });

  it("is stable for the same inputs and changes with each thing that changes the libraries", () => {
    const base = key();
    expect(key().id).toBe(base.id);
    const other = [
      key({ commit: "0".repeat(40) }),
      key({ ggmlNative: false }),
      key({}, { CFLAGS: "-O1" }),
      key({}, { CXXFLAGS: "-fno-plt" }),
      key({}, { LDFLAGS: "-s" }),
      key({}, { CXX: "/definitely/not/a/compiler" }),
      // msr-rec's patches to llama.cpp's source (their hash): a patched build never shares an entry.
      key({ patches: "0123456789abcdef" }),
      key({ patches: "fedcba9876543210" }),
    ];
    const changedOptions = join(work, "llama-options.cmake");
    writeFileSync(changedOptions, readFileSync(optionsFile, "utf8") + 'set(GGML_LLAMAFILE OFF CACHE BOOL "" FORCE)\n');
    other.push(key({ optionsFile: changedOptions }));
    const ids = other.map((k) => k.id);
    expect(ids).not.toContain(base.id);
    expect(new Set(ids).size).toBe(ids.length);
    // Portable builds do not depend on this CPU; native ones record it.
    expect(key({ ggmlNative: false }).fields.cpu).toBeNull();
    expect(base.fields.cpu).toMatchObject({ model: expect.any(String) });
  });

  it("serves an entry only when its key.json and libraries are all there", () => {
    const k = key({}, { MSR_REC_CACHE: work });
    const lib = join(k.dir, "lib");
    mkdirSync(join(lib, "cmake", "llama"), { recursive: true });
    for (const f of ["libllama.a", "libggml.a", "libggml-base.a", "libggml-cpu.a", "cmake/llama/llama-config.cmake"]) {
      writeFileSync(join(lib, f), "");
    }
    expect(cache.entryMatches(k.dir, k.fields)).toBe(false); // no key.json: an unfinished entry
    writeFileSync(join(k.dir, "key.json"), JSON.stringify(k.fields, null, 2) + "\n");
    expect(cache.entryMatches(k.dir, k.fields)).toBe(true);
    expect(cache.entryMatches(k.dir, key({ ggmlNative: false }).fields)).toBe(false);
    rmSync(join(lib, "libggml-cpu.a"));
    expect(cache.entryMatches(k.dir, k.fields)).toBe(false);
  });
});

describe.skipIf(!hasTool("cmake") || !hasTool("c++"))("llama.cpp library cache build", () => {
  /** Every llama.cpp source's compile command in a configured tree, with the tree's own paths replaced. */
  function commands(buildDir: string, llamaBuildDir: string, src: string): Map<string, string> {
    const db = JSON.parse(readFileSync(join(buildDir, "compile_commands.json"), "utf8")) as {
      file: string;
      command: string;
    }[];
    const out = new Map<string, string>();
    for (const c of db) {
      if (!c.file.startsWith(src)) continue;
      const command = c.command
        .replace(/ -o \S+/, "")
        .replaceAll(llamaBuildDir, "<build>")
        .replaceAll(src, "<src>");
      out.set(c.file.slice(src.length), command);
    }
    return out;
  }

  it("compiles every llama.cpp source with the same command as the addon's own build", () => {
    const src = join(work, "llama.cpp");
    expect(bundle.unpackGitBundle(join(nodeLlamaCppDir(), "llama", "gitRelease.bundle"), src)).toBe(
      bundle.bundleHead(join(nodeLlamaCppDir(), "llama", "gitRelease.bundle")),
    );
    const configure = (args: string[]) => {
      const r = spawnSync("cmake", [...args, "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"], { encoding: "utf8" });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    };
    // The entry's configuration, as scripts/llama-lib-cache.mjs runs it.
    const entry = join(work, "entry");
    configure([
      "-S",
      src,
      "-B",
      entry,
      "-C",
      optionsFile,
      "-DCMAKE_BUILD_TYPE=Release",
      "-DGGML_CUDA=OFF",
      "-DGGML_NATIVE=ON",
    ]);
    // The addon's build with llama.cpp's tree added (MSR_REC_LLAMA_PREFIX empty).
    const addon = join(work, "addon");
    configure([
      "-S",
      packageRoot,
      "-B",
      addon,
      "-DCMAKE_BUILD_TYPE=Release",
      `-DLLAMA_CPP_DIR=${src}`,
      "-DGGML_NATIVE=ON",
      `-DCMAKE_JS_INC=${join(packageRoot, "node_modules", "node-api-headers", "include")}`,
      `-DNODE_ADDON_API_DIR=${join(packageRoot, "node_modules", "node-addon-api")}`,
    ]);
    const ours = commands(entry, entry, src);
    const reference = commands(addon, join(addon, "llama.cpp"), src);
    expect(ours.size).toBeGreaterThan(100);
    expect([...ours.keys()].sort()).toEqual([...reference.keys()].sort());
    const differing = [...ours].filter(([file, cmd]) => reference.get(file) !== cmd).map(([file]) => file);
    expect(differing).toEqual([]);
    // The flags the addon depends on are really there.
    const one = ours.get("/ggml/src/ggml-cpu/ggml-cpu.c")!;
    for (const flag of ["-fPIC", "-fvisibility=hidden", "-O3", "-march=native"]) expect(one).toContain(flag);
  }, 300_000);
});
