// Classic baselines over a prepared dataset, each picking one of a user's candidates:
//   random      uniform over the candidates (seeded per user, so runs are reproducible);
//   popularity  the candidate bought most often in all users' training sequences;
//   markov      first-order transitions counted over the training sequences: the candidate that
//               most often followed the user's last item; popularity when no transition is known.
// Ties go to the more popular item, then to the earlier candidate (candidate lists are already
// shuffled, so this adds no position bias of its own). HitRatio@1 = hits / users.
// For the test split the history is train + valid (the valid item is the most recent); for the
// valid split it is train alone. Counts never include valid or test items of any user.
import { Rng } from "../util/random.js";
import { DEFAULT_SEED } from "../data/protocol.js";
import type { UserSplit } from "../data/types.js";

export type BaselineName = "random" | "popularity" | "markov";
export const BASELINES: readonly BaselineName[] = ["random", "popularity", "markov"];
export type EvalSplit = "valid" | "test";

export interface BaselineModel {
  name: BaselineName;
  /** The chosen candidate for one user on one split. */
  choose(user: UserSplit, split: EvalSplit): string;
}

/** How often each item occurs in the training sequences. */
export function trainingCounts(users: readonly UserSplit[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const u of users) for (const i of u.train) counts.set(i, (counts.get(i) ?? 0) + 1);
  return counts;
}

/** Counts of consecutive pairs (a → b) in the training sequences. */
export function trainingTransitions(users: readonly UserSplit[]): Map<string, Map<string, number>> {
  const t = new Map<string, Map<string, number>>();
  for (const u of users) {
    for (let j = 1; j < u.train.length; j++) {
      const from = u.train[j - 1]!,
        to = u.train[j]!;
      let row = t.get(from);
      if (!row) t.set(from, (row = new Map()));
      row.set(to, (row.get(to) ?? 0) + 1);
    }
  }
  return t;
}

/** The history a model may see when predicting `split`, oldest first. */
export function historyFor(user: UserSplit, split: EvalSplit): string[] {
  return split === "test" ? [...user.train, user.valid] : user.train;
}

function argmaxBy(candidates: readonly string[], ...scores: ((c: string) => number)[]): string {
  let best = candidates[0]!;
  for (const c of candidates.slice(1)) {
    for (const score of scores) {
      const d = score(c) - score(best);
      if (d > 0) best = c;
      if (d !== 0) break;
    }
  }
  return best;
}

export function buildBaseline(name: BaselineName, users: readonly UserSplit[], seed = DEFAULT_SEED): BaselineModel {
  const counts = trainingCounts(users);
  const pop = (c: string): number => counts.get(c) ?? 0;
  switch (name) {
    case "random":
      return {
        name,
        choose: (u, split) => {
          const c = u.candidates[split];
          return c[new Rng(seed, `random:${split}:${u.user}`).int(c.length)]!;
        },
      };
    case "popularity":
      return { name, choose: (u, split) => argmaxBy(u.candidates[split], pop) };
    case "markov": {
      const transitions = trainingTransitions(users);
      return {
        name,
        choose: (u, split) => {
          const h = historyFor(u, split);
          const row = transitions.get(h[h.length - 1] ?? "");
          return argmaxBy(u.candidates[split], (c) => row?.get(c) ?? 0, pop);
        },
      };
    }
    default:
      throw new Error(`unknown baseline "${name as string}"; known: ${BASELINES.join(", ")}`);
  }
}

export interface BaselineResult {
  name: BaselineName;
  split: EvalSplit;
  hits: number;
  users: number;
  hitRatio1: number;
}

/** HitRatio@1 of one baseline on one split. */
export function evaluateBaseline(
  name: BaselineName,
  users: readonly UserSplit[],
  split: EvalSplit = "test",
  seed = DEFAULT_SEED,
): BaselineResult {
  const model = buildBaseline(name, users, seed);
  let hits = 0;
  for (const u of users) if (model.choose(u, split) === u[split]) hits++;
  return { name, split, hits, users: users.length, hitRatio1: users.length ? hits / users.length : 0 };
}
