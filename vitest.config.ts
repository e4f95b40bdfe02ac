import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Engine tests load native models; forks keep a native crash from taking down the runner.
    pool: "forks",
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
