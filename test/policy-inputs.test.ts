// The JS side of policy-gradient batches (src/engine/policy.ts), without a model: GRPO's group
// advantages against hand-computed values (TRL's formula: Bessel-corrected std + 1e-4), and the
// flattening and checks of per-token data.
import { describe, expect, it } from "vitest";
import {
  completionTokenCount,
  groupAdvantages,
  splitPerSample,
  toNativePolicy,
  type PolicySample,
} from "../src/engine/policy.js";
import { Segment } from "../src/engine/train-batch.js";

/** A sample with `p` prompt tokens then `c` completion tokens. */
function sample(p: number, c: number, extra: Partial<PolicySample> = {}): PolicySample {
  return {
    tokens: Int32Array.from({ length: p + c }, (_, i) => i + 1),
    segments: Uint8Array.from({ length: p + c }, (_, i) => (i < p ? Segment.prompt : Segment.reasoning)),
    advantage: 0,
    ...extra,
  };
}

describe("groupAdvantages", () => {
  it("normalises each group by its mean and sample standard deviation", () => {
    // Group 1: rewards 1,0,0,1 → mean 0.5, std sqrt(4·0.25/3) = 0.57735; group 2: 0,0,0,3 → mean
    // 0.75, std sqrt((3·0.5625 + 5.0625)/3) = 1.5.
    const a = groupAdvantages([1, 0, 0, 1, 0, 0, 0, 3], 4);
    const s1 = Math.sqrt(1 / 3) + 1e-4;
    const expected = [
      0.5 / s1,
      -0.5 / s1,
      -0.5 / s1,
      0.5 / s1,
      -0.75 / 1.5001,
      -0.75 / 1.5001,
      -0.75 / 1.5001,
      2.25 / 1.5001,
    ];
    expected.forEach((e, i) => expect(a[i]).toBeCloseTo(e, 12));
  });

  it("gives a group of equal rewards zero advantages, and leaves the scale alone with 'none' (Dr. GRPO)", () => {
    expect(Array.from(groupAdvantages([1, 1, 1, 0.5, 0.5, 0.5], 3))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(groupAdvantages([1, 0, 0, 0], 4, "none"))).toEqual([0.75, -0.25, -0.25, -0.25]);
  });

  it("refuses rewards that do not split into groups and non-finite rewards", () => {
    expect(() => groupAdvantages([1, 0, 1], 2)).toThrow(/do not split into groups of 2/);
    expect(() => groupAdvantages([1, NaN], 2)).toThrow(/not all finite/);
    expect(() => groupAdvantages([1, 0], 0)).toThrow(/positive integer/);
  });
});

describe("toNativePolicy", () => {
  it("counts completion tokens after the first token and lays per-token data out sample after sample", () => {
    const a = sample(3, 2, { advantage: 0.5, refLogprobs: Float32Array.of(-1, -2) });
    const b = sample(2, 3, { advantage: Float32Array.of(1, -1, 2), refLogprobs: Float32Array.of(-3, -4, -5) });
    // A sample that starts with a completion token: its first token is never predicted.
    const c: PolicySample = { ...sample(0, 3), advantage: -2, refLogprobs: Float32Array.of(-6, -7) };
    expect([a, b, c].map(completionTokenCount)).toEqual([2, 3, 2]);
    const { inputs, counts } = toNativePolicy([a, b, c], true);
    expect(counts).toEqual([2, 3, 2]);
    expect(Array.from(inputs.advantages!)).toEqual([0.5, 0.5, 1, -1, 2, -2, -2]);
    expect(Array.from(inputs.refLogprobs!)).toEqual([-1, -2, -3, -4, -5, -6, -7]);
    expect(inputs.oldLogprobs).toBeUndefined();
    expect(splitPerSample(inputs.refLogprobs!, counts).map((x) => Array.from(x))).toEqual([
      [-1, -2],
      [-3, -4, -5],
      [-6, -7],
    ]);
  });

  it("says what is wrong with per-token data", () => {
    expect(() => toNativePolicy([sample(2, 3, { advantage: Float32Array.of(1, 2) })], true)).toThrow(
      /advantage has 2 entries but the sample has 3 completion tokens/,
    );
    expect(() => toNativePolicy([sample(2, 2, { oldLogprobs: Float32Array.of(-1, Infinity) })], true)).toThrow(
      /oldLogprobs\[1\] is not a finite number/,
    );
    expect(() => toNativePolicy([sample(2, 2, { refLogprobs: Float32Array.of(0.3, -1) })], true)).toThrow(
      /not probabilities/,
    );
    expect(() => toNativePolicy([sample(2, 2, { advantage: undefined as unknown as number })], true)).toThrow(
      /advantage is missing/,
    );
    expect(
      toNativePolicy([sample(2, 2, { advantage: undefined as unknown as number })], false).inputs.advantages,
    ).toEqual(new Float32Array(2));
  });
});
