// The synthesis loop: τ stopping, the attempt bound, behavior-only fallback, resume from the
// store without asking again, sharding; and the rule-based teacher on real MovieLens data.
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Item, UserSplit } from "../src/data/types.js";
import type { PromptSample } from "../src/prompts/dataset.js";
import { sampleFor } from "../src/prompts/dataset.js";
import { AnswerStore } from "../src/teacher/store.js";
import {
  inShard,
  mergeShards,
  parseShard,
  synthesize,
  writeSynthesisOutput,
  type SynthesisJob,
} from "../src/teacher/synthesize.js";
import { ShardFolders } from "../src/util/shard-folders.js";
import { fingerprint } from "../src/util/fingerprint.js";
import { RulesTeacher, itemFeatures } from "../src/teacher/rules.js";
import { prunePath } from "../src/teacher/prune.js";
import type { Teacher, TeacherAnswer, TeacherRequest } from "../src/teacher/types.js";

const titles = ["Alien", "Heat", "Fargo", "Toy Story", "Se7en", "Casino"];
const chain = (rec: string, complete = true) =>
  [
    "Step 1 - Preference Recognition: p",
    "Step 2 - Attribute Analysis: a",
    complete ? "Step 3 - Logic Matching: m" : "",
    "Step 4 - Summary: s",
    `Step 5 - Recommendation: ${rec}`,
  ]
    .filter(Boolean)
    .join("\n");

/** Answers from a per-user script, attempt by attempt; counts every call. */
class ScriptedTeacher implements Teacher {
  readonly name = "scripted";
  readonly model = "script-1";
  calls: string[] = [];
  constructor(private readonly script: Record<string, string[]>) {}
  async ask(req: TeacherRequest): Promise<TeacherAnswer> {
    this.calls.push(req.key);
    return { content: this.script[req.sample.user]![req.attempt] ?? "", model: this.model };
  }
}

function job(user: string, target = 1): SynthesisJob {
  const sample: PromptSample = {
    user,
    split: "valid",
    history: [],
    candidates: titles,
    target: titles[target]!,
    targetIndex: target,
  };
  return { sample, prompt: `prompt for ${user}`, candidateTitles: titles };
}

const tmpStore = () => {
  const dir = mkdtempSync(join(tmpdir(), "msr-synth-"));
  return { dir, store: AnswerStore.open(join(dir, "answers.jsonl")) };
};

