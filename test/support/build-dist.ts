// Vitest global setup: compiles the TypeScript into dist/ before any test runs. Several tests run
// the compiled package (the CLI in a child process, worker-thread pools, `npm pack`); built here,
// they never test a dist/ older than the sources. tsconfig.json is incremental (its build info is
// dist/.tsbuildinfo); when no input is newer than that file, even tsc's start-up is skipped.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../src/util/paths.js";

const buildInfo = join(packageRoot, "dist", ".tsbuildinfo");

/** The newest modification time under the compiled folders and of the files that configure tsc. */
function newestInput(): number {
  let newest = 0;
  const visit = (path: string): void => {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return;
    // A folder's own time changes when an entry is added, removed or renamed (a deleted source).
    newest = Math.max(newest, st.mtimeMs);
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  for (const p of ["src", "bench", "tsconfig.json", "package.json", "package-lock.json"]) visit(join(packageRoot, p));
  return newest;
}

/** The package's `bin` files, executable (as scripts/build-ts.mjs leaves them). */
function markCommandsExecutable(): void {
  const { bin = {} } = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as {
    bin?: Record<string, string>;
  };
  for (const file of Object.values(bin)) {
    const path = join(packageRoot, file);
    if (existsSync(path)) chmodSync(path, 0o755);
  }
}

export function setup(): void {
  const built = statSync(buildInfo, { throwIfNoEntry: false });
  if (built && built.mtimeMs > newestInput()) {
    markCommandsExecutable(); // a dist/ compiled by a bare `tsc` lacks the exec bit build-ts.mjs sets
    return;
  }
  const t0 = performance.now();
  // The same build as `npm run build:ts` (tsc, then the exec bit on the package's commands).
  const r = spawnSync(process.execPath, [join(packageRoot, "scripts", "build-ts.mjs")], {
    cwd: packageRoot,
    encoding: "utf8",
  });
  if (r.status !== 0) {
    throw new Error(
      `tsc -p tsconfig.json failed, so dist/ may not match the sources; fix these errors first:\n${r.stdout}${r.stderr}`,
    );
  }
  // tsc leaves its build info untouched when nothing needed emitting; stamp it as checked now.
  const now = new Date();
  utimesSync(buildInfo, now, now);
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  process.stdout.write(`dist/ compiled from the sources (tsc -p tsconfig.json, ${seconds} s)\n`);
}
