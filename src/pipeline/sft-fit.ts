// train.maxSampleTokens: a training sample longer than the budget loses its oldest history items,
// one at a time, until it fits (the history is the only part of a sample that can shrink without
// changing what is asked or answered). Samples that needed it are counted; one that does not fit
// even with no history at all is an error naming the user.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { SftSample } from "./run-data.js";
import type { TokenizedSample } from "../engine/train-batch.js";

export interface FitResult {
  records: SftSample[];
  tokens: TokenizedSample[];
  /** Samples that lost history items. */
  cut: number;
  /** History items dropped in all. */
  itemsDropped: number;
}

/**
 * `build(i, h)` is sample i with its `h` most recent history items; `tokenize` tokenizes many
 * records in one call. Every sample starts at `historyLength`.
 */
export async function fitToTokenBudget(
  count: number,
  historyLength: number,
  maxTokens: number,
  build: (i: number, h: number) => SftSample,
  tokenize: (records: SftSample[]) => Promise<TokenizedSample[]>,
): Promise<FitResult> {
  const h = new Array<number>(count).fill(historyLength);
  const records = h.map((n, i) => build(i, n));
  const tokens = await tokenize(records);
  let over = tokens.flatMap((t, i) => (t.tokens.length > maxTokens ? [i] : []));
  while (over.length > 0) {
    for (const i of over) {
      if (h[i] === 0)
        throw new Error(
          `the training sample of user ${records[i]!.user} is ${tokens[i]!.tokens.length} tokens with no history left, over train.maxSampleTokens (${maxTokens}); raise it`,
        );
      h[i]!--;
      records[i] = build(i, h[i]!);
    }
    const again = await tokenize(over.map((i) => records[i]!));
    over.forEach((i, k) => (tokens[i] = again[k]!));
    over = over.filter((i) => tokens[i]!.tokens.length > maxTokens);
  }
  const cut = h.filter((n) => n < historyLength).length;
  return { records, tokens, cut, itemsDropped: h.reduce((a, n) => a + (historyLength - n), 0) };
}

/** What the train stage recorded about cut samples (train/fit-<split>.json), as results notes. */
export function truncationNotes(trainDir: string): string[] {
  const notes: string[] = [];
  for (const split of ["train", "valid"] as const) {
    const f = join(trainDir, `fit-${split}.json`);
    if (!existsSync(f)) continue;
    const r = JSON.parse(readFileSync(f, "utf8")) as {
      samples: number;
      cut: number;
      itemsDropped: number;
      maxSampleTokens: number;
    };
    if (r.cut > 0)
      notes.push(
        `${r.cut} of ${r.samples} ${split} samples lost their oldest history items (${r.itemsDropped} in all) to fit train.maxSampleTokens = ${r.maxSampleTokens}`,
      );
  }
  return notes;
}
