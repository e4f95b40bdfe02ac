// The prepared-dataset folder round-trips, is byte-identical for a seed, and bad files are
// reported with file and line. The synthetic catalog has learnable structure.
import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readDataset, readDatasetSync, writeDataset, formatStatsTable } from "../src/data/dataset.js";
import { readPreparedDataset } from "../src/prompts/dataset.js";
import { generateSynthetic, prepareSynthetic } from "../src/data/synthetic.js";
import { evaluateBaseline } from "../src/eval/baselines.js";

const tmp = (): string => mkdtempSync(join(tmpdir(), "msr-data-"));

function writeSynthetic(dir: string, seed: number): void {
  const p = prepareSynthetic({ users: 300, items: 200, seed });
  writeDataset(dir, { items: p.items, users: p.users, stats: { ...p.stats, source: p.source } });
}

describe("dataset folder", () => {
  it("round-trips items, users and stats", async () => {
    const dir = tmp();
    const p = prepareSynthetic({ users: 200, items: 150, seed: 4 });
    writeDataset(dir, { items: p.items, users: p.users, stats: { ...p.stats, source: p.source } });
    expect(readdirSync(dir).sort()).toEqual(["items.jsonl", "stats.json", "users.jsonl"]);
    const d = await readDataset(dir);
    expect(d.items).toEqual(p.items);
    expect(d.users).toEqual(p.users);
    expect(d.stats).toMatchObject({ users: p.users.length, items: p.items.length, source: p.source });
    expect(d.itemsById.get(p.items[3]!.id)).toEqual(p.items[3]);
    expect(formatStatsTable(d.stats)).toMatch(/prepared\s+200\s+/);
  });

  it("is byte-identical for the same seed and differs for another", () => {
    const [a, b, c] = [tmp(), tmp(), tmp()];
    writeSynthetic(a, 11);
    writeSynthetic(b, 11);
    writeSynthetic(c, 12);
    for (const f of ["items.jsonl", "users.jsonl", "stats.json"]) {
      expect(readFileSync(join(a, f))).toEqual(readFileSync(join(b, f)));
    }
    expect(readFileSync(join(a, "users.jsonl"))).not.toEqual(readFileSync(join(c, "users.jsonl")));
  });

  it("names the file and line of a bad record", async () => {
    const dir = tmp();
    writeSynthetic(dir, 1);
    const users = readFileSync(join(dir, "users.jsonl"), "utf8").split("\n");
    users[2] = users[2]!.replace(/"test":"[^"]+"/, '"test":"NO-SUCH-ITEM"');
    writeFileSync(join(dir, "users.jsonl"), users.join("\n"));
    await expect(readDataset(dir)).rejects.toThrow(/users\.jsonl:3: .*NO-SUCH-ITEM/);
    const u3 = JSON.parse(users[3]!) as { test: string; candidates: { test: string[] } };
    u3.candidates.test = u3.candidates.test.filter((c) => c !== u3.test);
    const withoutTruth = [...users];
    withoutTruth[3] = JSON.stringify(u3);
    withoutTruth[2] = users[2]!.replace("NO-SUCH-ITEM", JSON.parse(users[1]!).test as string);
    writeFileSync(join(dir, "users.jsonl"), withoutTruth.slice(0, 2).concat(withoutTruth.slice(3)).join("\n"));
    await expect(readDataset(dir)).rejects.toThrow(/users\.jsonl:3: .*test candidates must contain the ground truth/);
    users[2] = "{not json";
    writeFileSync(join(dir, "users.jsonl"), users.join("\n"));
    await expect(readDataset(dir)).rejects.toThrow(/users\.jsonl:3: not valid JSON/);
    await expect(readDataset(join(dir, "nope"))).rejects.toThrow(/missing/);
    // Prompts read the folder through the same reader: the same refusal.
    expect(() => readPreparedDataset(dir)).toThrow(/users\.jsonl:3: not valid JSON/);
  });

  it("reads files longer than one read chunk, with CRLF line ends and characters split across chunks", () => {
    const dir = tmp();
    const p = prepareSynthetic({ users: 20, items: 40, seed: 6 });
    // Titles of 3-byte characters make items.jsonl several MiB, so chunk edges cut characters.
    const items = p.items.map((it, i) => ({ ...it, title: `${it.title} ${"€".repeat(40_000 + i)}` }));
    writeDataset(dir, { items, users: p.users, stats: { ...p.stats, source: p.source } });
    const users = join(dir, "users.jsonl");
    writeFileSync(users, readFileSync(users, "utf8").replace(/\n/g, "\r\n"));
    const d = readDatasetSync(dir);
    expect(d.items).toEqual(items);
    expect(d.users).toEqual(p.users);
  });
});

describe("synthetic catalog", () => {
  it("has unique titles, none contained in another, with categories and brands", () => {
    const { items } = generateSynthetic({ items: 400, users: 10, seed: 2 });
    expect(items.size).toBe(400);
    const titles = [...items.values()].map((i) => i.title.toLowerCase());
    const contained = titles.filter((a) => titles.some((b) => a !== b && b.includes(a)));
    expect(contained).toEqual([]);
    for (const i of items.values()) {
      expect(typeof i.attributes.category).toBe("string");
      expect(typeof i.attributes.brand).toBe("string");
    }
  });

  it("has sequential structure: Markov > popularity > random, and accessories follow devices", () => {
    const p = prepareSynthetic({ users: 600, items: 300, seed: 5 });
    const hr = (n: "random" | "popularity" | "markov"): number => evaluateBaseline(n, p.users, "test").hitRatio1;
    expect(hr("markov")).toBeGreaterThan(hr("popularity") + 0.1);
    expect(hr("popularity")).toBeGreaterThan(hr("random"));
    expect(Math.abs(hr("random") - 1 / 6)).toBeLessThan(0.06);
    // An accessory's device family appears earlier in the same user's history most of the time.
    const byId = new Map(p.items.map((i) => [i.id, i]));
    let acc = 0,
      preceded = 0;
    for (const u of p.users) {
      const seq = [...u.train, u.valid, u.test];
      seq.forEach((id, j) => {
        const a = byId.get(id)!.attributes;
        if (a.kind !== "accessory") return;
        acc++;
        if (
          seq
            .slice(0, j)
            .some(
              (prev) =>
                byId.get(prev)!.attributes.category === a.forCategory &&
                byId.get(prev)!.attributes.brand === a.forBrand,
            )
        )
          preceded++;
      });
    }
    expect(acc).toBeGreaterThan(100);
    expect(preceded / acc).toBeGreaterThan(0.8);
  });
});
