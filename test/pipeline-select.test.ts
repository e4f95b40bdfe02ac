// Two choices every variant must share: which epoch's adapter is kept (validation HitRatio@1,
// ties by the unweighted recommendation NLL, never a variant's own α/β-weighted loss), and the
// train split's candidates (fresh negatives, never the validation or test candidate sets).
import { describe, expect, it } from "vitest";
import { betterEpoch, type EpochScore } from "../src/pipeline/epoch-select.js";
import { sampleFor } from "../src/prompts/dataset.js";
import type { UserSplit } from "../src/data/types.js";

/** The epoch (1-based) that a run keeps, by walking its epochs through betterEpoch. */
function kept(epochs: EpochScore[]): number {
  let best: EpochScore | null = null,
    at = 0;
  epochs.forEach((e, i) => {
    if (betterEpoch(e, best)) [best, at] = [e, i + 1];
  });
  return at;
}

describe("epoch selection", () => {
  it("keeps the highest validation HitRatio@1, ties by the lower recommendation NLL, then the earlier epoch", () => {
    const e = (hitRatio: number, recommendationNll: number): EpochScore => ({ hitRatio, recommendationNll });
    expect(kept([e(0.2, 1.0), e(0.4, 3.0), e(0.3, 0.5)])).toBe(2);
    expect(kept([e(0.4, 2.0), e(0.4, 1.5), e(0.4, 1.7)])).toBe(2);
    expect(kept([e(0.4, 1.5), e(0.4, 1.5)])).toBe(1);
    // Without validation users the HitRatio is NaN: the NLL decides; a NaN NLL never wins.
    expect(kept([e(NaN, 2.0), e(NaN, 1.0), e(NaN, NaN)])).toBe(2);
    expect(kept([e(NaN, 0.1), e(0.0, 9.0)])).toBe(2);
  });

  it("ranks two variants' epochs by the same yardstick whatever their α/β", () => {
    // The same per-epoch scores must select the same epoch for every variant: the score has no
    // α/β in it, so a sweep variant and the main one cannot be judged differently.
    const scores = [
      { hitRatio: 0.25, recommendationNll: 2.1 },
      { hitRatio: 0.5, recommendationNll: 2.4 },
      { hitRatio: 0.5, recommendationNll: 2.2 },
    ];
    expect(kept(scores)).toBe(3);
  });
});

describe("train-split candidates", () => {
  const items = Array.from({ length: 40 }, (_, i) => `i${i}`);
  const users: UserSplit[] = Array.from({ length: 30 }, (_, u) => ({
    user: `u${u}`,
    train: [0, 1, 2, 3].map((j) => `i${(u + j) % 40}`),
    valid: `i${(u + 4) % 40}`,
    test: `i${(u + 5) % 40}`,
    candidates: {
      valid: [`i${(u + 4) % 40}`, `i${(u + 10) % 40}`, `i${(u + 11) % 40}`],
      test: [`i${(u + 12) % 40}`, `i${(u + 5) % 40}`, `i${(u + 13) % 40}`],
    },
  }));

  it("never repeat a title (case aside) when the catalog has titles", () => {
    // Titles repeat every 8 ids: a plain uniform draw repeats one in many sets.
    const titleOf = (id: string) => (Number(id.slice(1)) % 2 ? "Cable " : "CABLE ") + (Number(id.slice(1)) % 8);
    let sets = 0;
    for (const u of users) {
      const s = sampleFor(u, "train", 10, { itemIds: items, seed: 7, titleOf });
      const titles = s.candidates.map((id) => titleOf(id).toLowerCase());
      expect(new Set(titles).size, titles.join(" | ")).toBe(3);
      expect(s.candidates[s.targetIndex]).toBe(u.train[3]);
      sets++;
    }
    expect(sets).toBe(users.length);
  });

  it("are the train target plus fresh negatives: untouched, and in neither the validation nor the test set", () => {
    const positions = new Set<number>();
    for (const u of users) {
      const s = sampleFor(u, "train", 10, { itemIds: items, seed: 7 });
      expect(s.target).toBe(u.train[3]);
      expect(s.history).toEqual(u.train.slice(0, 3));
      expect(s.candidates).toHaveLength(3);
      expect(s.candidates[s.targetIndex]).toBe(s.target);
      expect(new Set(s.candidates).size).toBe(3);
      for (const id of s.candidates.filter((x) => x !== s.target)) {
        expect([...u.train, u.valid, u.test]).not.toContain(id);
        expect([...u.candidates.valid, ...u.candidates.test]).not.toContain(id);
      }
      positions.add(s.targetIndex);
      // The same seed gives the same set; the draw is per user.
      expect(sampleFor(u, "train", 10, { itemIds: items, seed: 7 })).toEqual(s);
    }
    expect(positions.size).toBe(3);
    const other = users.map((u) => sampleFor(u, "train", 10, { itemIds: items, seed: 8 }).candidates.join());
    expect(other).not.toEqual(
      users.map((u) => sampleFor(u, "train", 10, { itemIds: items, seed: 7 }).candidates.join()),
    );
  });
});