describe("synthesize", () => {
  it("stops at tau valid paths, retries invalid ones up to 3 times, falls back to behavior-only, counts reasons", async () => {
    const teacher = new ScriptedTeacher({
      a: [chain("Heat"), chain("Heat"), chain("Heat")], // tau=2 reached after 2 calls
      b: [chain("Fargo"), chain("Heat", false), chain("Heat"), chain("Heat")], // wrong, incomplete, valid, valid
      c: [chain("Fargo"), chain("nothing"), chain("Heat or Alien")], // never valid (then empty answers): behavior-only
    });
    const { store } = tmpStore();
    const { records, stats } = await synthesize([job("a"), job("b"), job("c")], {
      teacher,
      store,
      tau: 2,
      concurrency: 2,
    });
    // τ + 3 = 5 calls at most: b needs 4 to find its two valid paths, c spends all 5.
    expect(teacher.calls.sort()).toEqual([
      "valid/a/0",
      "valid/a/1",
      "valid/b/0",
      "valid/b/1",
      "valid/b/2",
      "valid/b/3",
      "valid/c/0",
      "valid/c/1",
      "valid/c/2",
      "valid/c/3",
      "valid/c/4",
    ]);
    expect(records.map((r) => [r.user, r.valid])).toEqual([
      ["a", true],
      ["a", true],
      ["b", true],
      ["b", true],
      ["c", false],
    ]);
    expect(records[4]).toEqual({
      user: "c",
      split: "valid",
      prompt: "prompt for c",
      reasoning: null,
      recommendation: "Heat",
      teacher: "scripted",
      valid: false,
    });
    expect(stats).toMatchObject({
      samples: 3,
      maxAttempts: 5,
      attempts: 11,
      requested: 11,
      reused: 0,
      accepted: 4,
      samplesWithPaths: 2,
      behaviorOnly: 1,
    });
    expect(stats.rejected).toEqual({
      empty: 2,
      "missing-steps": 1,
      "no-candidate-named": 1,
      "several-candidates-named": 1,
      "wrong-item": 2,
    });
    expect(store.size).toBe(11);
  });

  it("bounds a sample at tau + maxRetries calls, however the invalid paths fall", async () => {
    const bad = chain("Fargo");
    const good = chain("Heat");
    const cases: Array<[number, number, string[], number, number]> = [
      // tau, retries, script, calls expected, valid paths expected
      [1, 3, [bad, bad, bad, bad, good], 4, 0],
      [1, 0, [bad, good], 1, 0],
      [2, 1, [bad, good, bad, good], 3, 1],
      [2, 1, [good, bad, good, bad], 3, 2],
      [3, 2, [bad, good, good, bad, good], 5, 3],
    ];
    for (const [tau, maxRetries, script, calls, valid] of cases) {
      const teacher = new ScriptedTeacher({ a: script });
      const { records } = await synthesize([job("a")], { teacher, store: tmpStore().store, tau, maxRetries });
      const label = `tau ${tau}, retries ${maxRetries}, ${script.map((x) => (x === good ? "+" : "-")).join("")}`;
      expect(teacher.calls, label).toHaveLength(calls);
      expect(
        records.filter((r) => r.valid),
        label,
      ).toHaveLength(valid);
    }
  });

  it("resumes from the store without asking the teacher again", async () => {
    const script = { a: [chain("Fargo"), chain("Heat")], b: [chain("Heat")] };
    const { dir, store } = tmpStore();
    const first = new ScriptedTeacher(script);
    const ac = new AbortController();
    // Stop after the first stored answer: a run cut short.
    await expect(
      synthesize([job("a"), job("b")], {
        teacher: first,
        store,
        tau: 1,
        concurrency: 1,
        signal: ac.signal,
        onSampleDone: () => ac.abort(),
      }),
    ).rejects.toThrow(/aborted/);
    store.close();
    const resumed = AnswerStore.open(join(dir, "answers.jsonl"));
    const second = new ScriptedTeacher(script);
    const { records, stats } = await synthesize([job("a"), job("b")], { teacher: second, store: resumed, tau: 1 });
    expect([...first.calls, ...second.calls].sort()).toEqual(["valid/a/0", "valid/a/1", "valid/b/0"]);
    expect(stats).toMatchObject({ reused: first.calls.length, requested: second.calls.length, accepted: 2 });
    expect(records.every((r) => r.valid)).toBe(true);
  });

  it("refuses stored answers made for another prompt, and a bad tau", async () => {
    const { store } = tmpStore();
    await synthesize([job("a")], { teacher: new ScriptedTeacher({ a: [chain("Heat")] }), store, tau: 1 });
    const changed = { ...job("a"), prompt: "edited template" };
    await expect(
      synthesize([changed], { teacher: new ScriptedTeacher({ a: [chain("Heat")] }), store, tau: 1 }),
    ).rejects.toThrow(/different prompt/);
    await expect(
      synthesize([job("a")], { teacher: new ScriptedTeacher({}), store, tau: 4, maxAttempts: 3 }),
    ).rejects.toThrow(/maxAttempts \(3\) must be an integer >= tau/);
  });

  it("shards partition users deterministically and merge back into the single run's lines, byte for byte", async () => {
    const users = Array.from({ length: 40 }, (_, i) => `user${i}`);
    const shards = [0, 1, 2].map((i) => parseShard(`${i}/3`));
    for (const u of users) expect(shards.filter((s) => inShard(u, s)).length).toBe(1);
    expect(() => parseShard("3/3")).toThrow(/0 <= i < N/);
    // Some users get two valid paths (tau 2), some none: the lines per sample vary.
    const script = Object.fromEntries(
      users.map((u, i) => [u, i % 3 === 0 ? [chain("Fargo")] : [chain("Heat"), chain("Heat")]]),
    );
    const jobs = users.map((u) => job(u));
    const single = tmpStore();
    const one = await synthesize(jobs, {
      teacher: new ScriptedTeacher(script),
      store: single.store,
      tau: 2,
      maxRetries: 0,
    });
    writeSynthesisOutput(single.dir, one.records, one.stats);

    const out = mkdtempSync(join(tmpdir(), "msr-shards-"));
    const folders = new ShardFolders(out, "synthesize", (s) => `redo ${s.index}/${s.count}`);
    const current = fingerprint({ tau: 2 }, {});
    const runShard = async (s: { index: number; count: number }) => {
      const dir = folders.begin(s, current);
      const r = await synthesize(
        jobs.filter((j) => inShard(j.sample.user, s)),
        {
          teacher: new ScriptedTeacher(script),
          store: AnswerStore.open(join(dir, "answers.jsonl")),
          tau: 2,
          maxRetries: 0,
        },
      );
      writeSynthesisOutput(dir, r.records, r.stats);
      folders.finish(s, current);
    };
    // Shard 1 first: the merge must not take the order in which shards finished.
    for (const s of [shards[1]!, shards[0]!]) await runShard(s);
    expect(() => mergeShards(folders, jobs, current, out)).toThrow(
      /synthesize shard 2\/3 is missing; run it: redo 2\/3/,
    );
    await runShard(shards[2]!);
    const merged = mergeShards(folders, jobs, current, out);
    expect(merged.records).toBe(one.records.length);
    expect(merged.stats.samples).toBe(40);
    // Shard order would put the users of shard 0 first; the merge writes the single run's order.
    expect(readFileSync(join(out, "reasoning.jsonl"))).toEqual(readFileSync(join(single.dir, "reasoning.jsonl")));
    const stats = JSON.parse(readFileSync(join(out, "synthesis-stats.json"), "utf8")) as Record<string, unknown>;
    expect({ ...stats, requested: 0, reused: 0 }).toEqual({ ...one.stats, requested: 0, reused: 0 });
  });
});

