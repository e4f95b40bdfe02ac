// Each raw format parsed from small fixtures written to a temp dir (gzip included), with malformed
// lines: the error names file and line, `skipBad` skips and counts. The Python-literal parser is
// checked against Python's own repr(), and the worker pool against the main-thread parser.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { readAmazon } from "../src/data/formats/amazon.js";
import { continuesSequence, readLlara } from "../src/data/formats/llara.js";
import { readByteChunks } from "../src/data/formats/lines.js";
import { parseFile } from "../src/data/formats/parse-pool.js";
import { parsePythonLiteral } from "../src/data/formats/python-literal.js";
import { readRecbole } from "../src/data/formats/recbole.js";
import { cleanTitle, parsePrice } from "../src/data/formats/text.js";
import type { LineRecord } from "../src/data/formats/records.js";

const tmp = (): string => mkdtempSync(join(tmpdir(), "msr-fmt-"));
const write = (dir: string, name: string, lines: string[], gz = false): string => {
  const p = join(dir, name);
  const text = lines.join("\n") + "\n";
  writeFileSync(p, gz ? gzipSync(text) : text);
  return p;
};

describe("Python literal parser", () => {
  it("parses the literal forms found in Amazon 2014 metadata", () => {
    expect(
      parsePythonLiteral(
        `{'asin': '0000031852', 'title': "Girls' Ballet Tutu", 'price': 3.17, 'related': {'also_bought': ['B00JHONN1S', 'B002BZX8Z6']}, 'categories': [['Sports & Outdoors', 'Other Sports', 'Dance']], 'ok': True, 'no': None, 'f': False}`,
      ),
    ).toEqual({
      asin: "0000031852",
      title: "Girls' Ballet Tutu",
      price: 3.17,
      related: { also_bought: ["B00JHONN1S", "B002BZX8Z6"] },
      categories: [["Sports & Outdoors", "Other Sports", "Dance"]],
      ok: true,
      no: null,
      f: false,
    });
    expect(
      parsePythonLiteral(
        String.raw`('a\'b', "c\"d", 'tab\there', '\x41\u00e9\U0001F600', '\101', -1.5e3, 7, (), [1,], {1: 'x',})`,
      ),
    ).toEqual(["a'b", 'c"d', "tab\there", "Aé😀", "A", -1500, 7, [], [1], { 1: "x" }]);
    expect(parsePythonLiteral(String.raw`r'C:\path' + 1`.slice(0, 10))).toBe(String.raw`C:\path`);
    for (const bad of ["{'a': }", "{'a' 1}", "'unterminated", "[1, 2", "{'a': eval('x')}", "{'a': 1} junk", ""]) {
      expect(() => parsePythonLiteral(bad)).toThrow(SyntaxError);
    }
  });

  const python = spawnSync("python3", ["-c", "print(1)"]).status === 0;
  it.skipIf(!python)("agrees with Python's repr() on random values", () => {
    // Python generates random nested values, prints repr() and json.dumps() of each; we parse the
    // repr and must get the JSON. Strings include quotes, backslashes, control chars and Unicode.
    const script = String.raw`
import json, random
random.seed(7)
alphabet = "ab'\"\\\n\t\x07é中😀 ,:{}[]()"
def s(): return "".join(random.choice(alphabet) for _ in range(random.randint(0, 8)))
def v(d=0):
    r = random.random()
    if d > 2 or r < 0.3: return random.choice([s(), random.randint(-10**6, 10**6), round(random.uniform(-1e3, 1e3), 4), True, False, None])
    if r < 0.55: return [v(d+1) for _ in range(random.randint(0, 4))]
    if r < 0.7: return tuple(v(d+1) for _ in range(random.randint(0, 3)))
    return {s(): v(d+1) for _ in range(random.randint(0, 4))}
for _ in range(300):
    x = {"asin": s(), "v": v()}
    print(repr(x)); print(json.dumps(x))
`;
    const out = spawnSync("python3", ["-c", script], { encoding: "utf8" });
    expect(out.status).toBe(0);
    const lines = out.stdout.trimEnd().split("\n");
    expect(lines.length).toBe(600);
    for (let i = 0; i < lines.length; i += 2) expect(parsePythonLiteral(lines[i]!)).toEqual(JSON.parse(lines[i + 1]!));
  });
});

describe("title cleaning", () => {
  it("strips HTML, decodes entities, drops code-like titles, parses prices", () => {
    expect(cleanTitle("<span class='a'>Sonix &amp; Co.&nbsp;Headphones</span>")).toBe("Sonix & Co. Headphones");
    expect(cleanTitle("Caf&#233; &#x27;Mug&#x27;")).toBe("Café 'Mug'");
    expect(cleanTitle("var aPageStart = (new Date()).getTime();")).toBeUndefined();
    expect(cleanTitle("<div></div>")).toBeUndefined();
    expect(cleanTitle("   ")).toBeUndefined();
    expect(cleanTitle(42)).toBeUndefined();
    expect(parsePrice("$12.99")).toBe(12.99);
    expect(parsePrice("$1,299.00")).toBe(1299);
    expect(parsePrice("$1.00 - $3.00")).toBeUndefined();
    expect(parsePrice(".a-box-inner{background-color:#fff;}")).toBeUndefined();
  });
});

