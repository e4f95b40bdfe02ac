// A rule-based offline teacher. It is not an LLM: it scores each candidate from item attributes
// and interaction statistics and writes the five-step chain that explains the score, so a demo
// can run end to end with no model and no network. Every answer says `teacher: "rules"`.
//
// Signals (statistics come from the *other* users' training sequences, so a user's own held-out
// items never leak into the score):
//   co-occurrence  how often each history item is followed (within 3 steps) by the candidate,
//                  weighted by recency (0.75^age)
//   attributes     share of candidate features (brand, genre, category ...) seen in the history,
//                  recency-weighted
//   popularity     log(1 + interactions), normalised
//   numeric gap    distance of numeric attributes (year, price) from the history's mean
// Attempt 0 recommends the best-scoring candidate; later attempts sample from a softmax over the
// scores (seeded by user and attempt), so a retry can reach a different, still plausible, item.
import type { Item, UserSplit } from "../data/types.js";
import type { PromptSample } from "../prompts/dataset.js";
import type { Teacher, TeacherAnswer, TeacherRequest } from "./types.js";
import { hashString, mulberry32 } from "../util/random.js";

const WINDOW = 3;
const RECENCY = 0.75;
const WEIGHTS = { cooc: 1.0, attr: 1.0, pop: 0.7, numeric: 0.3 };
const SAMPLING_TEMPERATURE = 0.25;
const MAX_FEATURE_TEXT = 80;

interface ItemFeatures {
  categorical: Set<string>;
  numeric: Map<string, number>;
}

interface CandidateScore {
  id: string;
  score: number;
  cooc: number;
  coocBest: { from: string; count: number } | null;
  shared: string[];
  attr: number;
  pop: number;
  numericGap: number;
}

function numericValue(v: string): number | null {
  const m = /^\s*\$?\s*(-?\d+(?:\.\d+)?)\s*$/.exec(v);
  return m ? Number(m[1]) : null;
}

/**
 * Categorical feature values and numeric attributes of an item. Values are compared regardless
 * of the attribute they sit in, so an accessory's `forBrand: Sonix` matches a device's
 * `brand: Sonix`. Generic markers (`kind: device`) and free text (descriptions, feature lists)
 * are left out: they are not attributes a shopper shares across items.
 */
export function itemFeatures(item: Item): ItemFeatures {
  const categorical = new Set<string>();
  const numeric = new Map<string, number>();
  const addText = (key: string, v: string) => {
    if (/^(kind|type)$/i.test(key) || /desc|feature|detail|review|about|image|url/i.test(key)) return;
    const splitWords = /class|genre|tag|categor/i.test(key) && !/[|,;]/.test(v);
    for (const part of v.split(splitWords ? /\s+/ : /[|,;]/)) {
      const t = part.trim();
      if (t.length > 0 && t.length <= MAX_FEATURE_TEXT) categorical.add(t);
    }
  };
  for (const [key, value] of Object.entries(item.attributes ?? {})) {
    if (typeof value === "number") {
      if (Number.isFinite(value)) numeric.set(key, value);
    } else if (typeof value === "string") {
      const n = numericValue(value);
      if (n !== null) numeric.set(key, n);
      else addText(key, value);
    } else if (Array.isArray(value)) {
      for (const v of value.flat(3)) if (typeof v === "string") addText(key, v);
    }
  }
  return { categorical, numeric };
}

export class RulesTeacher implements Teacher {
  readonly name = "rules";
  readonly model = "rules-v1";
  private readonly features = new Map<string, ItemFeatures>();
  private readonly popularity = new Map<string, number>();
  private readonly follows = new Map<string, Map<string, number>>();
  private readonly trainOf = new Map<string, string[]>();
  private maxPopularity = 1;

  constructor(
    private readonly items: Map<string, Item>,
    users: readonly UserSplit[],
  ) {
    for (const [id, it] of items) this.features.set(id, itemFeatures(it));
    for (const u of users) {
      this.trainOf.set(u.user, u.train);
      this.countSequence(u.train, +1);
    }
    for (const c of this.popularity.values()) this.maxPopularity = Math.max(this.maxPopularity, c);
  }

