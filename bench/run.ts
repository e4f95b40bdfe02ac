// `npm run bench -- <suite> [<suite> ...]`: runs each suite in a fresh Node process (so one suite's
// warm caches and JIT state never flatter another) and writes bench/results/<suite>.json plus a
// markdown table on stdout. With no suite named, lists the suites.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { writeFileAtomic } from "../src/util/atomic-write.js";
import { packageRoot } from "../src/util/paths.js";
import type { BenchResult } from "./lib.js";

const here = dirname(fileURLToPath(import.meta.url));
const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const suites = readdirSync(here)
  .filter((f) => f.endsWith(ext) && !f.endsWith(".d.ts") && !["lib", "run"].includes(f.slice(0, -ext.length)))
  .map((f) => f.slice(0, -ext.length))
  .sort();

function table(r: BenchResult): string {
  const rows = r.results.map((m) => `| ${m.name} | ${m.value.toPrecision(4)} | ${m.unit} |`);
  const ratios = Object.entries(r.ratios).map(([k, v]) => `| ${k} | ${v.toFixed(2)}x | ratio |`);
  return [`### ${r.suite} (${r.machine})`, "| measurement | value | unit |", "|---|---|---|", ...rows, ...ratios].join("\n");
}

async function child(suite: string): Promise<void> {
  const mod = (await import(pathToFileURL(join(here, suite + ext)).href)) as { run(): Promise<BenchResult> };
  const result = await mod.run();
  const out = join(packageRoot, "bench", "results", `${suite}.json`);
  writeFileAtomic(out, JSON.stringify(result, null, 2) + "\n");
  console.log(table(result));
  console.log(`\nwritten: ${out}`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--child") return child(args[1]!);
  if (args.length === 0) {
    console.log(`usage: npm run bench -- <suite> [...]\nsuites: ${suites.join(", ")}`);
    return;
  }
  for (const suite of args) {
    if (!suites.includes(suite)) throw new Error(`unknown benchmark suite "${suite}"; known: ${suites.join(", ")}`);
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--child", suite], { stdio: "inherit" });
    if (r.status !== 0) process.exitCode = 1;
  }
}

if (!existsSync(here)) throw new Error("bench folder missing");
main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
