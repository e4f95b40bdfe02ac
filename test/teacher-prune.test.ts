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
    const bare = "Preference Recognition: a\nAttribute Analysis: b\nLogic Matching: c\nSummary: d\nRecommendation: Heat";
    expect(parseChain(bare).steps).toEqual(["a", "b", "c", "d", "Heat"]);
    // Step 10 is not step 1; a header with no body counts as missing.
    expect(parseChain("Step 10 - x\nStep 2 - Attribute Analysis:").steps).toEqual([null, null, null, null, null]);
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
    expect(prunePath(chain("Heat").replace(/Step 3[^\n]*\n/, ""), cands, 1)).toMatchObject({ valid: false, reason: "missing-steps", detail: "step(s) 3 missing or empty" });
    expect(prunePath(chain("the second one"), cands, 1)).toMatchObject({ valid: false, reason: "no-candidate-named" });
    expect(prunePath(chain("Heat or Fargo"), cands, 1)).toMatchObject({ valid: false, reason: "several-candidates-named" });
    expect(prunePath(chain("Fargo"), cands, 1)).toMatchObject({ valid: false, reason: "wrong-item" });
  });

  it("judges only step 5, although earlier steps mention other candidates", () => {
    expect(prunePath(chain('"Heat" (1995)'), cands, 1)).toMatchObject({ valid: true });
  });
});
