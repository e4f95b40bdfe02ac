// Classic baselines against hand-computed expectations on a small fixture; the RecBole export
// reproduces the split under RecBole's leave-one-out semantics; the CLI commands end to end.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { describe, expect, it, vi } from "vitest";
import { register as registerBaselines } from "../src/cli/commands/baselines.js";
import { register as registerExport } from "../src/cli/commands/export.js";
import { register as registerPrepare } from "../src/cli/commands/prepare.js";
import { readDataset } from "../src/data/dataset.js";
import { exportRecbole } from "../src/data/export-recbole.js";
import { prepareSynthetic } from "../src/data/synthetic.js";
import type { UserSplit } from "../src/data/types.js";
import { buildBaseline, evaluateBaseline, trainingCounts, trainingTransitions } from "../src/eval/baselines.js";

// Training counts: p 3, q 3, s 2, r 1, t 1. Transitions: p→q 2, q→s 2, q→r 1, s→t 1, t→p 1.
const users: UserSplit[] = [
  {
    user: "U1",
    train: ["p", "q", "r"],
    valid: "s",
    test: "t",
    candidates: { valid: ["s", "w", "q"], test: ["p", "t", "u"] },
  },
  {
    user: "U2",
    train: ["q", "s", "t", "p"],
    valid: "r",
    test: "u",
    candidates: { valid: ["r", "v", "w"], test: ["v", "u", "w"] },
  },
  {
    user: "U3",
    train: ["p", "q", "s"],
    valid: "u",
    test: "r",
    candidates: { valid: ["w", "u", "t"], test: ["r", "t", "v"] },
  },
];

describe("baselines on a hand-checked fixture", () => {
  it("counts training items and transitions only", () => {
    expect(Object.fromEntries(trainingCounts(users))).toEqual({ p: 3, q: 3, r: 1, s: 2, t: 1 });
    const t = trainingTransitions(users);
    expect(Object.fromEntries([...t].map(([k, v]) => [k, Object.fromEntries(v)]))).toEqual({
      p: { q: 2 },
      q: { r: 1, s: 2 },
      s: { t: 1 },
      t: { p: 1 },
    });
  });

  it("popularity and Markov pick what a hand computation picks", () => {
    const pop = buildBaseline("popularity", users);
    const markov = buildBaseline("markov", users);
    // Test split (history ends with the valid item): U1 last s → t (transition), popularity p.
    // U2 last r has no transition; all candidates unseen → first candidate v. U3 last u → fallback, r vs t tie at 1 → r (earlier).
    expect(users.map((u) => pop.choose(u, "test"))).toEqual(["p", "v", "r"]);
    expect(users.map((u) => markov.choose(u, "test"))).toEqual(["t", "v", "r"]);
    // Valid split (history = train): U1 last r → none → q (3); U2 last p → q not a candidate → popularity r; U3 last s → t.
    expect(users.map((u) => pop.choose(u, "valid"))).toEqual(["q", "r", "t"]);
    expect(users.map((u) => markov.choose(u, "valid"))).toEqual(["q", "r", "t"]);
    expect(evaluateBaseline("popularity", users, "test")).toEqual({
      name: "popularity",
      split: "test",
      hits: 1,
      users: 3,
      hitRatio1: 1 / 3,
    });
    expect(evaluateBaseline("markov", users, "test").hits).toBe(2);
    expect(evaluateBaseline("markov", users, "valid").hits).toBe(1);
  });

  it("random is seeded, reproducible, and hits about 1/6 on six candidates", () => {
    const p = prepareSynthetic({ users: 1500, items: 200, seed: 9 });
    const a = evaluateBaseline("random", p.users, "test", 3);
    expect(evaluateBaseline("random", p.users, "test", 3)).toEqual(a);
    const sd = Math.sqrt(((1 / 6) * (5 / 6)) / a.users);
    expect(Math.abs(a.hitRatio1 - 1 / 6)).toBeLessThan(4 * sd);
    const r1 = buildBaseline("random", p.users, 1),
      r2 = buildBaseline("random", p.users, 2);
    expect(p.users.some((u) => r1.choose(u, "test") !== r2.choose(u, "test"))).toBe(true);
    for (const u of p.users.slice(0, 50)) expect(u.candidates.test).toContain(r1.choose(u, "test"));
  });
});

