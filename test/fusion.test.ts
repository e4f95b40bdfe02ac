// Eq. 3 fusion: the four cases by hand, then a property test against a literal transcription of
// the equation (argmin / argmax over the pair) for random outcomes.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { fuseByPerplexity, fuseEq3, perplexityFromLogprobs, type SideOutcome } from "../src/infer/fusion.js";

describe("fuseByPerplexity", () => {
  it("agreeing sides keep the lower-PPL output", () => {
    expect(fuseByPerplexity({ choice: "A", ppl: 3.2 }, { choice: "A", ppl: 5.1 })).toEqual({
      side: "user",
      choice: "A",
      case: "agree",
    });
    expect(fuseByPerplexity({ choice: "A", ppl: 9 }, { choice: "A", ppl: 2 })).toEqual({
      side: "item",
      choice: "A",
      case: "agree",
    });
  });

  it("disagreeing sides keep the higher-PPL output", () => {
    expect(fuseByPerplexity({ choice: "A", ppl: 3.2 }, { choice: "B", ppl: 5.1 })).toEqual({
      side: "item",
      choice: "B",
      case: "disagree",
    });
    expect(fuseByPerplexity({ choice: "A", ppl: 7 }, { choice: "B", ppl: 1.5 })).toEqual({
      side: "user",
      choice: "A",
      case: "disagree",
    });
  });

  it("keeps the only side that names a valid candidate, whatever the PPLs", () => {
    expect(fuseByPerplexity({ choice: null, ppl: 1.1 }, { choice: "B", ppl: 50 })).toEqual({
      side: "item",
      choice: "B",
      case: "item-only",
    });
    expect(fuseByPerplexity({ choice: "A", ppl: 50 }, { choice: null, ppl: 1.1 })).toEqual({
      side: "user",
      choice: "A",
      case: "user-only",
    });
  });

  it("is invalid when neither side names a candidate", () => {
    expect(fuseByPerplexity({ choice: null, ppl: 2 }, { choice: null, ppl: 3 })).toEqual({
      side: null,
      choice: null,
      case: "none",
    });
  });

  it("never lets an unscorable side (empty reasoning) win on PPL", () => {
    expect(fuseByPerplexity({ choice: "A", ppl: Number.NaN }, { choice: "B", ppl: 2 }).side).toBe("item");
    expect(fuseByPerplexity({ choice: "A", ppl: 2 }, { choice: "A", ppl: Number.POSITIVE_INFINITY }).side).toBe("user");
  });

  it("breaks exact ties toward the user side", () => {
    expect(fuseByPerplexity({ choice: "A", ppl: 4 }, { choice: "B", ppl: 4 }).side).toBe("user");
    expect(fuseByPerplexity({ choice: "A", ppl: 4 }, { choice: "A", ppl: 4 }).side).toBe("user");
  });

  it("matches a literal transcription of Eq. 3 on random valid outcomes", () => {
    // Reference: y = argmin PPL if y_u^rec = y_i^rec else argmax PPL, over the ordered pair [user, item].
    const reference = (u: SideOutcome, i: SideOutcome): "user" | "item" => {
      const pairs: Array<["user" | "item", number]> = [
        ["user", u.ppl],
        ["item", i.ppl],
      ];
      const agree = u.choice === i.choice;
      let best = pairs[0]!;
      for (const p of pairs) if (agree ? p[1] < best[1] : p[1] > best[1]) best = p;
      return best[0];
    };
    const side = fc.record({
      choice: fc.constantFrom("A", "B", "C"),
      ppl: fc.double({ min: 1, max: 1000, noNaN: true }),
    });
    fc.assert(
      fc.property(side, side, (u, i) => {
        const d = fuseByPerplexity(u, i);
        expect(d.side).toBe(reference(u, i));
        expect(d.choice).toBe(d.side === "user" ? u.choice : i.choice);
      }),
      { numRuns: 500 },
    );
  });
});

