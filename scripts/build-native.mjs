#!/usr/bin/env node
// Builds the native addon with cmake-js from the llama.cpp source that node-llama-cpp ships as a
// git bundle (no network, no git: scripts/unpack-git-bundle.mjs reads the bundle).
// Usage: node scripts/build-native.mjs [--cuda] [--cuda-arch "80;90"] [--out DIR] [--force]
// Env: MSR_REC_CUDA=1 (same as --cuda: the way to ask for CUDA through `npm install`, which passes
// no flags to a dependency's script), MSR_REC_PORTABLE=1 (no -march=native), MSR_REC_JOBS=N,
// MSR_REC_CACHE (the llama.cpp library cache's folder), CUDA_ARCHITECTURES, CC, CXX, CUDACXX.
//
// CPU builds link llama.cpp's static libraries from a per-user cache (scripts/llama-lib-cache.mjs),
// building them there first when no entry matches, so a second checkout or a project installing
// msr-rec compiles only the addon's own sources. CUDA builds, and any build where the cache cannot
// be used, compile llama.cpp inside the addon's build as before.
//
// It runs as npm's `install` step both in this repository and where msr-rec is installed as a
// dependency, so it needs nothing but the published files and the runtime dependencies.
//
// Re-running is cheap: a stamp records a hash of everything that goes into the build (our native
// sources, the llama.cpp tag, the flags); when it matches and the addon exists, nothing runs.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureLlamaLibraries, libraryKey } from "./llama-lib-cache.mjs";
import { applyPatch, patchesId, readPatches } from "./llama-patches.mjs";
import { bundleHead, unpackGitBundle } from "./unpack-git-bundle.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const cuda = args.includes("--cuda") || process.env.MSR_REC_CUDA === "1";
const force = args.includes("--force");
const archIdx = args.indexOf("--cuda-arch");
const cudaArch = archIdx >= 0 ? args[archIdx + 1] : (process.env.CUDA_ARCHITECTURES ?? "native");
const outIdx = args.indexOf("--out");
const outDir = outIdx >= 0 ? join(root, args[outIdx + 1]) : join(root, cuda ? "build-cuda" : "build");
const llamaDir = join(root, ".cache", "llama.cpp");
// msr-rec's changes to llama.cpp (scripts/llama-patches.mjs), applied to the unpacked tree.
const patches = readPatches(join(root, "native", "patches"));
const patchesHash = patchesId(patches);

// Installed as a dependency there is no `npm run build:native`; the package's own CLI rebuilds.
const asDependency = root.split(/[\\/]/).includes("node_modules");
const rerun = asDependency ? "`npx msr-rec build-native`" : "`npm run build:native`";
const rerunCuda = asDependency ? "`npx msr-rec build-native --cuda`" : "`npm run build:cuda`";

function fail(msg) {
  console.error(`\nmsr-rec: native build failed: ${msg}\n`);
  process.exit(1);
}

function which(cmd, versionArg = "--version") {
  const r = spawnSync(cmd, [versionArg], { encoding: "utf8" });
  return r.status === 0 ? (r.stdout || r.stderr).split("\n")[0] : null;
}

function checkToolchain() {
  if (!which("cmake"))
    fail(
      `cmake was not found on PATH. Install CMake >= 3.19 (Debian/Ubuntu: \`apt-get install cmake\`, macOS: \`brew install cmake\`) and run ${rerun} again.`,
    );
  const cxx = process.env.CXX ?? "c++";
  if (!which(cxx))
    fail(
      `no C++ compiler (${cxx}) was found. Install g++ or clang++ (Debian/Ubuntu: \`apt-get install build-essential\`) and run ${rerun} again.`,
    );
  if (cuda) {
    const nvcc = process.env.CUDACXX ?? "nvcc";
    if (!which(nvcc))
      fail(
        `CUDA was asked for (--cuda or MSR_REC_CUDA=1) but nvcc was not found. Install the CUDA toolkit (https://developer.nvidia.com/cuda-downloads) and put nvcc on PATH (or set CUDACXX), then run ${rerunCuda} again.`,
      );
  }
}

// Some packages (node-llama-cpp) do not export ./package.json, so locate them on disk.
function packageDir(name) {
  for (let dir = root; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) fail(`the package ${name} is not installed next to msr-rec. Run \`npm install\` first.`);
  }
}

function llamaBundle() {
  const pkgDir = packageDir("node-llama-cpp");
  const bundle = join(pkgDir, "llama", "gitRelease.bundle");
  if (!existsSync(bundle))
    fail(`node-llama-cpp's llama.cpp bundle is missing (${bundle}). Reinstall dependencies with \`npm install\`.`);
  const info = JSON.parse(readFileSync(join(pkgDir, "llama", "llama.cpp.info.json"), "utf8"));
  let commit;
  try {
    commit = bundleHead(bundle);
  } catch (err) {
    fail(
      `could not read ${bundle}: ${err.message}. Reinstall node-llama-cpp (\`npm install\`) and run ${rerun} again.`,
    );
  }
  return { bundle, tag: info.tag, commit };
}

