// Data benchmark: parsing throughput (MB/s) of a generated Amazon-2018-format file, one thread vs
// the piscina pool (same parser, same chunks), and the time of the protocol (de-duplication,
// iterative k-core, sampling, leave-one-out, candidates) on a million-interaction log.
// Sizes: --mb (default 32) MB of metadata + as much again of reviews. Timed with tinybench; the
// parse rows carry its margin of error (95% CI of the mean), as shared machines make them noisy.
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { defaultThreads, openParsePool, parseFile, type ParsePool } from "../src/data/formats/parse-pool.js";
import type { LineKind } from "../src/data/formats/parse-chunk.js";
import { applyProtocol } from "../src/data/protocol.js";
import { Rng } from "../src/util/random.js";
import type { Interaction, Item } from "../src/data/types.js";
import { medianMs, newResult, timeRuns, type BenchResult, type FlagValues, type SuiteFlags } from "./lib.js";

export const description =
  "parsing throughput of a generated Amazon-format file (worker pool vs one thread), the protocol's time";
export const flags = {
  mb: { kind: "number", default: 32, help: "MB of generated metadata, and as much again of reviews" },
} as const satisfies SuiteFlags;

const WORDS = [
  "Wireless",
  "Headphones",
  "Charger",
  "Cable",
  "Case",
  "Pro",
  "Ultra",
  "Stand",
  "Mouse",
  "Keyboard",
  "USB-C",
  "HDMI",
  "Camera",
  "Lens",
  "Tripod",
  "Speaker",
];

/** Writes `mb` MB of 2018-style metadata (some HTML-junk titles) and reviews; returns the paths. */
function generateAmazon2018(dir: string, mb: number): { meta: string; reviews: string } {
  const rng = new Rng(1, "bench:data");
  const word = (): string => WORDS[rng.int(WORDS.length)]!;
  const writeLines = (path: string, make: (n: number) => string): void => {
    const fd = openSync(path, "w");
    let bytes = 0,
      buf: string[] = [];
    for (let n = 0; bytes < mb * 1e6; n++) {
      const line = make(n) + "\n";
      bytes += Buffer.byteLength(line);
      buf.push(line);
      if (buf.length === 2000) {
        writeSync(fd, buf.join(""));
        buf = [];
      }
    }
    writeSync(fd, buf.join(""));
    closeSync(fd);
  };
  const meta = join(dir, "meta_Bench.json");
  writeLines(meta, (n) =>
    JSON.stringify({
      asin: `B${String(n).padStart(9, "0")}`,
      title:
        n % 50 === 0
          ? "var aPageStart = (new Date()).getTime();"
          : `<span>${word()} ${word()} &amp; ${word()} ${n}</span>`,
      brand: word(),
      category: ["Electronics", word(), word()],
      description: [
        `The ${word()} ${word()} for <b>everyday</b> use. ${"Solid build and long battery life. ".repeat(1 + rng.int(4))}`,
      ],
      price: `$${rng.int(300)}.${String(rng.int(100)).padStart(2, "0")}`,
      main_cat: "All Electronics",
      also_buy: Array.from({ length: rng.int(8) }, () => `B${String(rng.int(1e6)).padStart(9, "0")}`),
    }),
  );
  const reviews = join(dir, "Bench_5.json");
  writeLines(reviews, () =>
    JSON.stringify({
      overall: 1 + rng.int(5),
      verified: true,
      reviewTime: "01 1, 2018",
      reviewerID: `A${rng.int(200000)}`,
      asin: `B${String(rng.int(300000)).padStart(9, "0")}`,
      reviewerName: "Someone",
      reviewText: `${word()} ${word()} works great. `.repeat(1 + rng.int(6)),
      summary: `${word()} stars`,
      unixReviewTime: 1.3e9 + rng.int(1e8),
    }),
  );
  return { meta, reviews };
}

