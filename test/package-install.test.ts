// msr-rec as a dependency: `npm pack` the package, install the tarball into a fresh project the way
// a consumer does (npm runs the native build there, from the published files only), compile a
// TypeScript consumer against the published types, and run it: a tiny model made with
// `npx msr-rec init-model`, then scoring, generation and a LoRA training step, each checked.
//
// The consumer's install compiles the addon's own sources and links llama.cpp's libraries from the
// per-user cache (scripts/llama-lib-cache.mjs) that this repository's own build filled: llama.cpp
// is compiled once per machine, not once more here. Still slow (minutes), so it runs alone in its
// file, and MSR_REC_SKIP_INSTALL_TEST=1 skips it for quick local runs.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { nodeLlamaCppDir, packageRoot } from "../src/util/paths.js";

const skip = process.env.MSR_REC_SKIP_INSTALL_TEST === "1";
const work = mkdtempSync(join(tmpdir(), "msr-rec-consumer-"));
const app = join(work, "app");
const pkg = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
};

// The consumer's environment: nothing that points at this repository's own build.
const env: NodeJS.ProcessEnv = { ...process.env };
delete env.MSR_REC_ADDON;
delete env.NODE_OPTIONS;

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`,
    );
  }
  return r;
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The library cache entry a CPU build on this machine links (the consumer's env is this one's). */
async function libraryCacheEntry(): Promise<string> {
  const { libraryKey } = (await import(join(packageRoot, "scripts", "llama-lib-cache.mjs"))) as {
    libraryKey(inputs: {
      commit: string;
      optionsFile: string;
      ggmlNative: boolean;
      patches?: string;
      env?: NodeJS.ProcessEnv;
    }): {
      dir: string;
    };
  };
  const { readPatches, patchesId } = (await import(join(packageRoot, "scripts", "llama-patches.mjs"))) as {
    readPatches(dir: string): { name: string; text: string }[];
    patchesId(patches: { name: string; text: string }[]): string;
  };
  const { bundleHead } = (await import(join(packageRoot, "scripts", "unpack-git-bundle.mjs"))) as {
    bundleHead(path: string): string;
  };
  const commit = bundleHead(join(nodeLlamaCppDir(), "llama", "gitRelease.bundle"));
  const optionsFile = join(packageRoot, "cmake", "llama-options.cmake");
  const patches = patchesId(readPatches(join(packageRoot, "native", "patches")));
  return libraryKey({ commit, optionsFile, ggmlNative: env.MSR_REC_PORTABLE !== "1", patches, env }).dir;
}

describe.skipIf(skip)("npm install msr-rec in another project", () => {
  let tarball = "";

  it("packs everything the native build and the runtime need, and nothing of the repository's own", () => {
    // dist/ is already built (the tests' global setup); --ignore-scripts keeps a second tsc from
    // rewriting dist/ under the other test files.
    const r = run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], packageRoot);
    const [info] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
    tarball = join(work, info!.filename);
    const files = new Set(info!.files.map((f) => f.path));
    for (const f of [
      "CMakeLists.txt",
      "cmake/llama-options.cmake",
      "scripts/build-native.mjs",
      "scripts/llama-lib-cache.mjs",
      "scripts/llama-patches.mjs",
      "native/patches/llama-graph-f32-kv-cache.patch",
      "native/src/scorer.cpp",
      "native/kernels/fused_ce.h",
      "dist/src/index.js",
      "dist/src/index.d.ts",
      "dist/src/cli/main.js",
      "src/prompts/templates/teacher.txt",
    ]) {
      expect(files, f).toContain(f);
    }
    const stray = [...files].filter((f) => /^(test|bench|dist\/bench|build|\.cache|runs)\//.test(f));
    expect(stray).toEqual([]);
  });

  it(
    "installs with only the runtime dependencies, compiles a TypeScript consumer and runs it",
    async () => {
      mkdirSync(app);
      writeFileSync(
        join(app, "package.json"),
        JSON.stringify(
          {
            name: "msr-rec-consumer",
            version: "1.0.0",
            private: true,
            type: "module",
            // npm 11 asks projects to approve dependencies' install scripts; msr-rec's is its native build.
            allowScripts: { "msr-rec": true },
          },
          null,
          2,
        ),
      );
      const entry = await libraryCacheEntry();
      const cached = existsSync(join(entry, "key.json"));
      const t0 = Date.now();
      // --foreground-scripts: the native build's own lines (cache hit or build) come back in stdout.
      const install = run("npm", ["install", "--no-audit", "--no-fund", "--foreground-scripts", tarball], app);
      const installSeconds = (Date.now() - t0) / 1000;
      console.log(
        `npm install of the msr-rec tarball (native build included, llama.cpp libraries ${cached ? "cached" : "built"}): ${installSeconds.toFixed(0)} s`,
      );
      const installed = join(app, "node_modules", "msr-rec");
      expect(readdirSync(join(installed, "build", "Release"))).toContain("msr_rec.node");
      // The addon linked the cache's libraries: found there when this repository's build had filled
      // the entry, built into it otherwise; never compiled inside the consumer's build.
      expect(install.stdout).toContain(cached ? `llama.cpp's libraries from the cache (${entry})` : `into ${entry}`);
      const cmakeCache = readFileSync(join(installed, "build", "CMakeCache.txt"), "utf8");
      expect(cmakeCache).toContain(`MSR_REC_LLAMA_PREFIX:PATH=${entry}`);
      expect(existsSync(join(installed, "build", "llama.cpp"))).toBe(false);
      // Nothing from the devDependencies came along.
      expect(readdirSync(join(app, "node_modules"))).not.toContain("vitest");

      // The consumer's own toolchain, as a consumer would add it.
      run(
        "npm",
        [
          "install",
          "--no-audit",
          "--no-fund",
          "--save-dev",
          `typescript@${pkg.devDependencies.typescript}`,
          `@types/node@${pkg.devDependencies["@types/node"]}`,
        ],
        app,
      );
      writeFileSync(
        join(app, "tsconfig.json"),
        JSON.stringify(
          {
            compilerOptions: {
              target: "ES2022",
              module: "NodeNext",
              moduleResolution: "NodeNext",
              strict: true,
              outDir: "out",
              types: ["node"],
            },
            files: ["consumer.ts"],
          },
          null,
          2,
        ),
      );
      copyFileSync(join(packageRoot, "test", "fixtures", "consumer.ts"), join(app, "consumer.ts"));
      run("npx", ["tsc", "--noEmit"], app); // type-checks against the published .d.ts (no skipLibCheck)
      run("npx", ["tsc"], app);

      const init = run("npx", ["msr-rec", "init-model", "--preset", "tiny", "--seed", "3", "--out", "tiny.gguf"], app);
      expect(init.status).toBe(0);
      const out = run("node", ["out/consumer.js", "tiny.gguf"], app);
      const report = JSON.parse(out.stdout.trim().split("\n").pop()!) as Record<string, number | boolean>;
      expect(report).toMatchObject({
        logprobIsSum: true,
        batchedEqualsSeparate: true,
        greedyIsArgmax: true,
        seededRepeats: true,
        lossFell: true,
        adapterRaisesLikelihood: true,
      });
    },
    40 * 60_000,
  );

  it("names the rebuild command when the install step was skipped", () => {
    const release = join(app, "node_modules", "msr-rec", "build", "Release");
    renameSync(release, `${release}.moved`);
    try {
      const r = spawnSync("node", ["out/consumer.js", "tiny.gguf"], { cwd: app, env, encoding: "utf8" });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/native addon is not built .*npx msr-rec build-native/s);
    } finally {
      renameSync(`${release}.moved`, release);
    }
    const help = spawnSync("npx", ["msr-rec", "build-native", "--help"], { cwd: app, env, encoding: "utf8" });
    expect(help.stdout).toMatch(/--cuda/);
  });
});
