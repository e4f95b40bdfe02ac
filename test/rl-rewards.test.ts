// The rl stage's reward (src/train/rl-rewards.ts): the title rule on the answer after the end
// marker, exactly one candidate for validity, the kept steps and the end marker for format.
import { describe, expect, it } from "vitest";
import { outputReward } from "../src/train/rl-rewards.js";

const titles = ["Alien", "Aliens", "Titanic"];
const w = { valid: 0.2, format: 0.1 };
const out = (reasoning: string, answer: string) => `\n${reasoning}\n[reasoning_end] ${answer}`;

describe("outputReward", () => {
  it("rewards naming the ground truth, validity and the reasoning's format separately", () => {
    const summary = "Step 4 - Summary: the user likes space horror.";
    expect(outputReward(out(summary, "Titanic"), titles, 2, [4], w)).toEqual({
      reward: 1.3,
      hit: true,
      valid: true,
      format: true,
    });
    // A valid wrong answer.
    expect(outputReward(out(summary, "titanic"), titles, 0, [4], w)).toMatchObject({ hit: false, valid: true });
    expect(outputReward(out(summary, "titanic"), titles, 0, [4], w).reward).toBeCloseTo(0.3, 12);
    // Two candidates named (LLaRA's rule: "Aliens" contains "Alien"): invalid, even if one is the target.
    expect(outputReward(out(summary, "Aliens"), titles, 1, [4], w)).toMatchObject({
      hit: false,
      valid: false,
      format: true,
    });
  });

  it("needs every kept step and the end marker for the format reward", () => {
    const two = "Step 1 - Preference Recognition: horror.\nStep 4 - Summary: Titanic fits.";
    expect(outputReward(out(two, "Titanic"), titles, 2, [1, 4], w).format).toBe(true);
    expect(outputReward(out("Step 4 - Summary: fits.", "Titanic"), titles, 2, [1, 4], w).format).toBe(false);
    // No end marker: the whole text is the answer (as evaluation parses it), and the format fails.
    const r = outputReward("\nStep 4 - Summary: fits. Titanic", titles, 2, [4], w);
    expect(r).toMatchObject({ hit: true, valid: true, format: false });
    expect(r.reward).toBeCloseTo(1.2, 12);
  });
});
