// The data protocol of METHOD.md §1, as pure functions over interactions:
//   1. drop interactions whose item has no usable title (the model only sees titles);
//   2. order each user's events chronologically, ties broken by original file order, and keep the
//      first event of each (user, item) pair (*choice*: repeats would put a test item into train);
//   3. iterative k-core (users and items with >= k distinct partners, to a fixed point);
//   4. sample N users (seeded) after the k-core and keep every item of the sampled users;
//   5. leave-one-out: last = test, second last = valid, the rest = train;
//   6. candidates: ground truth + (C-1) items the user never interacted with, drawn uniformly
//      from the prepared item pool (seeded per user), no two with the same title (a set with a
//      repeated title cannot be answered validly), then shuffled.
// Same inputs + seed give identical outputs: every random draw comes from `Rng` streams derived
// from (seed, purpose), and every set is visited in a canonical order.
import { Rng } from "../util/random.js";
import { issuesOf, rule, throwIssues, type OptionIssue } from "../util/options.js";
import { computeStats, type DatasetStats, type Interaction, type Item, type UserSplit } from "./types.js";

/**
 * How many of the most recent history items a prompt shows (METHOD.md §1 *choice*); also the
 * sequence length of the RecBole export, so the sequential baselines see the same window.
 */
export const HISTORY_LENGTH = 10;
export const DEFAULT_KCORE = 5;
export const DEFAULT_USERS = 1500;
export const DEFAULT_CANDIDATES = 6;
/**
 * The one default seed: a run's seed when its config names none, and the default of every command
 * that repeats a step of a run on its own (prepare, prompts, synthesize, baselines), so that each
 * gives what a default run gives.
 */
export const DEFAULT_SEED = 42;

export interface ProtocolOptions {
  /** Minimum interactions per user and per item (0 or 1 = no filter). */
  kcore?: number;
  /** Users to sample after the k-core (all of them when fewer remain). */
  users?: number;
  /** Candidate-set size, ground truth included. */
  candidates?: number;
  seed?: number;
}

export interface ProtocolStats extends DatasetStats {
  /** Before any filtering, counted on the interactions read (repeats included). */
  raw: DatasetStats;
  /** After title filtering, de-duplication and the k-core, before sampling. */
  kcore: DatasetStats;
  options: Required<ProtocolOptions>;
}

export interface PreparedData {
  items: Item[];
  users: UserSplit[];
  stats: ProtocolStats;
}

