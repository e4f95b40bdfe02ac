// Real data from ../shared/data (never copied into the repo): MovieLens-100K as RecBole atomic
// files and LLaRA's processed LastFM split. Checked against naive references computed here from
// the raw text. Skipped, with the reason printed, when the data is absent.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LLARA_WINDOW, readLlara } from "../src/data/formats/llara.js";
import { readRecbole } from "../src/data/formats/recbole.js";
import { applyProtocol, kcoreFilter, userSequences } from "../src/data/protocol.js";

const dataRoot = join(import.meta.dirname, "..", "..", "shared", "data");
const ml100k = join(dataRoot, "ml-100k");
const lastfm = join(dataRoot, "llara-lastfm");
const haveMl = existsSync(join(ml100k, "ml-100k.inter"));
const haveLastfm = existsSync(join(lastfm, "train.jsonl"));
if (!haveMl) console.log(`skipping ml-100k tests: ${ml100k} not found`);
if (!haveLastfm) console.log(`skipping LLaRA LastFM tests: ${lastfm} not found`);

describe.skipIf(!haveMl)("ml-100k (RecBole atomic files)", () => {
  it("reads 943 users, 1,682 items, 100,000 interactions; k-core and splits match naive references", async () => {
    const raw = await readRecbole(ml100k);
    // Naive reference: split the text by hand.
    const rows = readFileSync(join(ml100k, "ml-100k.inter"), "utf8")
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => l.split("\t"));
    expect(raw.interactions.length).toBe(100000);
    expect(rows.length).toBe(100000);
    expect(new Set(raw.interactions.map((i) => i.user)).size).toBe(943);
    expect(new Set(raw.interactions.map((i) => i.item)).size).toBe(1682);
    expect(raw.items.size).toBe(1682);
    expect(raw.items.get("1")!.title).toBe("Toy Story");
    const mismatched = raw.interactions.filter(
      (it, n) =>
        it.user !== rows[n]![0] ||
        it.item !== rows[n]![1] ||
        it.time !== Number(rows[n]![3]) ||
        it.rating !== Number(rows[n]![2]),
    );
    expect(mismatched).toEqual([]);

    // Naive iterative 5-core over the distinct pairs.
    let pairs = [...new Set(rows.map((r) => `${r[0]}\t${r[1]}`))].map((p) => p.split("\t") as [string, string]);
    for (;;) {
      const ud = new Map<string, number>(),
        id = new Map<string, number>();
      for (const [u, i] of pairs) {
        ud.set(u, (ud.get(u) ?? 0) + 1);
        id.set(i, (id.get(i) ?? 0) + 1);
      }
      const next = pairs.filter(([u, i]) => ud.get(u)! >= 5 && id.get(i)! >= 5);
      if (next.length === pairs.length) break;
      pairs = next;
    }
    const core = kcoreFilter(userSequences(raw.interactions), 5);
    expect([...core.values()].reduce((n, s) => n + s.length, 0)).toBe(pairs.length);

    const p = applyProtocol(raw.interactions, raw.items, { kcore: 5, users: 1500, seed: 1 });
    expect(p.stats.raw).toMatchObject({ users: 943, items: 1682, interactions: 100000 });
    expect(p.stats).toMatchObject({
      users: 943,
      items: new Set(pairs.map(([, i]) => i)).size,
      interactions: pairs.length,
    });
    // Leave-one-out against a naive per-user sort of the text rows (time, then file line).
    const kept = new Set(pairs.map(([u, i]) => `${u}\t${i}`));
    const byUser = new Map<string, { r: string[]; line: number }[]>();
    rows.forEach(
      (r, line) => kept.has(`${r[0]}\t${r[1]}`) && byUser.set(r[0]!, [...(byUser.get(r[0]!) ?? []), { r, line }]),
    );
    for (const u of p.users) {
      const mine = byUser.get(u.user)!;
      mine.sort((a, b) => Number(a.r[3]) - Number(b.r[3]) || a.line - b.line);
      const items = mine.map(({ r }) => r[1]!);
      expect([...u.train, u.valid, u.test]).toEqual(items);
    }
  });
});

describe.skipIf(!haveLastfm)("LLaRA LastFM", () => {
  it("rebuilds user sequences that regenerate every line of the files", async () => {
    const d = await readLlara(lastfm, { threads: 1 });
    const seqs = new Map<string, string[]>();
    for (const i of d.interactions) seqs.set(i.user, [...(seqs.get(i.user) ?? []), i.item]);
    const names = readFileSync(join(lastfm, "id2name.txt"), "utf8").trim().split("\n");
    expect(d.items.size).toBe(names.length);

    for (const split of ["train", "valid", "test"] as const) {
      const lines = readFileSync(join(lastfm, `${split}.jsonl`), "utf8")
        .trim()
        .split("\n");
      const users = [...seqs.keys()].filter((u) => u.startsWith(`${split}-`));
      // Regenerate LLaRA's lines from our sequences: every line must come back, in order.
      const regenerated: string[] = [];
      for (const u of users) {
        const s = seqs.get(u)!.map(Number);
        const first = split === "train" ? 0 : s.length - 1; // valid/test lines are whole users
        for (let n = first; n < s.length; n++)
          regenerated.push(JSON.stringify({ history: s.slice(Math.max(0, n - LLARA_WINDOW), n), next: s[n] }));
      }
      const normalized = lines.map((l) => JSON.stringify(JSON.parse(l) as unknown));
      if (split === "train") expect(regenerated).toEqual(normalized);
      else expect(users.length).toBe(lines.length);
    }
    expect([...seqs.keys()].filter((u) => u.startsWith("train-")).length).toBe(
      readFileSync(join(lastfm, "train.jsonl"), "utf8")
        .split("\n")
        .filter((l) => l.includes('"history": []')).length,
    );
    const p = applyProtocol(d.interactions, d.items, { kcore: 5, seed: 1 });
    expect(p.users.length).toBeGreaterThan(1000);
    for (const u of p.users) expect(u.candidates.test).toContain(u.test);
  });
});