// The unpacked source is recorded by tag, commit and patches: a tag names a node-llama-cpp release's
// llama.cpp, the commit what the bundle really holds, the patches what msr-rec changed in it.
function ensureLlamaSource({ bundle, tag, commit }) {
  const tagFile = join(llamaDir, ".msr-rec-tag");
  const id = patchesHash ? `${tag} ${commit} patches ${patchesHash}` : `${tag} ${commit}`;
  if (existsSync(tagFile) && readFileSync(tagFile, "utf8") === id) return;
  mkdirSync(dirname(llamaDir), { recursive: true });
  // Unpacked beside the target and renamed into place, so a killed unpack never looks finished.
  const tmp = `${llamaDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  rmSync(llamaDir, { recursive: true, force: true });
  try {
    unpackGitBundle(bundle, tmp);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    fail(
      `could not unpack ${bundle}: ${err.message}. Reinstall node-llama-cpp (\`npm install\`) and run ${rerun} again.`,
    );
  }
  try {
    for (const p of patches) applyPatch(tmp, p.text, p.name);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    fail(`could not patch llama.cpp's source: ${err.message}`);
  }
  writeFileSync(join(tmp, ".msr-rec-tag"), id);
  renameSync(tmp, llamaDir);
}

function hashTree(h, dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) hashTree(h, p);
    else h.update(name).update(readFileSync(p));
  }
}

const optionsFile = join(root, "cmake", "llama-options.cmake");

/** Where a CPU build's llama.cpp libraries come from in the cache (nothing is built here), or "". */
function plannedLlamaPrefix(commit) {
  if (cuda) return "";
  try {
    return libraryKey({ commit, optionsFile, ggmlNative: !portable, patches: patchesHash }).dir;
  } catch {
    return "";
  }
}

/** The cached llama.cpp libraries' prefix for a CPU build, or "" to build llama.cpp in the addon's build. */
function llamaPrefix(commit, jobs) {
  if (cuda) return "";
  try {
    return ensureLlamaLibraries({ llamaDir, commit, optionsFile, ggmlNative: !portable, patches: patchesHash, jobs });
  } catch (err) {
    console.warn(
      `msr-rec: the llama.cpp library cache could not be used (${err.message}); building llama.cpp inside the addon's build instead`,
    );
    return "";
  }
}

checkToolchain();
const bundle = llamaBundle();
ensureLlamaSource(bundle);
const portable = process.env.MSR_REC_PORTABLE === "1";
const jobs = String(Number(process.env.MSR_REC_JOBS) || Math.max(1, (await import("node:os")).availableParallelism()));

// The stamp: everything that goes into the addon, the library cache's entry named by its path (its
// name is its key). A built addon holds the libraries it linked, so an up-to-date addon needs no
// entry, even one since removed from the cache.
const h = createHash("sha256");
hashTree(h, join(root, "native"));
hashTree(h, join(root, "cmake"));
h.update(readFileSync(join(root, "CMakeLists.txt")));
h.update(`${bundle.tag} ${bundle.commit} ${patchesHash}`).update(
  JSON.stringify({ cuda, cudaArch, portable, node: process.versions.modules }),
);
const addonStamp = h.digest("hex");
const stampFile = join(outDir, ".msr-rec-stamp");
const addon = join(outDir, "Release", "msr_rec.node");
const stampFor = (prefix) => `${addonStamp} ${prefix || "llama.cpp built in the addon's build"}`;
const upToDate =
  existsSync(addon) &&
  existsSync(stampFile) &&
  readFileSync(stampFile, "utf8") === stampFor(plannedLlamaPrefix(bundle.commit));
if (!force && upToDate) {
  console.log(`msr-rec: native addon is up to date (${addon})`);
  process.exit(0);
}
const prefix = llamaPrefix(bundle.commit, jobs);

const cmakeJs = join(packageDir("cmake-js"), "bin", "cmake-js");
const nodeAddonApi = packageDir("node-addon-api");
const defs = [
  `--CDLLAMA_CPP_DIR=${llamaDir}`,
  `--CDNODE_ADDON_API_DIR=${nodeAddonApi}`,
  `--CDMSR_REC_CUDA=${cuda ? "ON" : "OFF"}`,
  `--CDGGML_NATIVE=${portable ? "OFF" : "ON"}`,
  `--CDMSR_REC_LLAMA_PREFIX=${prefix}`,
];
if (cuda) defs.push(`--CDCMAKE_CUDA_ARCHITECTURES=${cudaArch}`);
console.log(
  `msr-rec: building the native addon (${cuda ? "CUDA" : "CPU"}, llama.cpp ${bundle.tag}, ${jobs} jobs) into ${outDir}`,
);
// Configured every time: cmake-js's build step alone keeps a build folder's first configuration,
// so a changed option (portable, the library prefix) would otherwise never reach CMake.
for (const step of [
  ["configure", ...defs],
  ["build", "-p", jobs],
]) {
  const r = spawnSync(process.execPath, [cmakeJs, step[0], "-d", root, "-O", outDir, "-m", ...step.slice(1)], {
    stdio: "inherit",
    cwd: root,
  });
  if (r.status !== 0) fail(`cmake-js ${step[0]} exited with an error (see the output above).`);
}
writeFileSync(stampFile, stampFor(prefix));
console.log(`msr-rec: built ${addon}`);