describe("Amazon formats", () => {
  it("2014: JSON reviews + Python-literal metadata, gzip, malformed lines", async () => {
    const dir = tmp();
    const reviews = write(
      dir,
      "reviews_Cat_5.json.gz",
      [
        JSON.stringify({ reviewerID: "A1", asin: "B1", overall: 5.0, unixReviewTime: 1400000000 }),
        JSON.stringify({ reviewerID: "A1", asin: "B2", overall: 3.0, unixReviewTime: 1300000000 }),
        "{broken",
        JSON.stringify({ reviewerID: "A2", asin: "B3", overall: 4.0 }),
        JSON.stringify({ reviewerID: "A2", asin: "B1", overall: 1.0, unixReviewTime: 1200000000 }),
      ],
      true,
    );
    const meta = write(
      dir,
      "meta_Cat.json.gz",
      [
        `{'asin': 'B1', 'title': "Kid's Tutu &amp; Bow", 'brand': 'Acme', 'price': 3.17, 'categories': [['Sports', 'Dance'], ['Clothing']], 'description': 'Pink.'}`,
        `{'asin': 'B2', 'related': {'also_bought': ['B1']}}`,
        `{'asin': 'B3', 'title': 'Third', 'salesRank': {'Toys': 7}}`,
        `{'asin': 'B1', 'title': 'Duplicate, ignored'}`,
        `{'asin': 'B9', 'title': 'Never reviewed'}`,
      ],
      true,
    );
    await expect(readAmazon("2014", reviews, meta, { threads: 1 })).rejects.toThrow(
      /reviews_Cat_5\.json\.gz:3: not valid JSON/,
    );
    const d = await readAmazon("2014", reviews, meta, { threads: 1, skipBad: true });
    expect(d.skipped).toBe(2); // line 3 (bad JSON) and line 4 (no unixReviewTime)
    expect(d.interactions).toEqual([
      { user: "A1", item: "B1", time: 1400000000, rating: 5, order: 0 },
      { user: "A1", item: "B2", time: 1300000000, rating: 3, order: 1 },
      { user: "A2", item: "B1", time: 1200000000, rating: 1, order: 2 },
    ]);
    expect([...d.items.keys()]).toEqual(["B1"]); // B2 has no title, B3 was only in a skipped review
    expect(d.items.get("B1")).toEqual({
      id: "B1",
      title: "Kid's Tutu & Bow",
      attributes: { brand: "Acme", price: 3.17, categories: ["Sports", "Dance", "Clothing"], description: "Pink." },
    });
    expect(d.untitled).toBe(1);
    const badMeta = write(dir, "meta_bad.json", [
      `{'asin': 'B1', 'title': 'ok'}`,
      `{'asin': 'B2', 'title': __import__('os')}`,
    ]);
    await expect(readAmazon("2014", reviews, badMeta, { threads: 1, skipBad: false })).rejects.toThrow(
      /reviews_Cat_5.json.gz:3/,
    );
    const onlyGood = write(dir, "reviews_ok.json", [
      JSON.stringify({ reviewerID: "A", asin: "B2", unixReviewTime: 1 }),
    ]);
    await expect(readAmazon("2014", onlyGood, badMeta, { threads: 1 })).rejects.toThrow(
      /meta_bad\.json:2: not a Python dict literal/,
    );
  });

  it("2018: strict JSON metadata with HTML titles and string prices", async () => {
    const dir = tmp();
    const reviews = write(dir, "Cat_5.json", [
      JSON.stringify({ reviewerID: "U", asin: "X1", overall: 5, unixReviewTime: 10 }),
      JSON.stringify({ reviewerID: "U", asin: "X2", overall: 4, unixReviewTime: 20 }),
      JSON.stringify({ reviewerID: "U", asin: "X3", overall: 4, unixReviewTime: 30 }),
    ]);
    const meta = write(
      dir,
      "meta_Cat.json.gz",
      [
        JSON.stringify({
          asin: "X1",
          title: "<b>Sonix</b> Wireless&nbsp;Headphones",
          brand: "Sonix",
          category: ["Electronics", "Headphones"],
          price: "$12.99",
          main_cat: "All Electronics",
          description: ["Great <i>sound</i>."],
        }),
        JSON.stringify({
          asin: "X2",
          title: 'var aPageStart = (new Date()).getTime();\nvar ue_mid = "ATVPDKIKX0DER";',
        }),
        JSON.stringify({ asin: "X3", title: "Cable", price: ".a-section{margin:0}" }),
      ],
      true,
    );
    const d = await readAmazon("2018", reviews, meta, { threads: 1 });
    expect(d.items.get("X1")).toEqual({
      id: "X1",
      title: "Sonix Wireless Headphones",
      attributes: {
        brand: "Sonix",
        categories: ["Electronics", "Headphones"],
        mainCategory: "All Electronics",
        price: 12.99,
        description: "Great sound.",
      },
    });
    expect(d.items.has("X2")).toBe(false);
    expect(d.items.get("X3")!.attributes).toEqual({});
  });

  it("2023: parent_asin ids and millisecond timestamps", async () => {
    const dir = tmp();
    const reviews = write(dir, "Cat.jsonl", [
      JSON.stringify({ user_id: "AG", asin: "C1v2", parent_asin: "P1", timestamp: 1588687728923, rating: 5.0 }),
      JSON.stringify({ user_id: "AG", asin: "C2", parent_asin: "P2", timestamp: "1588687728924", rating: 2.0 }),
    ]);
    const meta = write(dir, "meta_Cat.jsonl", [
      JSON.stringify({
        parent_asin: "P1",
        title: "Mug",
        store: "Acme",
        categories: ["Home", "Kitchen"],
        features: ["Ceramic", "12 oz"],
        description: [],
        price: 9.5,
      }),
      JSON.stringify({ parent_asin: "P2", title: "Plate", price: null }),
    ]);
    const d = await readAmazon("2023", reviews, meta, { threads: 1 });
    expect(d.interactions.map((i) => [i.item, i.time])).toEqual([
      ["P1", 1588687728.923],
      ["P2", 1588687728.924],
    ]);
    expect(d.items.get("P1")!.attributes).toEqual({
      brand: "Acme",
      categories: ["Home", "Kitchen"],
      features: ["Ceramic", "12 oz"],
      price: 9.5,
    });
    await expect(readAmazon("2023", reviews, undefined)).rejects.toThrow(/--meta/);
  });
});