/** Orders ids naturally: numbers by value ("9" < "10"), everything else by UTF-16 code units. */
export function compareIds(a: string, b: string): number {
  const na = /^\d+$/.test(a),
    nb = /^\d+$/.test(b);
  if (na && nb) {
    if (a.length !== b.length) return a.length - b.length;
  } else if (na !== nb) return na ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The last `HISTORY_LENGTH` (or `n`) items of a history, oldest first; none for n <= 0. */
export function recentHistory<T>(history: readonly T[], n: number = HISTORY_LENGTH): T[] {
  return n <= 0 ? [] : history.slice(Math.max(0, history.length - n));
}

/**
 * Per-user chronological item sequences (ties by file order), first event of each pair kept.
 * Users are returned in canonical id order.
 */
export function userSequences(interactions: readonly Interaction[]): Map<string, string[]> {
  // Bucket event indices by user (counting sort), then sort each bucket by (time, order): no
  // per-event allocation, which matters for multi-million-line Amazon categories.
  const userIndex = new Map<string, number>();
  const userOf = new Int32Array(interactions.length);
  interactions.forEach((it, k) => {
    let u = userIndex.get(it.user);
    if (u === undefined) userIndex.set(it.user, (u = userIndex.size));
    userOf[k] = u;
  });
  const start = new Int32Array(userIndex.size + 1);
  for (let k = 0; k < userOf.length; k++) start[userOf[k]! + 1]!++;
  for (let u = 0; u < userIndex.size; u++) start[u + 1]! += start[u]!;
  const fill = start.slice(0, userIndex.size);
  const byUser = new Int32Array(interactions.length);
  for (let k = 0; k < userOf.length; k++) byUser[fill[userOf[k]!]!++] = k;
  const out = new Map<string, string[]>();
  for (const user of [...userIndex.keys()].sort(compareIds)) {
    const u = userIndex.get(user)!;
    const events = Array.from(byUser.subarray(start[u]!, start[u + 1]!));
    events.sort(
      (a, b) => interactions[a]!.time - interactions[b]!.time || interactions[a]!.order - interactions[b]!.order,
    );
    const seen = new Set<string>();
    const seq: string[] = [];
    for (const k of events) {
      const item = interactions[k]!.item;
      if (seen.has(item)) continue;
      seen.add(item);
      seq.push(item);
    }
    out.set(user, seq);
  }
  return out;
}

/**
 * The k-core of a user–item graph whose edges are the distinct (user, item) pairs in `sequences`:
 * the largest subgraph in which every user and every item has >= k edges. Computed by peeling
 * (a queue of nodes below k), which reaches the same unique fixed point as repeated filtering in
 * O(edges). Sequence order is preserved.
 */
export function kcoreFilter(sequences: Map<string, string[]>, k: number): Map<string, string[]> {
  if (k <= 1) return new Map([...sequences].filter(([, s]) => s.length > 0));
  const users = [...sequences.keys()];
  const itemIndex = new Map<string, number>();
  const userItems: number[][] = users.map((u) =>
    sequences.get(u)!.map((item) => {
      let i = itemIndex.get(item);
      if (i === undefined) itemIndex.set(item, (i = itemIndex.size));
      return i;
    }),
  );
  const itemUsers: number[][] = Array.from({ length: itemIndex.size }, () => []);
  userItems.forEach((items, u) => items.forEach((i) => itemUsers[i]!.push(u)));
  const userDeg = userItems.map((l) => l.length);
  const itemDeg = itemUsers.map((l) => l.length);
  const userAlive = userDeg.map(() => true);
  const itemAlive = itemDeg.map(() => true);
  // Queue entries: >= 0 is a user index, < 0 is item index -(i+1).
  const queue: number[] = [];
  userDeg.forEach((d, u) => d < k && queue.push(u));
  itemDeg.forEach((d, i) => d < k && queue.push(-(i + 1)));
  while (queue.length > 0) {
    const node = queue.pop()!;
    if (node >= 0) {
      if (!userAlive[node]) continue;
      userAlive[node] = false;
      for (const i of userItems[node]!) if (itemAlive[i] && --itemDeg[i]! < k) queue.push(-(i + 1));
    } else {
      const i = -node - 1;
      if (!itemAlive[i]) continue;
      itemAlive[i] = false;
      for (const u of itemUsers[i]!) if (userAlive[u] && --userDeg[u]! < k) queue.push(u);
    }
  }
  const out = new Map<string, string[]>();
  users.forEach((user, u) => {
    if (!userAlive[u]) return;
    const kept = sequences.get(user)!.filter((_, j) => itemAlive[userItems[u]![j]!]);
    out.set(user, kept);
  });
  return out;
}

function statsOf(sequences: Map<string, string[]>): DatasetStats {
  const items = new Set<string>();
  let n = 0;
  for (const s of sequences.values()) {
    n += s.length;
    for (const i of s) items.add(i);
  }
  return computeStats(sequences.size, items.size, n);
}

/**
 * Two titles LLaRA's rule cannot tell apart (it lower-cases answer and titles): a candidate set
 * holding both can never be answered validly, so negatives never share a title with the ground
 * truth or with each other.
 */
export function titleKey(title: string): string {
  return title.trim().toLowerCase();
}

/**
 * `drawn` without the items whose title is already in `taken` (or repeats one kept before it),
 * in order; the kept titles are added to `taken`.
 */
export function distinctTitles(drawn: readonly string[], keyOf: (id: string) => string, taken: Set<string>): string[] {
  const kept: string[] = [];
  for (const id of drawn) {
    const k = keyOf(id);
    if (taken.has(k)) continue;
    taken.add(k);
    kept.push(id);
  }
  return kept;
}

/**
 * Tops `picked` up to `count` items with items of `eligible` whose titles are not yet taken,
 * drawn uniformly (fewer when too few distinct titles are left).
 */
export function fillDistinctTitles(
  rng: Rng,
  picked: readonly string[],
  eligible: readonly string[],
  count: number,
  keyOf: (id: string) => string,
  taken: Set<string>,
): string[] {
  if (picked.length >= count) return [...picked];
  const rest = distinctTitles(
    eligible.filter((id) => !taken.has(keyOf(id))),
    keyOf,
    new Set(taken),
  );
  return [...picked, ...distinctTitles(rng.sample(rest, count - picked.length), keyOf, taken)];
}

/**
 * Samples `count` negatives for one user from `pool`, never an item in `exclude` nor one whose
 * title is in `taken` (the ground truth's) or repeats another negative's (see titleKey).
 */
function sampleNegatives(
  rng: Rng,
  pool: readonly string[],
  poolSet: ReadonlySet<string>,
  exclude: ReadonlySet<string>,
  count: number,
  keyOf: (id: string) => string,
  taken: Set<string>,
): string[] {
  let touchedInPool = 0;
  for (const i of exclude) if (poolSet.has(i)) touchedInPool++;
  const available = pool.length - touchedInPool;
  if (available < count) {
    throw new Error(
      `only ${available} items are left that the user never interacted with, but ${count} negatives are needed: lower --candidates or prepare more users`,
    );
  }
  if (available >= pool.length / 2) {
    // Rejection sampling: cheap when most of the pool is eligible. A drawn item whose title is
    // taken is drawn again; a pool of few distinct titles ends in the exact draw below.
    const picked: string[] = [];
    for (let draws = 0; picked.length < count && draws < 64 * count + pool.length; draws++) {
      const item = pool[rng.int(pool.length)]!;
      if (!exclude.has(item)) picked.push(...distinctTitles([item], keyOf, taken));
    }
    if (picked.length === count) return picked;
    return enough(
      fillDistinctTitles(
        rng,
        picked,
        pool.filter((i) => !exclude.has(i)),
        count,
        keyOf,
        taken,
      ),
      count,
    );
  }
  const eligible = pool.filter((i) => !exclude.has(i));
  return enough(
    fillDistinctTitles(rng, distinctTitles(rng.sample(eligible, count), keyOf, taken), eligible, count, keyOf, taken),
    count,
  );
}

function enough(negatives: string[], count: number): string[] {
  if (negatives.length < count) {
    throw new Error(
      `only ${negatives.length} items with titles distinct from the ground truth's and each other's are left that the user never interacted with, but ${count} negatives are needed: lower --candidates or prepare more users`,
    );
  }
  return negatives;
}

/** What is wrong with protocol options: the one check of them, for `prepare`, the run config and library calls. */
export function protocolOptionIssues(o: ProtocolOptions): OptionIssue[] {
  return issuesOf({
    users: [o.users, rule.positiveInteger],
    kcore: [o.kcore, rule.integerAtLeast(0)],
    candidates: [o.candidates, rule.integerAtLeast(2)],
    seed: [o.seed, rule.integer],
  });
}

/** Runs the whole protocol on raw interactions and the items that have titles. */
export function applyProtocol(
  interactions: readonly Interaction[],
  items: ReadonlyMap<string, Item>,
  options: ProtocolOptions = {},
): PreparedData {
  throwIssues(protocolOptionIssues(options));
  const opts: Required<ProtocolOptions> = {
    kcore: options.kcore ?? DEFAULT_KCORE,
    users: options.users ?? DEFAULT_USERS,
    candidates: options.candidates ?? DEFAULT_CANDIDATES,
    seed: options.seed ?? DEFAULT_SEED,
  };

  const raw = computeStats(
    new Set(interactions.map((i) => i.user)).size,
    new Set(interactions.map((i) => i.item)).size,
    interactions.length,
  );
  const titled = interactions.filter((i) => items.has(i.item));
  const core = kcoreFilter(userSequences(titled), opts.kcore);
  const kcoreStats = statsOf(core);

  // Leave-one-out needs at least train, valid and test: with k < 3 shorter users are dropped.
  const eligible = [...core.keys()].filter((u) => core.get(u)!.length >= 3);
  if (eligible.length === 0)
    throw new Error(`no user has >= 3 interactions after the ${opts.kcore}-core: lower --kcore or check the input`);
  const sampled = new Rng(opts.seed, "users").sample(eligible, opts.users).sort(compareIds);

  const poolSet = new Set<string>();
  for (const u of sampled) for (const i of core.get(u)!) poolSet.add(i);
  const pool = [...poolSet].sort(compareIds);

  const keyOf = (id: string) => titleKey(items.get(id)!.title);
  let interactionCount = 0;
  const users: UserSplit[] = sampled.map((user) => {
    const seq = core.get(user)!;
    interactionCount += seq.length;
    const touched = new Set(seq);
    const rng = new Rng(opts.seed, `candidates:${user}`);
    const candidatesFor = (truth: string): string[] =>
      rng.shuffle([
        truth,
        ...sampleNegatives(rng, pool, poolSet, touched, opts.candidates - 1, keyOf, new Set([keyOf(truth)])),
      ]);
    const valid = seq[seq.length - 2]!;
    const test = seq[seq.length - 1]!;
    return {
      user,
      train: seq.slice(0, -2),
      valid,
      test,
      candidates: { valid: candidatesFor(valid), test: candidatesFor(test) },
    };
  });

  return {
    items: pool.map((id) => items.get(id)!),
    users,
    stats: { ...computeStats(users.length, pool.length, interactionCount), raw, kcore: kcoreStats, options: opts },
  };
}
