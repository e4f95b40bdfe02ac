import { defineConfig } from "vitest/config";

// Variables that only the tests read (everything else is a CLI flag or a bench argument):
//   MSR_REC_SKIP_INSTALL_TEST=1   leaves out test/package-install.test.ts (it packs the package and
//                                 installs it into a fresh project; minutes when the llama.cpp
//                                 library cache is cold)
//   MSR_REC_FUZZ_SEEDS=1,2,3, MSR_REC_FUZZ_RUNS=1000   a longer engine fuzz (test/engine-fuzz.test.ts)
//   MSR_REC_CRASH_SUMMARY=1       the crash corpus prints how each case ended (to compare two builds)
// and ones the tests set for themselves, never to be set by hand: MSR_REC_TEST_TEACHER_KEY and
// MSR_TEST_KEY_* (API keys of the local fake teacher server).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Compiles dist/ first: the CLI, worker-pool and install tests run the compiled package.
    globalSetup: ["./test/support/build-dist.ts"],
    // Engine tests load native models; forks keep a native crash from taking down the runner.
    pool: "forks",
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
