// Title matching (LLaRA's rule and the strict longest-match variant) and HitRatio@1/ValidRatio,
// checked against a naive re-implementation of LLaRA's evaluation loop and hand-made cases.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { matchTitle, matchTitleStrict } from "../src/eval/title-match.js";
import { recommendationMetrics } from "../src/eval/metrics.js";

const cands = ["Alien", "Aliens", "Heat", "Toy Story", "Toy Story 2", "Fargo"];

describe("title matching", () => {
  it("is case-insensitive and needs exactly one title", () => {
    expect(matchTitle("I pick HEAT.", cands)).toMatchObject({ valid: true, index: 2 });
    expect(matchTitle("Heat or Fargo", cands)).toMatchObject({ valid: false, index: -1, matched: [2, 5] });
    expect(matchTitle("nothing here", cands)).toMatchObject({ valid: false, matched: [] });
  });

  it("LLaRA's rule counts a title inside a longer one, the strict rule resolves it", () => {
    expect(matchTitle("Aliens", cands)).toMatchObject({ valid: false, matched: [0, 1] });
    expect(matchTitleStrict("Aliens", cands)).toMatchObject({ valid: true, index: 1 });
    expect(matchTitleStrict("Toy Story 2", cands)).toMatchObject({ valid: true, index: 4 });
    // "Alien" also occurs on its own, so the strict rule still sees two titles.
    expect(matchTitleStrict("Aliens, not Alien", cands)).toMatchObject({ valid: false, matched: [0, 1] });
    // A plain substring of a word still counts under both rules (LLaRA does no tokenisation).
    expect(matchTitle("a heated debate", cands)).toMatchObject({ valid: true, index: 2 });
  });

  it("duplicate candidate titles are ambiguous; empty titles never match", () => {
    expect(matchTitle("Heat", ["Heat", "heat"])).toMatchObject({ valid: false });
    expect(matchTitleStrict("Heat", ["Heat", "heat"])).toMatchObject({ valid: false });
    expect(matchTitle("anything", ["", "x"])).toMatchObject({ valid: false, matched: [] });
  });

  it("strict never reports more titles than LLaRA's rule, and agrees when no title contains another", () => {
    const word = fc.constantFrom("ab", "abc", "b", "cd", "d", "x");
    fc.assert(
      fc.property(
        fc.array(word, { minLength: 1, maxLength: 6 }),
        fc.array(word, { maxLength: 8 }),
        (titles, answerWords) => {
          const answer = answerWords.join(" ");
          const loose = matchTitle(answer, titles);
          const strict = matchTitleStrict(answer, titles);
          expect(strict.matched.every((i) => loose.matched.includes(i))).toBe(true);
          const nested = titles.some((a, i) => titles.some((b, j) => i !== j && b.length > a.length && b.includes(a)));
          if (!nested) expect(strict.matched).toEqual(loose.matched);
        },
      ),
    );
  });
});

describe("HitRatio@1 and ValidRatio", () => {
  // LLaRA's loop, written out naively: count candidates contained in the answer.
  function naive(rows: { answer: string; candidates: string[]; target: number }[]) {
    let valid = 0;
    let hits = 0;
    for (const r of rows) {
      const a = r.answer.toLowerCase();
      let n = 0;
      let which = -1;
      for (let i = 0; i < r.candidates.length; i++) {
        if (a.indexOf(r.candidates[i]!.toLowerCase()) >= 0) {
          n++;
          which = i;
        }
      }
      if (n === 1) {
        valid++;
        if (which === r.target) hits++;
      }
    }
    return { valid, hits };
  }

  it("hand example: 4 users, 3 valid, 2 hits", () => {
    const m = recommendationMetrics([
      { answer: "Heat", candidates: cands, target: 2 },
      { answer: "fargo!", candidates: cands, target: 5 },
      { answer: "Toy Story", candidates: cands, target: 2 },
      { answer: "Aliens", candidates: cands, target: 1 },
    ]);
    expect(m).toMatchObject({ users: 4, valid: 3, hits: 2, hitRatioAll: 0.5, hitRatioValid: 2 / 3, validRatio: 0.75 });
    // Strict resolves "Aliens" (a hit) but "Toy Story" stays valid: "Toy Story 2" is absent.
    expect(m.strict).toMatchObject({ users: 4, valid: 4, hits: 3, hitRatioAll: 0.75, validRatio: 1 });
  });

  it("agrees with the naive loop on random answers", () => {
    const title = fc.constantFrom(...cands, "Other");
    fc.assert(
      fc.property(
        fc.array(fc.record({ words: fc.array(title, { maxLength: 3 }), target: fc.integer({ min: 0, max: 5 }) }), {
          maxLength: 30,
        }),
        (raw) => {
          const rows = raw.map((r) => ({ answer: r.words.join(" and "), candidates: cands, target: r.target }));
          const m = recommendationMetrics(rows);
          const n = naive(rows);
          expect([m.valid, m.hits]).toEqual([n.valid, n.hits]);
          expect(m.hitRatioAll).toBeCloseTo(rows.length ? n.hits / rows.length : 0, 12);
        },
      ),
    );
  });

  it("refuses a ground-truth index outside the candidates", () => {
    expect(() => recommendationMetrics([{ answer: "x", candidates: ["a"], target: 3 }])).toThrow(
      /outside the 1 candidates/,
    );
  });
});
