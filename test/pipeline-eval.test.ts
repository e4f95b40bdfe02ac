// The eval stage's reasoning metrics: METEOR and BERTScore average over every test user with a
// reference (a missing reasoning scores the metric's floor: METEOR 0, BERTScore the rescaled
// F1 = 0; the valid-only mean beside it), GPTScore over the users
// with a reasoning, and GPTScore's context holds the user's history as well as the candidates.
// The dataset is the tiny preset's synthetic one; the inference output is written by hand and
// the expectations are computed here from users.jsonl and items.jsonl.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { presetConfig, type RunConfig } from "../src/pipeline/config.js";
import { prepareStage } from "../src/pipeline/stages/prepare.js";
import { evalStage, type ReasoningPair } from "../src/pipeline/stages/eval.js";
import { runLayout } from "../src/run/layout.js";
import type { InferRecord } from "../src/infer/records.js";

interface RawUser {
  user: string;
  train: string[];
  valid: string;
  test: string;
  candidates: { test: string[] };
}

describe("reasoning metrics in the eval stage", () => {
  let dir: string;
  let c: RunConfig;
  let users: RawUser[];
  let title: Map<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "msr-eval-"));
    c = presetConfig("tiny", { runDir: dir });
    await prepareStage(c);
    const read = (f: string) =>
      readFileSync(join(dir, "dataset", f), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    users = (read("users.jsonl") as unknown as RawUser[]).slice(0, c.infer.users);
    title = new Map(read("items.jsonl").map((i) => [String(i.id), String(i.title)]));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("averages over all users with a reference, a missing reasoning scoring the floor, and gives GPTScore the history", async () => {
    // Users 0..5: user-side reasoning for 0, 1, 2 and 4; a reference for every user but 4.
    const withReasoning = new Set([0, 1, 2, 4]);
    const records: InferRecord[] = users.map((u, k) => {
      const titles = u.candidates.test.map((id) => title.get(id)!);
      const side = (reasoning: string) => ({
        reasoning,
        answer: titles[0]!,
        choiceIndex: 0,
        reasoningStart: 0,
        text: reasoning,
        finishReason: "eos",
        ppl: 2,
      });
      return {
        user: u.user,
        candidateIds: u.candidates.test,
        candidateTitles: titles,
        targetIndex: u.candidates.test.indexOf(u.test),
        userSide: side(withReasoning.has(k) ? `reasoning of ${u.user}` : ""),
        itemSide: side(""),
        fused: { side: "user", choice: u.candidates.test[0]!, case: "user-only" },
      };
    });
    mkdirSync(runLayout(dir).infer, { recursive: true });
    writeFileSync(runLayout(dir).inferOutputs("msr"), records.map((r) => JSON.stringify(r)).join("\n") + "\n");
    // w/o reason writes no reasoning by construction (its records as the infer stage writes them).
    const bare = records.map((r) => ({
      ...r,
      userSide: { ...r.userSide!, reasoning: "" },
      itemSide: { ...r.itemSide!, reasoning: "" },
    }));
    writeFileSync(runLayout(dir).inferOutputs("wo-reason"), bare.map((r) => JSON.stringify(r)).join("\n") + "\n");
    // The teacher's stored answers: attempt 0 is the zero-shot row's, judged on its Step 5.
    const truth = (k: number) => title.get(users[k]!.test)!;
    const other = (k: number) => title.get(users[k]!.candidates.test.find((id) => id !== users[k]!.test)!)!;
    const chain = (k: number, step2: string, step5: string) =>
      `Step 1 - Preference Recognition: likes things.\nStep 2 - Attribute Analysis: ${step2}\nStep 3 - Logic Matching: fits.\nStep 4 - Summary: so.\nStep 5 - Recommendation: ${step5}`;
    const answers: Array<[number, number, string]> = [
      [0, 0, chain(0, "plain.", `"${truth(0)}"`)], // hit
      [1, 0, chain(1, `"${truth(1)}" is close.`, other(1))], // valid, wrong: the truth in step 2 does not count
      [1, 1, chain(1, "plain.", truth(1))], // a retry naming the truth: not the zero-shot answer
      [2, 0, chain(2, `"${truth(2)}" is close.`, "none of them")], // invalid
      [3, 0, `I would pick ${truth(3)}.`], // no steps: the whole answer is judged, a hit
      [5, 0, chain(5, "plain.", `${truth(5)} or ${other(5)}`)], // two candidates: invalid
    ];
    mkdirSync(runLayout(dir).teacher, { recursive: true });
    writeFileSync(
      join(runLayout(dir).teacher, "answers.jsonl"),
      answers
        .map(([k, a, content]) =>
          JSON.stringify({
            key: `test/${users[k]!.user}/${a}`,
            promptHash: "x",
            teacher: "rules",
            model: "rules-v1",
            content,
            at: "",
          }),
        )
        .join("\n") + "\n",
    );
    const refs = new Map(users.filter((_, k) => k !== 4).map((u) => [u.user, `reference of ${u.user}`]));
    const contexts: ReasoningPair[] = [];
    const quality = {
      meteor: async () => 1,
      bertscore: async () => 0.5,
      // F1 = 0 rescaled with b = 0.2: (0 − 0.2) / 0.8.
      bertscoreMissing: async () => -0.25,
      gptscore: async (pairs: ReasoningPair[]) => (contexts.push(...pairs), -2),
    };
    const m = await evalStage(c, refs, quality, []);
    const row = m.rows.find((r) => r.name === "MSR-Rec (user)")!;
    // 5 users with a reference, 3 of them (0, 1, 2) with a reasoning.
    expect(row).toMatchObject({
      referenceUsers: 5,
      reasoningUsers: 3,
      meteorValid: 1,
      bertscoreValid: 0.5,
      gptscore: -2,
    });
    expect(row.meteor).toBeCloseTo(3 / 5, 12);
    // Two of the five score the rescaled F1 = 0, not a rescaled 0 (which would be 0 here).
    expect(row.bertscore).toBeCloseTo((3 * 0.5 + 2 * -0.25) / 5, 12);
    // No item-side reasoning at all: the floors over all users, nothing valid-only, no GPTScore.
    const item = m.rows.find((r) => r.name === "MSR-Rec (item)")!;
    expect(item).toMatchObject({ meteor: 0, bertscore: -0.25, reasoningUsers: 0, referenceUsers: 5 });
    expect(item.gptscore).toBeUndefined();
    // Teacher zero-shot: hits for users 0 and 3, valid for 0, 1 and 3; user 4 has no answer.
    const teacher = m.rows.find((r) => r.name === "Teacher zero-shot (rules-v1)")!;
    expect(teacher).toMatchObject({
      kind: "baseline",
      users: 6,
      hits: 2,
      valid: 3,
      hitRatio: 2 / 6,
      validRatio: 3 / 6,
    });
    expect(teacher.note).toMatch(/first stored answer.*rule teacher is not an LLM.*1 users without a stored answer/);
    // w/o reason: the reasoning metrics do not apply, and the row says so instead of showing floors.
    const wo = m.rows.find((r) => r.name === "MSR-Rec w/o reason")!;
    expect(wo).toMatchObject({ hits: expect.any(Number), users: 6 });
    for (const k of ["meteor", "bertscore", "gptscore", "reasoningUsers"] as const) expect(wo[k], k).toBeUndefined();
    expect(wo.note).toMatch(/no reasoning to score, so METEOR, BERTScore and GPTScore do not apply/);
    expect(m.skipped.some((s) => /missing reasoning scoring the metric's floor/.test(s))).toBe(true);
    expect(m.skipped.some((s) => /GPTScore .*not comparable with the paper's 22–92/.test(s))).toBe(true);
    expect(readFileSync(runLayout(dir).results, "utf8")).toContain("GPTScore (log-prob, not comparable)");

    // GPTScore's context: the last historyLength items before the test item, oldest first, then the candidates.
    expect(contexts.length).toBeGreaterThan(0);
    for (const p of contexts) {
      const u = users.find((x) => p.candidate === `reasoning of ${x.user}`)!;
      const history = [...u.train, u.valid].slice(-c.dataset.historyLength).map((id) => `"${title.get(id)}"`);
      const candidates = u.candidates.test.map((id) => `"${title.get(id)}"`);
      expect(p.context).toBe(
        `A user interacted with these items, oldest first: ${history.join(", ")}\nCandidate items: ${candidates.join(", ")}`,
      );
    }
  });
});
