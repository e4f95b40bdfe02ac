// BERTScore on hand-made token vectors (hand-computed values and a naive re-implementation), and
// GPTScore through a hand-made scorer whose log-probabilities are known.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { bertScore, bertScoreFromVectors, meanBertScore } from "../src/eval/bertscore.js";
import { gptScore, gptScorePrompt, GPTSCORE_ASPECTS, type ContinuationRequest } from "../src/eval/gptscore.js";

describe("BERTScore", () => {
  it("hand example: two candidate tokens, one reference token", () => {
    // cos(c0, r0) = 1, cos(c1, r0) = 0: R = 1, P = (1 + 0)/2 = 0.5, F1 = 2·0.5·1/1.5 = 2/3.
    const s = bertScoreFromVectors(
      [
        [1, 0],
        [0, 3],
      ],
      [[2, 0]],
    );
    expect(s.recall).toBeCloseTo(1, 12);
    expect(s.precision).toBeCloseTo(0.5, 12);
    expect(s.f1).toBeCloseTo(2 / 3, 12);
  });

  it("hand example with a 45° match, weights and baseline rescaling", () => {
    // cos([1,1],[1,0]) = 1/√2; with weights 3 and 1 on the candidate tokens [1,0],[1,1]:
    // P = (3·1 + 1·(1/√2))/4; R = 1 (the reference token [1,0] matches c0 exactly).
    const p = (3 + Math.SQRT1_2) / 4;
    const s = bertScoreFromVectors(
      [
        [1, 0],
        [1, 1],
      ],
      [[1, 0]],
      { candWeights: [3, 1] },
    );
    expect(s.precision).toBeCloseTo(p, 12);
    const r = bertScoreFromVectors(
      [
        [1, 0],
        [1, 1],
      ],
      [[1, 0]],
      { candWeights: [3, 1], baseline: 0.5 },
    );
    expect(r.precision).toBeCloseTo((p - 0.5) / 0.5, 12);
    expect(r.recall).toBeCloseTo(1, 12);
  });

  it("agrees with a naive double loop on random vectors, and is scale invariant", () => {
    const vec = fc
      .array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 3, maxLength: 3 })
      .filter((v) => v.some((x) => Math.abs(x) > 1e-3));
    fc.assert(
      fc.property(
        fc.array(vec, { minLength: 1, maxLength: 5 }),
        fc.array(vec, { minLength: 1, maxLength: 5 }),
        (c, r) => {
          const cos = (a: number[], b: number[]) =>
            a.reduce((s, x, i) => s + x * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));
          let p = 0;
          for (const x of c) p += Math.max(...r.map((y) => cos(x, y)));
          p /= c.length;
          let rec = 0;
          for (const y of r) rec += Math.max(...c.map((x) => cos(x, y)));
          rec /= r.length;
          const s = bertScoreFromVectors(c, r);
          expect(s.precision).toBeCloseTo(p, 9);
          expect(s.recall).toBeCloseTo(rec, 9);
          const scaled = bertScoreFromVectors(
            c.map((v) => v.map((x) => 7 * x)),
            r,
          );
          expect(scaled.f1).toBeCloseTo(s.f1, 9);
        },
      ),
    );
  });

  it("scores text pairs through an embedder callback", async () => {
    // A toy embedder: one-hot vectors over a tiny vocabulary, so F1 is word overlap.
    const vocab = ["the", "user", "likes", "films", "games"];
    const embed = async (texts: readonly string[]) =>
      texts.map((t) => t.split(" ").map((w) => vocab.map((v) => (v === w ? 1 : 0))));
    const [a, b] = await bertScore(
      ["the user likes films", "the user likes games"],
      ["the user likes films", "the user likes films"],
      embed,
    );
    expect(a!.f1).toBeCloseTo(1, 12);
    expect(b!.f1).toBeCloseTo(0.75, 12); // 3 of 4 tokens match on each side
    expect(meanBertScore([a!, b!]).f1).toBeCloseTo(0.875, 12);
    await expect(bertScore(["a"], [], embed)).rejects.toThrow(/pairs candidates with references/);
    expect(() => bertScoreFromVectors([[1, 0]], [[1, 0, 0]])).toThrow(/differ in length/);
  });
});

describe("GPTScore", () => {
  // A toy evaluator: continuation tokens are space-separated words; a word that appears in the
  // prompt has log-prob ln 0.5, any other word ln 0.1.
  const seen: ContinuationRequest[] = [];
  const scorer = async (reqs: readonly ContinuationRequest[]) => {
    seen.push(...reqs);
    return reqs.map((r) => ({
      tokenLogprobs: Float32Array.from(
        r.continuation
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map((w) => Math.log(r.prompt.includes(w) ? 0.5 : 0.1)),
      ),
    }));
  };

  it("is the mean token log-probability given the aspect prompt", async () => {
    const r = await gptScore(
      [
        { text: "Heat fits crime", context: "History: Heat, Fargo" }, // Heat seen; fits, crime not: (ln .5 + 2 ln .1)/3
        { text: "Fargo", context: "History: Heat, Fargo" },
      ],
      scorer,
      "coherence",
    );
    expect(r.scores[0]).toBeCloseTo((Math.log(0.5) + 2 * Math.log(0.1)) / 3, 6);
    expect(r.scores[1]).toBeCloseTo(Math.log(0.5), 6);
    expect(r.mean).toBeCloseTo((r.scores[0]! + r.scores[1]!) / 2, 12);
    expect(seen[0]!.prompt).toBe(GPTSCORE_ASPECTS.coherence.replace("{context}", "History: Heat, Fargo"));
    expect(seen[0]!.continuation).toBe(" Heat fits crime");
  });

  it("custom templates need {context}; empty texts give NaN and do not count", async () => {
    expect(gptScorePrompt({ template: "Judge: {context} =>" }, "x")).toBe("Judge: x =>");
    expect(() => gptScorePrompt({ template: "no slot" }, "x")).toThrow(/\{context\}/);
    const r = await gptScore(
      [
        { text: "", context: "c" },
        { text: "c", context: "c" },
      ],
      scorer,
      "fluency",
    );
    expect(r.scores[0]).toBeNaN();
    expect(r.mean).toBeCloseTo(Math.log(0.5), 6);
  });
});
