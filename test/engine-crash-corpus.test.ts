// The crash corpus (test/support/crash-cases.ts): every case runs in its own node process and
// must end normally, with the expected Error or a value its check accepts. A child that dies by a
// signal (abort, segfault) or exits with a non-zero code fails its case.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CASES } from "./support/crash-cases.js";
import { buildChild, describeChild, makeFixtures, pool, runChild, type ChildResult } from "./support/crash-runner.js";

// MSR_REC_CRASH_ONLY=text: only the cases whose name contains it (e.g. while working on one class).
const only = process.env.MSR_REC_CRASH_ONLY;
const names = Object.keys(CASES).filter((n) => !only || n.includes(only));
const results = new Map<string, ChildResult>();

beforeAll(async () => {
  const file = await buildChild();
  const fixtures = await makeFixtures(mkdtempSync(join(tmpdir(), "msr-rec-crash-")));
  const done = await pool(names, 3, (name) => runChild(file, ["case", name], fixtures));
  names.forEach((n, i) => results.set(n, done[i]!));
  // MSR_REC_CRASH_SUMMARY=1: one line per case (how it ended), e.g. to compare two addon builds.
  if (process.env.MSR_REC_CRASH_SUMMARY) {
    for (const [n, r] of results)
      console.log(
        `${n}: ${r.signal ?? `exit ${r.code}`} ${r.outcome?.outcome ?? "-"} ${(r.outcome?.checkError ?? r.outcome?.message ?? "").slice(0, 120)}`,
      );
  }
}, 300_000);

describe("crash corpus: nothing a caller does kills the process", () => {
  it.each(names)("%s", (name) => {
    const r = results.get(name)!;
    const c = CASES[name]!;
    expect(r.signal, describeChild(r)).toBeNull();
    expect(r.code, describeChild(r)).toBe(0);
    expect(r.outcome, describeChild(r)).toBeDefined();
    if (c.error) {
      expect(r.outcome!.outcome, describeChild(r)).toBe("rejected");
      expect(r.outcome!.message).toMatch(c.error);
    } else {
      expect(r.outcome!.outcome, describeChild(r)).toBe("resolved");
      expect(r.outcome!.checkError, describeChild(r)).toBeUndefined();
    }
  });
});