describe("rule-based teacher features", () => {
  it("keeps attribute values, parses prices, leaves out free text and generic markers", () => {
    const f = itemFeatures({
      id: "x",
      title: "Armorly Slim Case for Sonix Phones",
      attributes: {
        brand: "Armorly",
        forBrand: "Sonix",
        kind: "accessory",
        price: "$12.99",
        categories: ["Electronics", "Cases"],
        description: "A slim case.",
      },
    });
    expect([...f.categorical].sort()).toEqual(["Armorly", "Cases", "Electronics", "Sonix"]);
    expect(f.numeric).toEqual(new Map([["price", 12.99]]));
    expect([
      ...itemFeatures({
        id: "m",
        title: "Toy Story",
        attributes: { class: "Animation Children's Comedy", release_year: 1995 },
      }).categorical,
    ]).toEqual(["Animation", "Children's", "Comedy"]);
  });

  it("prefers the candidate that shares attributes with a recent item, and explains why", () => {
    const items = new Map<string, Item>(
      [
        ["p", "Sonix Phone", { brand: "Sonix", category: "Phones" }],
        ["c", "Case for Sonix Phones", { forBrand: "Sonix", category: "Cases" }],
        ["t", "Apexa Tablet", { brand: "Apexa", category: "Tablets" }],
      ].map(([id, title, attributes]) => [
        id as string,
        { id: id as string, title: title as string, attributes: attributes as Item["attributes"] },
      ]),
    );
    const teacher = new RulesTeacher(items, []);
    const s: PromptSample = {
      user: "u",
      split: "test",
      history: ["p"],
      candidates: ["t", "c"],
      target: "c",
      targetIndex: 1,
    };
    expect(teacher.choose(teacher.scoreCandidates(s), s, 0)).toBe(1);
    const chain = teacher.writeChain(s, 0);
    expect(chain).toContain('"Case for Sonix Phones" shares Sonix with the history');
    expect(chain.endsWith("Step 5 - Recommendation: Case for Sonix Phones")).toBe(true);
  });
});

// ---- the rule-based teacher on MovieLens 100K ------------------------------------------------

