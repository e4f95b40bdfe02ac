// Eq. 3 of MSR-Rec: fuse the user-side and item-side outputs by perplexity. Pure functions, so
// that every case can be unit-tested without a model.
//
// The paper (literal Eq. 3, fuseEq3): PPL over the output y = {y^rea, y^rec};
//   both sides recommend the same item  → keep the output with the LOWER PPL
//   they recommend different items      → keep the output with the HIGHER PPL
// "Different" includes a side that names no valid candidate: the equation has no case for it.
//
// This project's rule (fuseByPerplexity), the pipeline's main MSR-Rec row: PPL over the reasoning
// tokens only, and an extension that is not in Eq. 3:
//   only one side names a valid candidate → keep that side, whatever the PPLs
//   neither does                          → invalid (no choice)
//
// In both, a side whose PPL is not a finite positive number (nothing to score) loses every
// comparison against a side that has one: "distinctive" must not mean "empty". Exact ties go to
// the user side so that results are deterministic.

export type Side = "user" | "item";

/** One side's parsed output: `choice` is the candidate it names (null when none or ambiguous). */
export interface SideOutcome {
  choice: string | null;
  ppl: number;
}

export type FusionCase = "agree" | "disagree" | "user-only" | "item-only" | "none";

export interface FusionDecision {
  /** The side whose output is kept; null when neither side named a valid candidate (this project's rule). */
  side: Side | null;
  choice: string | null;
  case: FusionCase;
}

function scorable(ppl: number): boolean {
  return Number.isFinite(ppl) && ppl > 0;
}

/** Picks a side by PPL: `prefer` "lower" for agreement, "higher" for disagreement. */
function pickByPerplexity(user: SideOutcome, item: SideOutcome, prefer: "lower" | "higher"): Side {
  const u = scorable(user.ppl);
  const i = scorable(item.ppl);
  if (u !== i) return u ? "user" : "item";
  if (!u) return "user";
  if (user.ppl === item.ppl) return "user";
  const userLower = user.ppl < item.ppl;
  return prefer === "lower" ? (userLower ? "user" : "item") : userLower ? "item" : "user";
}

/** This project's fusion of one user's two outputs: Eq. 3 on reasoning PPLs, plus the one-valid-side rule. */
export function fuseByPerplexity(user: SideOutcome, item: SideOutcome): FusionDecision {
  if (user.choice === null && item.choice === null) return { side: null, choice: null, case: "none" };
  if (item.choice === null) return { side: "user", choice: user.choice, case: "user-only" };
  if (user.choice === null) return { side: "item", choice: item.choice, case: "item-only" };
  const agree = user.choice === item.choice;
  const side = pickByPerplexity(user, item, agree ? "lower" : "higher");
  return { side, choice: side === "user" ? user.choice : item.choice, case: agree ? "agree" : "disagree" };
}

/**
 * Literal Eq. 3 over the sides' output PPLs (reasoning and answer tokens): lower PPL when both
 * name the same candidate (or both none), higher PPL otherwise, with no rule for invalid sides.
 */
export function fuseEq3(user: SideOutcome, item: SideOutcome): FusionDecision {
  const agree = user.choice === item.choice;
  const side = pickByPerplexity(user, item, agree ? "lower" : "higher");
  const choice = side === "user" ? user.choice : item.choice;
  const kase: FusionCase = user.choice === null && item.choice === null ? "none" : agree ? "agree" : "disagree";
  return { side, choice, case: kase };
}

/** PPL from per-token log-probs, exp(−mean log p); NaN for an empty continuation. */
export function perplexityFromLogprobs(tokenLogprobs: ArrayLike<number>): number {
  if (tokenLogprobs.length === 0) return Number.NaN;
  let sum = 0;
  for (let t = 0; t < tokenLogprobs.length; t++) sum += tokenLogprobs[t]!;
  return Math.exp(-sum / tokenLogprobs.length);
}