describe("RecBole atomic files", () => {
  it("reads typed headers, token_seq titles and attributes; reports bad rows by line", async () => {
    const dir = tmp();
    write(dir, "toy.inter", [
      "user_id:token\titem_id:token\trating:float\ttimestamp:float",
      "1\t10\t4\t100",
      "1\t11\t3\t90",
      "",
      "2\t10\t5\t50",
    ]);
    write(dir, "toy.item", [
      "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
      '10\tThe "Big" Movie\t1995\tAction Comedy',
      "11\tSmall\t1996\tDrama",
      "12\tUnused\t1997\tDrama",
    ]);
    const d = await readRecbole(dir);
    expect(d.interactions).toEqual([
      { user: "1", item: "10", time: 100, rating: 4, order: 0 },
      { user: "1", item: "11", time: 90, rating: 3, order: 1 },
      { user: "2", item: "10", time: 50, rating: 5, order: 2 },
    ]);
    expect([...d.items.values()]).toEqual([
      { id: "10", title: 'The "Big" Movie', attributes: { release_year: "1995", class: ["Action", "Comedy"] } },
      { id: "11", title: "Small", attributes: { release_year: "1996", class: ["Drama"] } },
    ]);
    expect((await readRecbole(join(dir, "toy.inter"))).interactions).toHaveLength(3);

    const bad = tmp();
    write(
      bad,
      "b.inter.gz",
      ["user_id:token\titem_id:token\ttimestamp:float", "1\t10\t5", "1\t11", "2\t12\tsoon"],
      true,
    );
    await expect(readRecbole(bad)).rejects.toThrow(/b\.inter\.gz:3: expected 3 tab-separated columns, found 2/);
    const skipped = await readRecbole(bad, { skipBad: true });
    expect(skipped.skipped).toBe(2);
    expect(skipped.items.get("10")!.title).toBe("Item 10"); // no .item file
    write(bad, "c.inter", ["user_id\titem_id"]);
    await expect(readRecbole(join(bad, "c.inter"))).rejects.toThrow(/c\.inter:1: header column 1/);
  });
});

