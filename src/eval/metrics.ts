// HitRatio@1 and ValidRatio as LLaRA defines them. LLaRA's published numbers are hits / all users;
// its code's `test_hr` is hits / valid answers. Both are reported, under names that say which.
// The strict variant uses the longest-match title rule (see title-match.ts).
import { matchTitle, matchTitleStrict, type TitleMatch } from "./title-match.js";

export interface RecommendationOutcome {
  /** The model's full answer text (or just its recommendation part). */
  answer: string;
  /** Candidate titles shown to the model. */
  candidates: readonly string[];
  /** Index of the ground truth within `candidates`. */
  target: number;
}

export interface HitMetrics {
  users: number;
  valid: number;
  hits: number;
  /** hits / users: LLaRA's published HitRatio@1. */
  hitRatioAll: number;
  /** hits / valid answers: LLaRA's code's `test_hr`. */
  hitRatioValid: number;
  /** valid answers / users. */
  validRatio: number;
}

export interface RecommendationMetrics extends HitMetrics {
  strict: HitMetrics;
}

function tally(
  outcomes: readonly RecommendationOutcome[],
  match: (a: string, c: readonly string[]) => TitleMatch,
): HitMetrics {
  let valid = 0;
  let hits = 0;
  for (const o of outcomes) {
    if (o.target < 0 || o.target >= o.candidates.length) {
      throw new Error(
        `ground-truth index ${o.target} is outside the ${o.candidates.length} candidates; pass the index of the true item in the candidate list`,
      );
    }
    const m = match(o.answer, o.candidates);
    if (!m.valid) continue;
    valid++;
    if (m.index === o.target) hits++;
  }
  const users = outcomes.length;
  return {
    users,
    valid,
    hits,
    hitRatioAll: users > 0 ? hits / users : 0,
    hitRatioValid: valid > 0 ? hits / valid : 0,
    validRatio: users > 0 ? valid / users : 0,
  };
}

/** HitRatio@1 (both denominators) and ValidRatio, with LLaRA's rule and the strict rule. */
export function recommendationMetrics(outcomes: readonly RecommendationOutcome[]): RecommendationMetrics {
  return { ...tally(outcomes, matchTitle), strict: tally(outcomes, matchTitleStrict) };
}
