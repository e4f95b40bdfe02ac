// A per-user cache of llama.cpp's static libraries (CPU builds), so that compiling llama.cpp happens
// once per machine and llama.cpp version, not once per checkout or per project that installs
// msr-rec: the addon's CMake build links an entry (MSR_REC_LLAMA_PREFIX) instead of building
// llama.cpp's tree itself.
//
// Where: $MSR_REC_CACHE, else $XDG_CACHE_HOME/msr-rec, else ~/.cache/msr-rec; entries live under
// llama.cpp/<commit>-cpu-<key>/ as an install prefix (lib/, include/, lib/cmake/) plus key.json.
//
// An entry is only ever served for exactly what built it: its key hashes the llama.cpp commit,
// msr-rec's patches to its source (their hash, "" for none), cmake/llama-options.cmake (static, PIC, hidden visibility, what is left out), GGML_NATIVE and,
// when native, this CPU's model and feature flags, the C and C++ compilers (path and version),
// CFLAGS/CXXFLAGS/LDFLAGS, CMake's version, the platform and this recipe's own arguments. key.json
// holds the unhashed key and is compared in full before an entry is used.
//
// Concurrent builds never corrupt it: each builds and installs into its own temporary folder and
// renames that into place; a rename that finds the entry already there (another build won) keeps
// the other's and drops its own.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, homedir } from "node:os";
import { delimiter, join } from "node:path";

/** Bumped when the way this file builds an entry changes in a way its key does not show. */
const RECIPE = 1;
const LIBS = ["libllama.a", "libggml.a", "libggml-base.a", "libggml-cpu.a"];

/** The cache's root folder. */
export function cacheRoot(env = process.env) {
  if (env.MSR_REC_CACHE) return env.MSR_REC_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "msr-rec");
}

/** A program on PATH (or a path), resolved to the file it runs, and its `--version` first line. */
function toolIdentity(cmd, env) {
  const dirs = cmd.includes("/") ? [""] : (env.PATH ?? "").split(delimiter);
  for (const dir of dirs) {
    const p = dir ? join(dir, cmd) : cmd;
    if (!existsSync(p)) continue;
    const r = spawnSync(p, ["--version"], { encoding: "utf8" });
    if (r.status === 0) return { path: realpathSync(p), version: (r.stdout || r.stderr).split("\n")[0].trim() };
  }
  return null;
}

/** What -march=native means on this machine: the CPU model and its feature flags. */
function cpuIdentity() {
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const field = (name) => new RegExp(`^${name}\\s*:\\s*(.*)$`, "m").exec(info)?.[1]?.trim() ?? "";
    return { model: field("model name"), flags: field("flags") || field("Features") };
  } catch {
    return { model: cpus()[0]?.model ?? "unknown", flags: "" };
  }
}

/** The CMake arguments an entry is configured with (beyond the options file). */
function cmakeArgs(ggmlNative) {
  return ["-DCMAKE_BUILD_TYPE=Release", "-DGGML_CUDA=OFF", `-DGGML_NATIVE=${ggmlNative ? "ON" : "OFF"}`];
}

/**
 * The key of the entry for these inputs: `{ fields, id, dir }`. `fields` is everything that decides
 * the libraries' bytes; `id` names the entry folder.
 */
export function libraryKey({ commit, optionsFile, ggmlNative, patches = "", env = process.env }) {
  const fields = {
    recipe: RECIPE,
    commit,
    patches,
    options: createHash("sha256").update(readFileSync(optionsFile)).digest("hex"),
    cmakeArgs: cmakeArgs(ggmlNative),
    cpu: ggmlNative ? cpuIdentity() : null,
    cc: toolIdentity(env.CC || "cc", env),
    cxx: toolIdentity(env.CXX || "c++", env),
    cmake: toolIdentity("cmake", env)?.version ?? null,
    flags: { CFLAGS: env.CFLAGS ?? "", CXXFLAGS: env.CXXFLAGS ?? "", LDFLAGS: env.LDFLAGS ?? "" },
    platform: `${process.platform}-${process.arch}`,
  };
  const hash = createHash("sha256").update(JSON.stringify(fields)).digest("hex").slice(0, 16);
  const id = `${commit.slice(0, 12)}${patches ? "-patched" : ""}-cpu-${hash}`;
  return { fields, id, dir: join(cacheRoot(env), "llama.cpp", id) };
}

/** Whether `dir` is a complete entry built for exactly `fields`. */
export function entryMatches(dir, fields) {
  try {
    const stored = readFileSync(join(dir, "key.json"), "utf8");
    if (stored !== JSON.stringify(fields, null, 2) + "\n") return false;
  } catch {
    return false;
  }
  return (
    LIBS.every((lib) => existsSync(join(dir, "lib", lib))) &&
    existsSync(join(dir, "lib", "cmake", "llama", "llama-config.cmake"))
  );
}

function run(args, log) {
  log(`cmake ${args.join(" ")}`);
  const r = spawnSync("cmake", args, { stdio: "inherit" });
  if (r.status !== 0) throw new Error(`cmake ${args[0]} exited ${r.status ?? r.signal}`);
}

/**
 * The install prefix of llama.cpp's libraries for these inputs, built into the cache first when no
 * entry matches. Throws when the build or the cache folder fails; the caller then builds llama.cpp
 * inside the addon's own build as before.
 */
export function ensureLlamaLibraries({
  llamaDir,
  commit,
  optionsFile,
  ggmlNative,
  patches = "",
  jobs,
  env = process.env,
  log = console.log,
}) {
  const key = libraryKey({ commit, optionsFile, ggmlNative, patches, env });
  if (entryMatches(key.dir, key.fields)) {
    log(`msr-rec: llama.cpp's libraries from the cache (${key.dir})`);
    return key.dir;
  }
  const parent = join(cacheRoot(env), "llama.cpp");
  mkdirSync(parent, { recursive: true });
  const tmp = mkdtempSync(join(parent, `.tmp-${key.id}-`));
  try {
    log(`msr-rec: building llama.cpp's libraries once for this machine (${jobs} jobs) into ${key.dir}`);
    const build = join(tmp, "build");
    const prefix = join(tmp, "prefix");
    run(
      ["-S", llamaDir, "-B", build, "-C", optionsFile, ...cmakeArgs(ggmlNative), `-DCMAKE_INSTALL_PREFIX=${prefix}`],
      log,
    );
    run(["--build", build, "--config", "Release", "--parallel", String(jobs)], log);
    run(["--install", build, "--config", "Release"], log);
    writeFileSync(join(prefix, "key.json"), JSON.stringify(key.fields, null, 2) + "\n");
    if (!entryMatches(prefix, key.fields))
      throw new Error(`the install in ${prefix} lacks ${LIBS.join(", ")} or llama-config.cmake`);
    // A damaged entry (never a complete one of this key: those are used above) is moved aside first.
    if (existsSync(key.dir)) renameSync(key.dir, join(tmp, "replaced"));
    try {
      renameSync(prefix, key.dir);
    } catch (err) {
      // Another build of the same key finished first: its entry is as good as ours.
      if (!entryMatches(key.dir, key.fields)) throw err;
    }
    return key.dir;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
