// RecBole atomic files: `<name>.inter` and optional `<name>.item`, tab-separated, with typed
// headers `field:type` (token, float, token_seq, float_seq). Interactions use `user_id`,
// `item_id`, and `timestamp`/`rating` when present; ties and missing timestamps fall back to file
// order. Item titles come from the first field whose name contains "title" (ml-100k:
// `movie_title:token_seq`, words joined by spaces); other item fields become attributes
// (token_seq split on spaces). Without a `.item` file the title is "Item <id>".
// Read with fast-csv, quoting disabled (RecBole files never quote; titles contain `"`).
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { parse } from "fast-csv";
import type { Interaction, Item, RawDataset, ReadOptions } from "../types.js";
import { assertFile, openText } from "./lines.js";

interface Field {
  name: string;
  type: "token" | "float" | "token_seq" | "float_seq";
}

function parseHeader(path: string, row: string[]): Field[] {
  return row.map((h, c) => {
    const m = /^([^:]+):(token|float|token_seq|float_seq)$/.exec(h.trim());
    if (!m)
      throw new Error(
        `${path}:1: header column ${c + 1} "${h}" is not "name:type" with type token, float, token_seq or float_seq`,
      );
    return { name: m[1]!, type: m[2] as Field["type"] };
  });
}

/** Rows of a RecBole atomic file with their line numbers; blank lines skipped. */
async function* atomicRows(
  path: string,
  options: ReadOptions,
  onSkip: () => void,
): AsyncGenerator<{ fields: Field[]; row: string[]; line: number }> {
  const text = openText(path);
  const csv = text.pipe(parse<string[], string[]>({ delimiter: "\t", quote: null, headers: false }));
  text.on("error", (e) => csv.destroy(e));
  let fields: Field[] | undefined;
  let line = 0;
  for await (const row of csv as AsyncIterable<string[]>) {
    line++;
    if (!fields) {
      fields = parseHeader(path, row);
      continue;
    }
    if (row.length === 0 || (row.length === 1 && row[0]!.trim() === "")) continue;
    if (row.length !== fields.length) {
      if (options.skipBad) {
        onSkip();
        continue;
      }
      throw new Error(
        `${path}:${line}: expected ${fields.length} tab-separated columns, found ${row.length} (pass --skip-bad to skip malformed lines)`,
      );
    }
    yield { fields, row, line };
  }
  if (!fields) throw new Error(`${path}: empty file (expected a "field:type" header line)`);
}

/** The `.inter` file for a folder or path, and its `.item` companion if present. */
export function locateRecbole(input: string): { inter: string; item?: string } {
  let inter = input;
  if (existsSync(input) && statSync(input).isDirectory()) {
    const found = readdirSync(input)
      .filter((f) => /\.inter(\.gz)?$/.test(f))
      .sort();
    if (found.length !== 1)
      throw new Error(
        `${input}: expected exactly one .inter file, found ${found.length ? found.join(", ") : "none"}; pass the .inter path`,
      );
    inter = join(input, found[0]!);
  }
  assertFile(inter, "RecBole .inter file");
  const item = [inter.replace(/\.inter(\.gz)?$/, ".item"), inter.replace(/\.inter(\.gz)?$/, ".item.gz")].find(
    (p) => p !== inter && existsSync(p),
  );
  return { inter, item };
}

export async function readRecbole(input: string, options: ReadOptions = {}): Promise<RawDataset> {
  const { inter, item } = locateRecbole(input);
  let skipped = 0;
  const skip = (): void => void skipped++;
  const interactions: Interaction[] = [];
  const itemIds = new Set<string>();
  for await (const { fields, row, line } of atomicRows(inter, options, skip)) {
    const col = (name: string): number => fields.findIndex((f) => f.name === name);
    const [u, i, t, r] = [col("user_id"), col("item_id"), col("timestamp"), col("rating")];
    if (u < 0 || i < 0)
      throw new Error(`${inter}:1: needs user_id and item_id columns (found ${fields.map((f) => f.name).join(", ")})`);
    const time = t >= 0 ? Number(row[t]) : interactions.length;
    const rating = r >= 0 ? Number(row[r]) : undefined;
    if (!row[u] || !row[i] || !Number.isFinite(time) || (rating !== undefined && !Number.isFinite(rating))) {
      if (options.skipBad) {
        skipped++;
        continue;
      }
      throw new Error(
        `${inter}:${line}: empty id or non-numeric timestamp/rating in ${JSON.stringify(row.join("\t"))} (pass --skip-bad to skip malformed lines)`,
      );
    }
    interactions.push({ user: row[u]!, item: row[i]!, time, rating, order: interactions.length });
    itemIds.add(row[i]!);
  }

  const items = new Map<string, Item>();
  if (!item) {
    for (const id of itemIds) items.set(id, { id, title: `Item ${id}`, attributes: {} });
  } else {
    for await (const { fields, row, line } of atomicRows(item, options, skip)) {
      const idCol = fields.findIndex((f) => f.name === "item_id");
      const titleCol = fields.findIndex((f) => f.name.includes("title"));
      if (idCol < 0) throw new Error(`${item}:1: needs an item_id column`);
      const id = row[idCol]!;
      const title = titleCol >= 0 ? row[titleCol]!.trim().replace(/\s+/g, " ") : `Item ${id}`;
      if (!id) {
        if (options.skipBad) {
          skipped++;
          continue;
        }
        throw new Error(`${item}:${line}: empty item_id`);
      }
      if (!itemIds.has(id) || items.has(id) || !title) continue;
      const attributes: Item["attributes"] = {};
      fields.forEach((f, c) => {
        if (c === idCol || c === titleCol || row[c] === "" || f.name === "id" || f.name === "title") return;
        if (f.type === "token") attributes[f.name] = row[c]!;
        else if (f.type === "float") {
          const v = Number(row[c]);
          if (Number.isFinite(v)) attributes[f.name] = v;
        } else attributes[f.name] = row[c]!.split(" ").filter(Boolean);
      });
      items.set(id, { id, title, attributes });
    }
  }
  return {
    interactions,
    items,
    skipped,
    source: `recbole: ${basename(inter)}${item ? ` + ${basename(item)}` : " (no .item file: titles are ids)"}`,
  };
}
