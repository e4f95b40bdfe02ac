// `npm run bench -- <suite> [--flag value ...] [<suite> [--flag value ...] ...]`: runs each suite in
// a fresh Node process (so one suite's warm caches and JIT state never flatter another) and writes
// bench/results/<suite>.json plus a markdown table on stdout. `--help` lists the suites;
// `<suite> --help` lists a suite's flags and their defaults. Flags are checked before any suite
// runs, so a typo fails in a second rather than after an hour of the suites before it.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { writeFileAtomic } from "../src/util/atomic-write.js";
import { packageRoot } from "../src/util/paths.js";
import { parseFlags, suiteHelp, type BenchResult, type Suite } from "./lib.js";

const here = dirname(fileURLToPath(import.meta.url));
const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const suites = readdirSync(here)
  .filter((f) => f.endsWith(ext) && !f.endsWith(".d.ts") && !["lib", "run"].includes(f.slice(0, -ext.length)))
  .map((f) => f.slice(0, -ext.length))
  .sort();

async function load(suite: string): Promise<Suite> {
  return (await import(pathToFileURL(join(here, suite + ext)).href)) as Suite;
}

function table(r: BenchResult): string {
  const rows = r.results.map((m) => `| ${m.name} | ${m.value.toPrecision(4)} | ${m.unit} |`);
  const ratios = Object.entries(r.ratios).map(([k, v]) => `| ${k} | ${v.toFixed(2)}x | ratio |`);
  const head = [`### ${r.suite} (${r.machine})`, "| measurement | value | unit |", "|---|---|---|"];
  return [...head, ...rows, ...ratios].join("\n");
}

async function child(suite: string, argv: string[]): Promise<void> {
  const mod = await load(suite);
  const result = await mod.run(parseFlags(suite, mod.flags, argv));
  const out = join(packageRoot, "bench", "results", `${suite}.json`);
  writeFileAtomic(out, JSON.stringify(result, null, 2) + "\n");
  console.log(table(result));
  console.log(`\nwritten: ${out}`);
}

/** Splits the command line into suites, each with the flags (and their values) that follow it. */
function plan(args: string[]): { suite: string; argv: string[] }[] {
  const runs: { suite: string; argv: string[] }[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (suites.includes(arg)) {
      runs.push({ suite: arg, argv: [] });
    } else if (arg.startsWith("-") && runs.length > 0) {
      const argv = runs[runs.length - 1]!.argv;
      argv.push(arg);
      // `--name value`: the value is the flag's, whatever it looks like.
      const takesValue = arg.startsWith("--") && !arg.includes("=") && arg !== "--help";
      if (takesValue && i + 1 < args.length) argv.push(args[++i]!);
    } else if (arg.startsWith("-")) {
      throw new Error(`"${arg}" comes before any suite; usage: npm run bench -- <suite> [--flag value ...]`);
    } else {
      throw new Error(`unknown benchmark suite "${arg}"; known: ${suites.join(", ")}`);
    }
  }
  return runs;
}

async function listing(): Promise<string> {
  const lines = await Promise.all(suites.map(async (s) => `  ${s.padEnd(18)} ${(await load(s)).description}`));
  return [
    "usage: npm run bench -- <suite> [--flag value ...] [<suite> ...]",
    "       npm run bench -- <suite> --help",
    "",
    "suites:",
    ...lines,
  ].join("\n");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--child") return child(args[1]!, args.slice(2));
  if (args.length === 0 || args[0] === "--help" || args[0] === "-h") {
    console.log(await listing());
    return;
  }
  const runs = plan(args);
  for (const r of runs) {
    const mod = await load(r.suite);
    if (r.argv.includes("--help") || r.argv.includes("-h")) {
      console.log(suiteHelp(r.suite, mod));
      return;
    }
    parseFlags(r.suite, mod.flags, r.argv); // throws on a bad flag before anything runs
  }
  for (const r of runs) {
    const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--child", r.suite, ...r.argv], {
      stdio: "inherit",
    });
    if (p.status !== 0) process.exitCode = 1;
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