describe("fuseEq3 (Eq. 3 as written) against this project's rule", () => {
  // Hand-computed: both sides recommend A. Token log-probs of each side's reasoning and answer:
  //   user: reasoning [-1, -1],     answer [-3]    PPL_rea = e^1   = 2.718  PPL_y = e^(5/3)   = 5.294
  //   item: reasoning [-1.5, -1.5], answer [-0.1]  PPL_rea = e^1.5 = 4.482  PPL_y = e^(3.1/3) = 2.810
  // Agreement keeps the lower PPL: the user side by reasoning PPL, the item side by PPL of y.
  const user = { rea: [-1, -1], ans: [-3] };
  const item = { rea: [-1.5, -1.5], ans: [-0.1] };

  it("keeps the other side when PPL covers the answer tokens too", () => {
    const pplRea = (s: typeof user) => perplexityFromLogprobs(s.rea);
    const pplY = (s: typeof user) => perplexityFromLogprobs([...s.rea, ...s.ans]);
    expect(pplRea(user)).toBeCloseTo(2.718, 3);
    expect(pplRea(item)).toBeCloseTo(4.482, 3);
    expect(pplY(user)).toBeCloseTo(5.294, 3);
    expect(pplY(item)).toBeCloseTo(2.81, 3);
    expect(fuseByPerplexity({ choice: "A", ppl: pplRea(user) }, { choice: "A", ppl: pplRea(item) })).toEqual({
      side: "user",
      choice: "A",
      case: "agree",
    });
    expect(fuseEq3({ choice: "A", ppl: pplY(user) }, { choice: "A", ppl: pplY(item) })).toEqual({
      side: "item",
      choice: "A",
      case: "agree",
    });
  });

  it("has no rule for a side without a valid candidate: the sides differ, the higher PPL wins", () => {
    // The user names A (PPL_y 5.294), the item side names nothing (PPL_y 2.810).
    expect(fuseByPerplexity({ choice: "A", ppl: 2.718 }, { choice: null, ppl: 4.482 })).toEqual({
      side: "user",
      choice: "A",
      case: "user-only",
    });
    expect(fuseEq3({ choice: "A", ppl: 5.294 }, { choice: null, ppl: 2.81 })).toEqual({
      side: "user",
      choice: "A",
      case: "disagree",
    });
    // With the PPLs the other way round Eq. 3 keeps the invalid side; this project's rule keeps A.
    expect(fuseEq3({ choice: "A", ppl: 2.81 }, { choice: null, ppl: 5.294 })).toEqual({
      side: "item",
      choice: null,
      case: "disagree",
    });
    expect(fuseByPerplexity({ choice: "A", ppl: 2.81 }, { choice: null, ppl: 5.294 })).toEqual({
      side: "user",
      choice: "A",
      case: "user-only",
    });
    // Neither side valid: the same (no) recommendation, so the lower PPL, and still no choice.
    expect(fuseEq3({ choice: null, ppl: 3 }, { choice: null, ppl: 2 })).toEqual({
      side: "item",
      choice: null,
      case: "none",
    });
  });

  it("matches the argmin / argmax transcription on random outcomes, invalid sides included", () => {
    const side = fc.record({
      choice: fc.constantFrom("A", "B", null),
      ppl: fc.double({ min: 1, max: 1000, noNaN: true }),
    });
    fc.assert(
      fc.property(side, side, (u, i) => {
        const agree = u.choice === i.choice;
        const want = u.ppl === i.ppl ? "user" : agree === u.ppl < i.ppl ? "user" : "item";
        expect(fuseEq3(u, i).side).toBe(want);
      }),
      { numRuns: 500 },
    );
  });
});

describe("perplexityFromLogprobs", () => {
  it("is exp of the negated mean log-prob", () => {
    // Two tokens with p = 0.5 and 0.125: mean log p = log(0.25), PPL = 4.
    expect(perplexityFromLogprobs([Math.log(0.5), Math.log(0.125)])).toBeCloseTo(4, 12);
    expect(perplexityFromLogprobs(new Float32Array([0, 0, 0]))).toBe(1);
    expect(perplexityFromLogprobs([])).toBeNaN();
  });
});