  private countSequence(seq: readonly string[], sign: 1 | -1): void {
    seq.forEach((a, i) => {
      this.popularity.set(a, (this.popularity.get(a) ?? 0) + sign);
      for (let j = i + 1; j <= i + WINDOW && j < seq.length; j++) {
        let row = this.follows.get(a);
        if (!row) this.follows.set(a, (row = new Map()));
        row.set(seq[j]!, (row.get(seq[j]!) ?? 0) + sign);
      }
    });
  }

  private title(id: string): string {
    return this.items.get(id)?.title ?? id;
  }

  /** Scores every candidate of a sample, statistics excluding the user's own sequence. */
  scoreCandidates(sample: PromptSample): CandidateScore[] {
    const own = this.trainOf.get(sample.user) ?? [];
    this.countSequence(own, -1);
    try {
      const h = sample.history;
      const w = h.map((_, j) => RECENCY ** (h.length - 1 - j));
      const wSum = w.reduce((a, b) => a + b, 0) || 1;
      const histNumeric = new Map<string, number[]>();
      for (const id of h)
        for (const [k, v] of this.features.get(id)?.numeric ?? [])
          (histNumeric.get(k) ?? histNumeric.set(k, []).get(k)!).push(v);
      const raw = sample.candidates.map((id): CandidateScore => {
        const f = this.features.get(id) ?? { categorical: new Set<string>(), numeric: new Map<string, number>() };
        let cooc = 0;
        let coocBest: CandidateScore["coocBest"] = null;
        let attr = 0;
        const shared = new Map<string, number>();
        h.forEach((hid, j) => {
          const n = this.follows.get(hid)?.get(id) ?? 0;
          cooc += w[j]! * Math.log1p(n);
          if (n > 0 && (!coocBest || n > coocBest.count)) coocBest = { from: hid, count: n };
          const hf = this.features.get(hid)?.categorical;
          if (hf && f.categorical.size > 0) {
            let k = 0;
            for (const x of f.categorical) {
              if (!hf.has(x)) continue;
              k++;
              shared.set(x, (shared.get(x) ?? 0) + 1);
            }
            attr += (w[j]! * k) / f.categorical.size;
          }
        });
        let gap = 0;
        let gaps = 0;
        for (const [k, v] of f.numeric) {
          const xs = histNumeric.get(k);
          if (!xs || xs.length === 0) continue;
          const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
          const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
          gap += Math.min(3, Math.abs(v - mean) / (sd + 0.1 * Math.abs(mean) + 1e-9)) / 3;
          gaps++;
        }
        const sharedSorted = [...shared.entries()]
          .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
          .map(([x]) => x);
        return {
          id,
          score: 0,
          cooc,
          coocBest,
          shared: sharedSorted,
          attr: attr / wSum,
          pop: Math.log1p(Math.max(0, this.popularity.get(id) ?? 0)) / Math.log1p(this.maxPopularity),
          numericGap: gaps > 0 ? gap / gaps : 0,
        };
      });
      const maxCooc = Math.max(1e-9, ...raw.map((r) => r.cooc));
      for (const r of raw)
        r.score =
          WEIGHTS.cooc * (r.cooc / maxCooc) +
          WEIGHTS.attr * r.attr +
          WEIGHTS.pop * r.pop -
          WEIGHTS.numeric * r.numericGap;
      return raw;
    } finally {
      this.countSequence(own, +1);
    }
  }

  /** Index of the candidate this attempt recommends. */
  choose(scores: readonly CandidateScore[], sample: PromptSample, attempt: number): number {
    let best = 0;
    scores.forEach((s, i) => {
      if (s.score > scores[best]!.score) best = i;
    });
    if (attempt === 0) return best;
    const at = sample.position === undefined ? "" : `@${sample.position}`;
    const rnd = mulberry32(hashString(`${sample.split}\u0000${sample.user}${at}\u0000${attempt}`));
    const top = scores[best]!.score;
    const p = scores.map((s) => Math.exp((s.score - top) / SAMPLING_TEMPERATURE));
    let u = rnd() * p.reduce((a, b) => a + b, 0);
    for (let i = 0; i < p.length; i++) if ((u -= p[i]!) <= 0) return i;
    return p.length - 1;
  }

  /**
   * Step 4 (the summary) for choosing candidate `index` of a sample: the latest item first (the
   * strongest signal of what comes next), then the choice and why it fits, so the evidence comes
   * before the decision.
   */
  summarize(sample: PromptSample, index: number): string {
    const chosen = this.scoreCandidates(sample)[index];
    if (!chosen) throw new Error(`summarize: candidate ${index} out of range (${sample.candidates.length} candidates)`);
    return this.summaryOf(sample, chosen);
  }

