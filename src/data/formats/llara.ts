// LLaRA's processed splits: `train.jsonl`, `valid.jsonl`, `test.jsonl` with lines
// `{"history": [ids], "next": id}` and `id2name.txt` with lines `id::name`. LLaRA stores each
// user as sliding prefixes (history grows to a window of 10, then slides by one), so consecutive
// lines whose history is the tail of the sequence so far are one user; any other line starts a new
// user. Users are named `<split>-<n>`; times are synthetic positions (0, 1, 2, ...) because the
// format has no clock, so the protocol's chronological order is the sequence order. LLaRA's own
// split (separate valid/test users) is not kept: `prepare` applies the METHOD.md §1 protocol
// (k-core, per-user leave-one-out, seeded candidates) to every rebuilt user alike.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Interaction, Item, RawDataset, ReadOptions } from "../types.js";
import { assertFile, readLines } from "./lines.js";
import { autoThreads, openParsePool, parseFile } from "./parse-pool.js";

/** LLaRA's maximum history length: a full window slides instead of growing. */
export const LLARA_WINDOW = 10;

export const LLARA_SPLITS = ["train", "valid", "test"] as const;

/** Does `history` continue `sequence` (the previous line's history + next)? */
export function continuesSequence(sequence: readonly string[], history: readonly string[]): boolean {
  if (history.length === 0 || history.length > sequence.length) return false;
  if (history.length !== sequence.length && history.length !== LLARA_WINDOW) return false;
  const off = sequence.length - history.length;
  return history.every((id, j) => sequence[off + j] === id);
}

export async function readLlaraNames(
  path: string,
  options: ReadOptions,
  onSkip: () => void,
): Promise<Map<string, Item>> {
  assertFile(path, "LLaRA id2name.txt");
  const items = new Map<string, Item>();
  for await (const { text, line } of readLines(path)) {
    if (text.trim() === "") continue;
    const sep = text.indexOf("::");
    const id = sep > 0 ? text.slice(0, sep).trim() : "";
    const title =
      sep > 0
        ? text
            .slice(sep + 2)
            .trim()
            .replace(/\s+/g, " ")
        : "";
    if (!id || !title) {
      if (options.skipBad) {
        onSkip();
        continue;
      }
      throw new Error(`${path}:${line}: expected "id::name" (pass --skip-bad to skip malformed lines)`);
    }
    if (!items.has(id)) items.set(id, { id, title, attributes: {} });
  }
  return items;
}

export async function readLlara(folder: string, options: ReadOptions = {}): Promise<RawDataset> {
  const splits = LLARA_SPLITS.filter((s) => existsSync(join(folder, `${s}.jsonl`)));
  if (splits.length === 0) throw new Error(`${folder}: no train.jsonl, valid.jsonl or test.jsonl found (LLaRA format)`);
  let skipped = 0;
  const items = await readLlaraNames(join(folder, "id2name.txt"), options, () => void skipped++);
  const interactions: Interaction[] = [];
  const pool = openParsePool(
    options.threads ?? autoThreads(splits.reduce((n, s) => n + statSync(join(folder, `${s}.jsonl`)).size, 0)),
  );
  try {
    for (const split of splits) {
      let users = 0;
      let sequence: string[] = [];
      const emit = (): void => {
        if (sequence.length === 0) return;
        const user = `${split}-${++users}`;
        sequence.forEach((item, time) => interactions.push({ user, item, time, order: interactions.length }));
      };
      const r = await parseFile(
        join(folder, `${split}.jsonl`),
        "llara",
        { threads: options.threads, skipBad: options.skipBad, pool },
        (rec) => {
          if (rec.kind !== "sequence") return;
          if (continuesSequence(sequence, rec.history)) sequence.push(rec.next);
          else {
            emit();
            sequence = [...rec.history, rec.next];
          }
        },
      );
      emit();
      skipped += r.skipped;
    }
  } finally {
    await pool?.close();
  }
  return { interactions, items, skipped, source: `llara: ${folder} (${splits.join(", ")})` };
}
