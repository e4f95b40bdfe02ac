// Eq. 3 of MSR-Rec: fuse the user-side and item-side reasoning outputs by the perplexity of their
// reasoning text. A pure function so that every case can be unit-tested without a model.
//
//   both sides name the same candidate  → keep the output with the LOWER PPL (more fluent reasoning)
//   they name different candidates      → keep the output with the HIGHER PPL (more distinctive)
//   only one side names a valid one     → keep that side
//   neither does                        → invalid (no choice)
//
// A side whose PPL is not a finite positive number (no reasoning tokens to score) loses every
// comparison against a side that has one: "distinctive" must not mean "empty". Exact ties go to the
// user side so that results are deterministic.

export type Side = "user" | "item";

/** One side's parsed output: `choice` is the candidate it names (null when none or ambiguous). */
export interface SideOutcome {
  choice: string | null;
  ppl: number;
}

export type FusionCase = "agree" | "disagree" | "user-only" | "item-only" | "none";

export interface FusionDecision {
  /** The side whose output is kept, or null when neither side named a valid candidate. */
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

/** Eq. 3 perplexity fusion of one user's two reasoning outputs. */
export function fuseByPerplexity(user: SideOutcome, item: SideOutcome): FusionDecision {
  if (user.choice === null && item.choice === null) return { side: null, choice: null, case: "none" };
  if (item.choice === null) return { side: "user", choice: user.choice, case: "user-only" };
  if (user.choice === null) return { side: "item", choice: item.choice, case: "item-only" };
  const agree = user.choice === item.choice;
  const side = pickByPerplexity(user, item, agree ? "lower" : "higher");
  return { side, choice: side === "user" ? user.choice : item.choice, case: agree ? "agree" : "disagree" };
}

/** PPL from per-token log-probs, exp(−mean log p); NaN for an empty continuation. */
export function perplexityFromLogprobs(tokenLogprobs: ArrayLike<number>): number {
  if (tokenLogprobs.length === 0) return Number.NaN;
  let sum = 0;
  for (let t = 0; t < tokenLogprobs.length; t++) sum += tokenLogprobs[t]!;
  return Math.exp(-sum / tokenLogprobs.length);
}