/** A power-law user–item log shaped like an Amazon category (popular items, long tail). */
function generateLog(n: number): { interactions: Interaction[]; items: Map<string, Item> } {
  const rng = new Rng(2, "bench:log");
  const nUsers = Math.round(n / 12),
    nItems = Math.round(n / 20);
  const interactions: Interaction[] = [];
  for (let k = 0; k < n; k++) {
    const item = Math.floor(nItems * Math.pow(rng.next(), 2.5)); // skewed towards low ids
    interactions.push({ user: `U${rng.int(nUsers)}`, item: `I${item}`, time: 1.3e9 + rng.int(1e8), order: k });
  }
  const items = new Map<string, Item>();
  for (let i = 0; i < nItems; i++) items.set(`I${i}`, { id: `I${i}`, title: `Item ${i}`, attributes: {} });
  return { interactions, items };
}

export async function run(args: FlagValues<typeof flags>): Promise<BenchResult> {
  const result = newResult("data");
  // Shared machines make wall times noisy: record how busy this one was when the suite started.
  result.results.push({ name: "load average (1 min) at start", value: loadavg()[0]!, unit: "runnable" });
  const mb = args.mb;
  const dir = mkdtempSync(join(tmpdir(), "msr-bench-data-"));
  try {
    const files = generateAmazon2018(dir, mb);
    const threads = defaultThreads();
    // The pool is opened once (as readAmazon does for reviews + metadata); its start-up is
    // reported on its own rather than charged to every parse.
    const t0 = process.hrtime.bigint();
    const pool: ParsePool | undefined = openParsePool(threads);
    try {
      if (pool) {
        await parseFile(files.reviews, "amazon2018-review", { pool, chunkBytes: 1 << 16 }, () => undefined).catch(
          () => undefined,
        );
        result.results.push({
          name: `pool start-up + first chunk, ${threads} workers`,
          value: Number(process.hrtime.bigint() - t0) / 1e6,
          unit: "ms",
        });
      } else {
        result.results.push({
          name: "pool not measured (needs the compiled worker, npm run build:ts, and > 1 core)",
          value: threads,
          unit: "threads",
        });
      }
      for (const [name, path, kind] of [
        ["meta", files.meta, "amazon2018-meta"],
        ["reviews", files.reviews, "amazon2018-review"],
      ] as const) {
        const size = statSync(path).size / 1e6;
        let records = 0;
        const parse = (p: ParsePool | undefined) => async (): Promise<void> => {
          records = 0;
          await parseFile(path, kind as LineKind, { threads: 1, pool: p }, () => void records++);
        };
        const one = await timeRuns(parse(undefined), 3, 1);
        const oneName = `${name} parse, main thread (${size.toFixed(0)} MB, ${records} lines)`;
        result.results.push({ name: oneName, value: size / (one.medianMs / 1000), unit: "MB/s" });
        result.results.push({ name: `${oneName}: margin of error`, value: one.rmePercent, unit: "%" });
        if (pool) {
          const pooled = await timeRuns(parse(pool), 3, 1);
          const poolName = `${name} parse, pool of ${threads} workers`;
          result.results.push({ name: poolName, value: size / (pooled.medianMs / 1000), unit: "MB/s" });
          result.results.push({ name: `${poolName}: margin of error`, value: pooled.rmePercent, unit: "%" });
          result.ratios[`${name} parse: pool / main thread`] = one.medianMs / pooled.medianMs;
        }
      }
    } finally {
      await pool?.close();
    }

    for (const n of [250_000, 1_000_000]) {
      const log = generateLog(n);
      let users = 0;
      const ms = await medianMs(
        () => {
          users = applyProtocol(log.interactions, log.items, { kcore: 5, users: 1500, seed: 1 }).users.length;
        },
        3,
        1,
      );
      result.results.push({
        name: `k-core + split + candidates, ${n.toLocaleString("en-US")} interactions → ${users} users`,
        value: ms,
        unit: "ms",
      });
      result.results.push({
        name: `protocol throughput, ${n.toLocaleString("en-US")} interactions`,
        value: n / (ms / 1000) / 1e6,
        unit: "M interactions/s",
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}
