// Parsing and pruning of teacher answers: accept/reject reasons on hand-made answers.
import { describe, expect, it } from "vitest";
import { parseChain, prunePath } from "../src/teacher/prune.js";

const cands = ["Alien", "Heat", "Fargo", "Toy Story", "Se7en", "Casino"];
const chain = (rec: string) =>
  [
    "Step 1 - Preference Recognition: likes crime films.",
    "Step 2 - Attribute Analysis: Heat is crime; Alien is sci-fi.",
    "Step 3 - Logic Matching: Heat matches best.",
    "Step 4 - Summary: crime wins.",
    `Step 5 - Recommendation: ${rec}`,
  ].join("\n");

describe("parseChain", () => {
  it("reads markdown variants of the step headers", () => {
    const md = [
      "**Step 1: Preference Recognition**",
      "The user likes crime.",
      "### Step 2 - Attribute Analysis",
      "- Heat: crime",
      "**Step 3 – Logic Matching:** Heat fits.",
      "Step 4. Summary: crime.",
      "**Step 5: Recommendation** Heat",
    ].join("\n");
    expect(parseChain(md).steps).toEqual(["The user likes crime.", "Heat: crime", "Heat fits.", "crime.", "Heat"]);
  });

  it("accepts bare step names at line starts and finds steps only in order", () => {
    const bare =
      "Preference Recognition: a\nAttribute Analysis: b\nLogic Matching: c\nSummary: d\nRecommendation: Heat";
    expect(parseChain(bare).steps).toEqual(["a", "b", "c", "d", "Heat"]);
    // Step 10 is not step 1; a header with no body counts as missing.
    expect(parseChain("Step 10 - x\nStep 2 - Attribute Analysis:").steps).toEqual([null, null, null, null, null]);
  });
});

describe("parseChain: headers at line starts only", () => {
  it("does not split a step where its text names another step", () => {
    const text = [
      "Step 1 - Preference Recognition: crime, as Step 2 below confirms.",
      "Step 2 - Attribute Analysis: Heat is crime; see Step 3 - Logic Matching for the fit.",
      "Step 3 - Logic Matching: Heat matches.",
      "Step 4 - Summary: Heat.",
      "Step 5 - Recommendation: Heat",
    ].join("\n");
    expect(parseChain(text).steps).toEqual([
      "crime, as Step 2 below confirms.",
      "Heat is crime; see Step 3 - Logic Matching for the fit.",
      "Heat matches.",
      "Heat.",
      "Heat",
    ]);
  });

  it("finds a header on the line after an empty step", () => {
    const text =
      "Step 1 - Preference Recognition:\n**Step 2 - Attribute Analysis:** b\nStep 3 - Logic Matching: c\nStep 4 - Summary: d\nStep 5 - Recommendation: Heat";
    expect(parseChain(text).steps).toEqual([null, "b", "c", "d", "Heat"]);
  });
});

describe("prunePath", () => {
  it("keeps a complete chain naming the ground truth, with normalised headers", () => {
    const r = prunePath(chain("Heat"), cands, 1);
    expect(r).toEqual({
      valid: true,
      index: 1,
      recommendation: "Heat",
      reasoning: [
        "Step 1 - Preference Recognition: likes crime films.",
        "Step 2 - Attribute Analysis: Heat is crime; Alien is sci-fi.",
        "Step 3 - Logic Matching: Heat matches best.",
        "Step 4 - Summary: crime wins.",
      ].join("\n"),
    });
  });

  it("names each rejection reason", () => {
    expect(prunePath("  ", cands, 1)).toMatchObject({ valid: false, reason: "empty" });
    expect(prunePath(chain("Heat").replace(/Step 3[^\n]*\n/, ""), cands, 1)).toMatchObject({
      valid: false,
      reason: "missing-steps",
      detail: "step(s) 3 missing or empty",
    });
    expect(prunePath(chain("the second one"), cands, 1)).toMatchObject({ valid: false, reason: "no-candidate-named" });
    expect(prunePath(chain("Heat or Fargo"), cands, 1)).toMatchObject({
      valid: false,
      reason: "several-candidates-named",
    });
    expect(prunePath(chain("Fargo"), cands, 1)).toMatchObject({ valid: false, reason: "wrong-item" });
  });

  it("names a title in step 5 by the strict rule: one inside a longer candidate title does not count", () => {
    const withAliens = [...cands.slice(1), "Aliens"]; // "Alien" is candidate 0, "Aliens" candidate 6
    const both = ["Alien", ...withAliens];
    expect(prunePath(chain("Aliens"), both, 6)).toMatchObject({ valid: true, index: 6, recommendation: "Aliens" });
    expect(prunePath(chain("Aliens"), both, 0)).toMatchObject({ valid: false, reason: "wrong-item" });
    expect(prunePath(chain("Alien, not Aliens"), both, 0)).toMatchObject({
      valid: false,
      reason: "several-candidates-named",
    });
  });

  it("judges only step 5, although earlier steps mention other candidates", () => {
    expect(prunePath(chain('"Heat" (1995)'), cands, 1)).toMatchObject({ valid: true });
  });
});
