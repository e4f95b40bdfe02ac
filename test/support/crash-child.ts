// Runs one crash-corpus or fuzz case in this process and prints one JSON line: how it ended.
// The parent (test/engine-crash-corpus.test.ts, test/engine-fuzz.test.ts) judges the line and
// how this process exited; a native abort or segfault shows up as a signal there.
import { CASES, type Fixtures } from "./crash-cases.js";
import { runFuzz } from "./fuzz.js";

export interface ChildOutcome {
  /** "resolved": the case returned (checkError says if its value was wrong); "rejected": it threw. */
  outcome: "resolved" | "rejected";
  message?: string;
  errorName?: string;
  checkError?: string;
  /** Fuzz runs only: how many property runs were tried, and how many of them returned a result. */
  runs?: number;
  resolvedRuns?: number;
}

const [mode, arg, fixturesJson] = process.argv.slice(2);
const fixtures = JSON.parse(fixturesJson ?? "{}") as Fixtures;

async function main(): Promise<ChildOutcome> {
  if (mode === "fuzz") return runFuzz(fixtures, JSON.parse(arg!) as { seed: number; runs: number });
  const c = CASES[arg!];
  if (!c) throw new Error(`no crash case named ${arg}`);
  let value: unknown;
  try {
    value = await c.run(fixtures);
  } catch (e) {
    const err = e as Error;
    return { outcome: "rejected", message: String(err?.message ?? e), errorName: err?.constructor?.name };
  }
  try {
    c.check?.(value);
    return { outcome: "resolved" };
  } catch (e) {
    return { outcome: "resolved", checkError: String((e as Error).message) };
  }
}

process.on("unhandledRejection", (e) => {
  process.stdout.write(
    JSON.stringify({ outcome: "rejected", message: `unhandled rejection: ${String((e as Error)?.message ?? e)}` }) +
      "\n",
  );
  process.exitCode = 3;
});

main().then(
  (r) => process.stdout.write(JSON.stringify(r) + "\n"),
  (e) => {
    process.stdout.write(
      JSON.stringify({ outcome: "rejected", message: `runner: ${String((e as Error)?.message ?? e)}` }) + "\n",
    );
    process.exitCode = 2;
  },
);
