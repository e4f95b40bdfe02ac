// train.maxSampleTokens cuts the oldest history items of over-long samples, counts the samples
// it cut, and refuses a sample that does not fit without any history. The tokenizer here counts
// words, so the expected cut of every sample is arithmetic done in the test.
import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fitToTokenBudget, truncationNotes } from "../src/pipeline/sft-fit.js";
import type { SftSample } from "../src/pipeline/run-data.js";

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
// One token per word of prompt, reasoning and recommendation.
const tokenize = async (rs: SftSample[]) =>
  rs.map((r) => ({
    tokens: new Int32Array(words(`${r.prompt} ${r.reasoning} ${r.recommendation}`)),
    segments: new Uint8Array(0),
  }));

describe("fitting samples to train.maxSampleTokens", () => {
  // Sample i has history items of (i + 1) words each: h items cost h·(i + 1) tokens, plus a
  // fixed 4 ("Recommend:" + 2-word reasoning + 1-word title).
  const history = (i: number, h: number) =>
    Array.from({ length: h }, (_, k) => Array.from({ length: i + 1 }, () => `w${k}`).join(" "));
  const build = (i: number, h: number): SftSample => ({
    user: `u${i}`,
    prompt: `${history(i, h).join(" ")} Recommend:`,
    reasoning: "it fits",
    recommendation: "Title",
  });

  it("drops the oldest items of the over-long samples only, and counts them", async () => {
    const n = 6,
      H = 5,
      max = 14;
    const r = await fitToTokenBudget(n, H, max, build, tokenize);
    // Largest h with h·(i + 1) + 4 <= 14, capped at H.
    const expectedH = Array.from({ length: n }, (_, i) => Math.min(H, Math.floor((max - 4) / (i + 1))));
    expect(expectedH).toEqual([5, 5, 3, 2, 2, 1]);
    r.records.forEach((rec, i) => expect(rec, `sample ${i}`).toEqual(build(i, expectedH[i]!)));
    for (const t of r.tokens) expect(t.tokens.length).toBeLessThanOrEqual(max);
    expect(r.cut).toBe(4);
    expect(r.itemsDropped).toBe(expectedH.reduce((a, h) => a + (H - h), 0));
  });

  it("leaves samples within the budget untouched and refuses one that cannot fit", async () => {
    const r = await fitToTokenBudget(3, 2, 100, build, tokenize);
    expect(r.cut).toBe(0);
    expect(r.records).toEqual([0, 1, 2].map((i) => build(i, 2)));
    await expect(fitToTokenBudget(2, 2, 3, build, tokenize)).rejects.toThrow(
      /user u0 is 4 tokens with no history left, over train.maxSampleTokens \(3\)/,
    );
  });

  it("reports the cut samples in the results notes", () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-fit-"));
    try {
      expect(truncationNotes(dir)).toEqual([]);
      writeFileSync(
        join(dir, "fit-train.json"),
        JSON.stringify({ samples: 40, cut: 3, itemsDropped: 7, maxSampleTokens: 512 }),
      );
      writeFileSync(
        join(dir, "fit-valid.json"),
        JSON.stringify({ samples: 8, cut: 0, itemsDropped: 0, maxSampleTokens: 512 }),
      );
      expect(truncationNotes(dir)).toEqual([
        "3 of 40 train samples lost their oldest history items (7 in all) to fit train.maxSampleTokens = 512",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