const ML = join(__dirname, "..", "..", "shared", "data", "ml-100k");

/** A minimal leave-one-out split with seeded negatives, enough to judge the teacher. */
let cached: { items: Map<string, Item>; users: UserSplit[] } | null = null;
function movielens(): { items: Map<string, Item>; users: UserSplit[] } {
  if (cached) return cached;
  const items = new Map<string, Item>();
  for (const line of readFileSync(join(ML, "ml-100k.item"), "utf8").split("\n").slice(1)) {
    const [id, title, year, cls] = line.split("\t");
    if (id && title) items.set(id, { id, title, attributes: { release_year: year ?? "", class: cls ?? "" } });
  }
  const seqs = new Map<string, [number, number, string][]>();
  readFileSync(join(ML, "ml-100k.inter"), "utf8")
    .split("\n")
    .slice(1)
    .forEach((line, order) => {
      const [u, i, , t] = line.split("\t");
      if (u && i) (seqs.get(u) ?? seqs.set(u, []).get(u)!).push([Number(t), order, i]);
    });
  let seed = 42;
  const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const ids = [...items.keys()];
  const users: UserSplit[] = [];
  for (const [user, s] of seqs) {
    const seq = s.sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
    const seen = new Set(seq);
    const cand = (gt: string) => {
      const c = [gt];
      while (c.length < 6) {
        const x = ids[Math.floor(rnd() * ids.length)]!;
        if (!seen.has(x) && !c.includes(x)) c.push(x);
      }
      return c.sort(() => rnd() - 0.5);
    };
    users.push({
      user,
      train: seq.slice(0, -2),
      valid: seq.at(-2)!,
      test: seq.at(-1)!,
      candidates: { valid: cand(seq.at(-2)!), test: cand(seq.at(-1)!) },
    });
  }
  return (cached = { items, users });
}

describe.skipIf(!existsSync(ML))("RulesTeacher on ml-100k", () => {
  if (!existsSync(ML)) console.log(`skipping: ${ML} not found (real data lives in ../shared/data)`);

  it("usually, not always, names the ground truth, in a chain the pruner accepts", async () => {
    const { items, users } = movielens();
    const teacher = new RulesTeacher(items, users);
    const sample = users.slice(0, 300).map((u) => sampleFor(u, "valid"));
    let hits = 0;
    let complete = 0;
    for (const s of sample) {
      const { content } = await teacher.ask({ key: "", prompt: "", sample: s, attempt: 0 });
      const r = prunePath(
        content,
        s.candidates.map((id) => items.get(id)!.title),
        s.targetIndex,
      );
      if (r.valid) hits++;
      if (r.valid || r.reason === "wrong-item") complete++;
    }
    // Random choice would hit 1/6 ≈ 0.17 of the time.
    expect(complete).toBe(sample.length);
    console.log(`rules teacher hit rate on 300 valid samples: ${(hits / sample.length).toFixed(3)}`);
    expect(hits / sample.length).toBeGreaterThan(0.4);
    expect(hits / sample.length).toBeLessThan(0.98);
  });

  it("uses no statistics from the user's own sequence and varies later attempts", async () => {
    const { items, users } = movielens();
    const teacher = new RulesTeacher(items, users);
    const alone = new RulesTeacher(items, users.slice(1));
    const s = sampleFor(users[0]!, "train");
    // Removing the user from the statistics changes nothing: own counts are already excluded.
    expect(teacher.scoreCandidates(s).map((c) => c.score)).toEqual(alone.scoreCandidates(s).map((c) => c.score));
    const picks = new Set<number>();
    for (let a = 0; a < 40; a++) picks.add(teacher.choose(teacher.scoreCandidates(s), { ...s, user: `v${a}` }, 1));
    expect(picks.size).toBeGreaterThan(1);
    const text = teacher.writeChain(s, 0);
    if (process.env.MSR_SHOW_CHAIN) console.log(text);
    expect(text.split("\n").map((l) => l.slice(0, 6))).toEqual(["Step 1", "Step 2", "Step 3", "Step 4", "Step 5"]);
  });
});