describe("LLaRA format", () => {
  it("rebuilds users from sliding-window lines and reads id2name", async () => {
    const dir = tmp();
    const seq = Array.from({ length: 13 }, (_, i) => i); // one user, 13 items: windows slide after 10
    const lines = seq.map((_, n) => JSON.stringify({ history: seq.slice(Math.max(0, n - 10), n), next: seq[n] }));
    write(dir, "train.jsonl", [
      ...lines,
      JSON.stringify({ history: [], next: 20 }),
      JSON.stringify({ history: [20], next: 21 }),
    ]);
    write(dir, "test.jsonl", [
      JSON.stringify({ history: [3, 20], next: 5 }),
      JSON.stringify({ history: [21, 7], next: 8 }),
    ]);
    write(
      dir,
      "id2name.txt",
      [...seq, 20, 21].map((i) => `${i}::Artist ${i}`),
    );
    const d = await readLlara(dir, { threads: 1 });
    const byUser = new Map<string, string[]>();
    for (const i of d.interactions) byUser.set(i.user, [...(byUser.get(i.user) ?? []), i.item]);
    expect([...byUser]).toEqual([
      ["train-1", seq.map(String)],
      ["train-2", ["20", "21"]],
      ["test-1", ["3", "20", "5"]],
      ["test-2", ["21", "7", "8"]],
    ]);
    expect(d.items.get("12")!.title).toBe("Artist 12");
    expect(d.items.has("7")).toBe(true);
    expect(continuesSequence(["1", "2"], ["2"])).toBe(false); // a shorter non-window history is a new user

    write(dir, "id2name.txt", ["0::A", "no separator here"]);
    await expect(readLlara(dir)).rejects.toThrow(/id2name\.txt:2: expected "id::name"/);
    write(dir, "id2name.txt", ["0::A"]);
    write(dir, "test.jsonl", [JSON.stringify({ history: [1], next: 2 }), JSON.stringify({ history: "x", next: 2 })]);
    await expect(readLlara(dir, { threads: 1 })).rejects.toThrow(/test\.jsonl:2: field "history"/);
    expect((await readLlara(dir, { threads: 1, skipBad: true })).skipped).toBe(1);
  });
});

/** Transpiles the worker's module graph (src/data/formats/*.ts) to JS in a temp dir. */
function compileWorker(): string {
  const out = tmp();
  const src = join(import.meta.dirname, "..", "src", "data", "formats");
  for (const f of readdirSync(src).filter((f) => f.endsWith(".ts"))) {
    const js = ts.transpileModule(readFileSync(join(src, f), "utf8"), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
    }).outputText;
    const dest = join(out, "src", "data", "formats", f.replace(/\.ts$/, ".js"));
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
  }
  writeFileSync(join(out, "package.json"), '{"type":"module"}');
  return join(out, "src", "data", "formats", "parse-worker.js");
}

describe("parse pool", () => {
  it("cuts byte chunks at line ends with the right line numbers (CRLF, no final newline, long lines)", async () => {
    const dir = tmp();
    const long = "x".repeat(5000);
    const text = ["a", "", "é中😀", long, "b\r", "c", long + "y", "last-no-newline"].join("\n");
    for (const gz of [false, true]) {
      const path = join(dir, gz ? "t.gz" : "t.txt");
      writeFileSync(path, gz ? gzipSync(text) : text);
      const got: [number, string][] = [];
      for await (const c of readByteChunks(path, 1000)) {
        const lines = new TextDecoder().decode(c.bytes).split("\n");
        if (lines.at(-1) === "") lines.pop();
        lines.forEach((l, j) => got.push([c.firstLine + j, l]));
      }
      expect(got).toEqual(text.split("\n").map((l, j) => [j + 1, l]));
    }
  });

  it("gives the same records in the same order as the main thread, and the same first error", async () => {
    const worker = compileWorker();
    const dir = tmp();
    const lines = Array.from({ length: 5000 }, (_, i) =>
      i === 3777 || i === 4100
        ? `{"asin": ${i}`
        : JSON.stringify({ asin: `B${i}`, title: i % 7 ? `Item &amp; ${i}` : "<script>x</script>", price: `$${i}.5` }),
    );
    const path = write(dir, "meta.json.gz", lines, true);
    const collect = async (
      threads: number,
      skipBad: boolean,
    ): Promise<{ records: [number, LineRecord][]; skipped: number }> => {
      const records: [number, LineRecord][] = [];
      const { skipped } = await parseFile(
        path,
        "amazon2018-meta",
        { threads, skipBad, workerFile: worker, chunkBytes: 20_000 },
        (r, line) => records.push([line, r]),
      );
      return { records, skipped };
    };
    const progress: [number, number][] = [];
    const plain = write(dir, "meta.json", lines);
    await parseFile(
      plain,
      "amazon2018-meta",
      { threads: 1, skipBad: true, chunkBytes: 20_000, onProgress: (a, b) => progress.push([a, b]) },
      () => undefined,
    );
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toEqual([statSync(plain).size, statSync(plain).size]);
    expect(progress.every(([a], k) => k === 0 || a >= progress[k - 1]![0])).toBe(true);
    const one = await collect(1, true);
    const pooled = await collect(2, true);
    expect(one.records).toHaveLength(4998);
    expect(one.skipped).toBe(2);
    expect(pooled).toEqual(one);
    await expect(collect(2, false)).rejects.toThrow(/meta\.json\.gz:3778: not valid JSON/);
  });
});