describe("RecBole export", () => {
  it("reproduces the split under RecBole's leave-one-out (order by timestamp per user)", () => {
    const p = prepareSynthetic({ users: 80, items: 120, seed: 3 });
    const out = join(mkdtempSync(join(tmpdir(), "msr-rb-")), "toy");
    const r = exportRecbole({ items: p.items, users: p.users }, out);
    expect(r.name).toBe("toy");
    const rows = readFileSync(join(out, "toy.inter"), "utf8").trim().split("\n");
    expect(rows[0]).toBe("user_id:token\titem_id:token\ttimestamp:float");
    // RecBole LS: sort each user's rows by timestamp, last = test, second last = valid.
    const byUser = new Map<string, [number, string][]>();
    for (const row of rows.slice(1).reverse()) {
      // reversed: order must come from the timestamps
      const [u, i, t] = row.split("\t");
      byUser.set(u!, [...(byUser.get(u!) ?? []), [Number(t), i!]]);
    }
    for (const u of p.users) {
      const seq = byUser
        .get(u.user)!
        .sort((a, b) => a[0] - b[0])
        .map(([, i]) => i);
      expect({ train: seq.slice(0, -2), valid: seq.at(-2), test: seq.at(-1) }).toEqual({
        train: u.train,
        valid: u.valid,
        test: u.test,
      });
    }
    const items = readFileSync(join(out, "toy.item"), "utf8").trim().split("\n");
    expect(items.length).toBe(p.items.length + 1);
    expect(items[1]).toBe(`${p.items[0]!.id}\t${p.items[0]!.title}`);
    const cands = readFileSync(join(out, "toy.candidates"), "utf8").trim().split("\n");
    expect(cands[2]).toBe(`${p.users[0]!.user}\ttest\t${p.users[0]!.candidates.test.join(" ")}`);
    expect(readFileSync(join(out, "toy.yaml"), "utf8")).toMatch(/split: \{LS: valid_and_test\}/);
    expect(() => exportRecbole({ items: [], users: [{ ...p.users[0]!, user: "a b" }] }, out)).toThrow(/whitespace/);
  });
});

describe("CLI: prepare → baselines → export", () => {
  it("runs end to end on the synthetic catalog", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-cli-"));
    const out: string[] = [];
    const spy = vi
      .spyOn(process.stdout, "write")
      .mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    const err = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      const run = async (...args: string[]): Promise<void> => {
        const program = new Command("msr-rec").exitOverride();
        for (const r of [registerPrepare, registerBaselines, registerExport]) r(program);
        await program.parseAsync(["node", "msr-rec", ...args]);
      };
      await run(
        "prepare",
        "--format",
        "synthetic",
        "--out",
        join(dir, "ds"),
        "--users",
        "300",
        "--items",
        "150",
        "--seed",
        "2",
      );
      expect(out.join("")).toMatch(/prepared\s+300\s+/);
      const ds = await readDataset(join(dir, "ds"));
      expect(ds.users).toHaveLength(300);
      await run("baselines", "--data", join(dir, "ds"));
      const markov = evaluateBaseline("markov", ds.users, "test");
      expect(out.join("")).toContain(
        `markov     ${String(markov.hits).padStart(6)}    300  ${markov.hitRatio1.toFixed(4)}`,
      );
      await run("export", "--data", join(dir, "ds"), "--out", join(dir, "rb", "syn"));
      expect(readFileSync(join(dir, "rb", "syn", "syn.inter"), "utf8").split("\n").length).toBe(
        ds.stats.interactions + 2,
      );
      await expect(run("prepare", "--format", "amazon2020", "--out", join(dir, "x"))).rejects.toThrow(
        /unknown --format/,
      );
      await expect(run("prepare", "--format", "recbole", "--out", join(dir, "x"))).rejects.toThrow(
        /--input is required/,
      );
    } finally {
      spy.mockRestore();
      err.mockRestore();
    }
  });
});