  private summaryOf(sample: PromptSample, chosen: CandidateScore): string {
    const q = (id: string) => `"${this.title(id)}"`;
    const reasons: string[] = [];
    if (chosen.shared.length > 0)
      reasons.push(`it matches the user's ${chosen.shared.slice(0, 2).join(" and ")} interest`);
    const latestId = sample.history[sample.history.length - 1];
    if (chosen.coocBest)
      reasons.push(
        `other users took it after ${chosen.coocBest.from === latestId ? "the latest item" : q(chosen.coocBest.from)}`,
      );
    // Popularity is the weakest signal: named only when nothing else speaks for the choice.
    if (reasons.length === 0 && chosen.pop > 0.5) reasons.push("it is widely chosen");
    if (reasons.length === 0) reasons.push("no other candidate fits the history better");
    const latest = latestId !== undefined ? `The latest item is ${q(latestId)}. ` : "";
    return `${latest}${q(chosen.id)} fits best because ${reasons.join(", and ")}.`;
  }

  /** The five-step chain for one sample and attempt. */
  writeChain(sample: PromptSample, attempt: number): string {
    const scores = this.scoreCandidates(sample);
    const pick = this.choose(scores, sample, attempt);
    const chosen = scores[pick]!;
    const q = (id: string) => `"${this.title(id)}"`;

    // Step 1: what the history says.
    const counts = new Map<string, number>();
    for (const id of sample.history)
      for (const x of this.features.get(id)?.categorical ?? []) counts.set(x, (counts.get(x) ?? 0) + 1);
    const frequent = [...counts.entries()]
      .filter(([, c]) => c >= 2)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, 4);
    const n = sample.history.length;
    const recent = sample.history.slice(-2).map(q).join(" and ");
    const step1 = [
      n === 0
        ? "The user has no earlier interactions, so only popularity and attributes can guide the choice."
        : `The user has ${n} recent item${n > 1 ? "s" : ""}; the latest are ${recent}.`,
      frequent.length > 0
        ? `Recurring interests: ${frequent.map(([x, c]) => `${x} (${c} of ${n})`).join(", ")}.`
        : n > 0
          ? "The items share few attributes, so the order of the sequence is the main signal."
          : "",
    ]
      .filter(Boolean)
      .join(" ");

    // Step 2: each candidate's attributes.
    const step2 = sample.candidates
      .map((id) => {
        const f = this.features.get(id);
        const attrs = [...(f?.categorical ?? [])]
          .slice(0, 4)
          .concat([...(f?.numeric ?? [])].slice(0, 2).map(([k, v]) => `${k}: ${v}`));
        const pop = Math.max(0, this.popularity.get(id) ?? 0);
        return `${q(id)}: ${attrs.length > 0 ? attrs.join(", ") : "no listed attributes"}; ${pop} interaction${pop === 1 ? "" : "s"} by other users.`;
      })
      .join(" ");

    // Step 3: how each candidate matches.
    const step3 = scores
      .map((s) => {
        const parts: string[] = [];
        parts.push(
          s.shared.length > 0
            ? `shares ${s.shared.slice(0, 3).join(", ")} with the history`
            : "shares no attribute with the history",
        );
        if (s.coocBest)
          parts.push(
            `other users ${s.coocBest.count > 1 ? "often" : "once"} took it after ${q(s.coocBest.from)}${s.coocBest.count > 1 ? ` (${s.coocBest.count} times)` : ""}`,
          );
        if (s.numericGap > 0.5) parts.push("its numeric attributes are far from the user's usual range");
        return `${q(s.id)} ${parts.join("; ")} (match ${s.score.toFixed(2)}).`;
      })
      .join(" ");

    const step4 = this.summaryOf(sample, chosen);
    return [
      `Step 1 - Preference Recognition: ${step1}`,
      `Step 2 - Attribute Analysis: ${step2}`,
      `Step 3 - Logic Matching: ${step3}`,
      `Step 4 - Summary: ${step4}`,
      `Step 5 - Recommendation: ${this.title(chosen.id)}`,
    ].join("\n");
  }

  async ask(req: TeacherRequest): Promise<TeacherAnswer> {
    return { content: this.writeChain(req.sample, req.attempt), model: this.model };
  }
}
