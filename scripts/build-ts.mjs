#!/usr/bin/env node
// Compiles the TypeScript into dist/ (tsc -p tsconfig.json) and marks the package's commands
// executable: tsc writes dist/src/cli/main.js without the exec bit, which npm sets only when it
// links `bin` for a consumer, so scripts that run `dist/src/cli/main.js` from a checkout need it.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const r = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.json")], { cwd: root, stdio: "inherit" });
if (r.status !== 0) process.exit(r.status ?? 1);
const { bin = {} } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
for (const file of Object.values(bin)) {
  const path = join(root, file);
  if (existsSync(path)) chmodSync(path, 0o755);
}
