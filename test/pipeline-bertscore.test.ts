// BERTScore in the eval stage is rescaled by one baseline per evaluator model, fixed from the
// teacher references, so a row's score does not depend on which other users share the row: the
// mean over a set of pairs equals the mean of the pairs scored one at a time (a per-row baseline
// would break this), and the notes name the baseline and the encoder.
import { describe, expect, it } from "vitest";
import { presetConfig } from "../src/pipeline/config.js";
import { reasoningQuality } from "../src/pipeline/reasoning-quality.js";
import { tinyModelPath } from "./support/models.js";
import { addonMissing } from "./support/addon.js";

const missing = addonMissing("BERTScore baseline test");

describe.skipIf(missing !== null)("BERTScore baseline", () => {
  it("is one number for the evaluator model, shared by every row", async () => {
    const c = presetConfig("tiny", {
      model: { path: tinyModelPath(), threads: 2 },
      eval: { bertscore: true, gptscore: false, meteor: false },
    });
    const refs = [
      "the phone case fits the phone",
      "a yoga mat for running shoes",
      "wireless earbuds with a charging case",
      "a laptop sleeve for the new laptop",
    ];
    const skipped: string[] = [];
    const { quality, dispose } = await reasoningQuality(c, skipped, refs);
    try {
      const pairs = [
        { candidate: "the case fits this phone", reference: refs[0]!, context: "" },
        { candidate: "running shoes and a mat", reference: refs[1]!, context: "" },
        { candidate: "earbuds that charge in a case", reference: refs[2]!, context: "" },
      ];
      const alone = await Promise.all(pairs.map((p) => quality.bertscore!([p])));
      const together = await quality.bertscore!(pairs);
      expect(together).toBeCloseTo((alone[0]! + alone[1]! + alone[2]!) / 3, 6);
      const rowA = await quality.bertscore!(pairs.slice(0, 2));
      expect(rowA).toBeCloseTo((alone[0]! + alone[1]!) / 2, 6);
      // A text matched with itself is 1 on the rescaled scale, whatever else is in the row.
      expect(await quality.bertscore!([{ candidate: refs[3]!, reference: refs[3]!, context: "" }])).toBeCloseTo(1, 6);
      expect(skipped.join("\n")).toMatch(
        /one baseline for that model, b = 0\.\d{4} \(mean F1 of mismatched teacher references\), the same for every row/,
      );
      // A missing reasoning scores F1 = 0 on the same scale: (0 − b) / (1 − b), whatever the row.
      const b = Number(/b = (0\.\d+)/.exec(skipped.join("\n"))![1]);
      const floor = await quality.bertscoreMissing!(pairs);
      expect(floor).toBeCloseTo(-b / (1 - b), 3);
      expect(await quality.bertscoreMissing!(pairs.slice(0, 1))).toBe(floor);
      expect(floor).toBeLessThan(Math.min(...alone));
      expect(skipped.join("\n")).toContain(tinyModelPath());
    } finally {
      dispose();
    }
  });
});
