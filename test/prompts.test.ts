// Template builders against hand-written prompts, the dataset reader's split rules, and the
// training-target format.
import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  fillTemplate,
  formatBehaviorTarget,
  formatTrainingTarget,
  splitTarget,
  REASONING_END,
  REASONING_START,
} from "../src/prompts/build.js";
import { recentHistory } from "../src/data/protocol.js";
import { checkTemplate, loadTallrecTemplate, loadTemplates } from "../src/prompts/templates.js";
import { contextFor, readPreparedDataset, sampleFor } from "../src/prompts/dataset.js";

const ctx = { dataset: "movie", history: ["Toy Story", "Heat"], candidates: ["Alien", "Fargo, Director's Cut"] };

describe("templates", () => {
  const t = loadTemplates();

  it("teacher prompt is the Figure 3 chain, filled", () => {
    expect(fillTemplate(t.teacher, ctx)).toBe(
      [
        "You are an expert recommender for the movie domain.",
        'A user interacted with these items, oldest first: "Toy Story", "Heat"',
        'Candidate items: "Alien", "Fargo, Director\'s Cut"',
        "Think step by step before recommending:",
        "Step 1 - Preference Recognition: what the history says about the user's interests.",
        "Step 2 - Attribute Analysis: the key attributes of each candidate.",
        "Step 3 - Logic Matching: how well each candidate matches the preferences, and why.",
        "Step 4 - Summary: the rationale for the final choice.",
        "Step 5 - Recommendation: exactly one candidate title.",
      ].join("\n"),
    );
  });

  it("training input is task, history, candidates, analyse-then-recommend (Figure 4)", () => {
    expect(fillTemplate(t.train, ctx)).toBe(
      [
        "Task: sequential recommendation in the movie domain. Predict which candidate item the user will interact with next.",
        'The user interacted with these items, oldest first: "Toy Story", "Heat"',
        'Candidate items: "Alien", "Fargo, Director\'s Cut"',
        "Analyse the user's preferences and the candidates step by step, then recommend exactly one candidate title.",
      ].join("\n"),
    );
  });

  const task = [
    "Task: sequential recommendation in the movie domain. Predict which candidate item the user will interact with next.",
    'The user interacted with these items, oldest first: "Toy Story", "Heat"',
    'Candidate items: "Alien", "Fargo, Director\'s Cut"',
  ];

  it("item side walks through the three item steps (Figure 5)", () => {
    expect(fillTemplate(t.item, ctx)).toBe(
      [
        ...task,
        "Reason from the items' side, then recommend:",
        "- Item Feature Analysis: the key features of each candidate.",
        "- User-Item Suitability: how well each candidate suits the user's history.",
        "- Optimal Item Selection: exactly one candidate title.",
      ].join("\n"),
    );
  });

  it("user side summarises preferences, then matches them (Figure 5)", () => {
    expect(fillTemplate(t.user, ctx)).toBe(
      [
        ...task,
        "Reason from the user's side, then recommend:",
        "- User Preference Summary: summarise the user's interests from the history.",
        "- Preference Matching: match those preferences to each candidate.",
        "- Recommendation: exactly one candidate title.",
      ].join("\n"),
    );
  });

  it("full chain is the Figure 3 steps after the task", () => {
    const steps = fillTemplate(t.teacher, ctx).split("\n").slice(3);
    expect(fillTemplate(t.full, ctx)).toBe([...task, ...steps].join("\n"));
  });

  it("inserts titles literally, even ones with $& or placeholders inside", () => {
    const out = fillTemplate("[history] | [candidates] | [dataset]", {
      dataset: "d",
      history: ["$& $1"],
      candidates: ["[dataset]"],
    });
    expect(out).toBe('"$& $1" | "[dataset]" | d');
  });

  it("rejects a template without a placeholder, saying which", () => {
    expect(() => checkTemplate("user", "no history here [dataset] [candidates]")).toThrow(/lacks \[history\]/);
  });
});

describe("TALLRec's prompt", () => {
  it("is TALLRec's Alpaca layout, asking for one candidate, the response starting on its own line", () => {
    const t = loadTallrecTemplate();
    const filled = fillTemplate(t, { dataset: "movie", history: ["Heat"], candidates: ["Alien", "Fargo"] });
    expect(filled).toMatch(
      /^Below is an instruction that describes a task, paired with an input that provides further context\./,
    );
    expect(filled).toContain(
      "### Instruction:\nGiven the user's history of movie items, choose the one candidate item",
    );
    expect(filled).toContain('### Input:\nUser history: "Heat"\nCandidates: "Alien", "Fargo"\n');
    expect(filled.endsWith("\n\n### Response:\n")).toBe(true);
    // A templates folder without it (the method's own prompts only) falls back to the shipped one.
    expect(loadTallrecTemplate(mkdtempSync(join(tmpdir(), "msr-tpl-")))).toBe(t);
  });
});

describe("training targets", () => {
  it("puts steps 1-4 between the markers and the title after the end marker", () => {
    const y = formatTrainingTarget("Step 1 - a\nStep 2 - b", "Alien");
    expect(y).toBe(`${REASONING_START}\nStep 1 - a\nStep 2 - b\n${REASONING_END} Alien`);
    expect(splitTarget(y)).toEqual({ reasoning: "Step 1 - a\nStep 2 - b", recommendation: "Alien" });
  });
  it("behavior-only targets have an empty reasoning segment", () => {
    expect(formatBehaviorTarget("Heat")).toBe("[reasoning_start]\n[reasoning_end] Heat");
    expect(splitTarget(formatBehaviorTarget("Heat"))).toEqual({ reasoning: "", recommendation: "Heat" });
    expect(splitTarget("no markers")).toEqual({ reasoning: null, recommendation: null });
  });
  it("keeps the 10 most recent history items", () => {
    const h = Array.from({ length: 15 }, (_, i) => i);
    expect(recentHistory(h)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect(recentHistory([1, 2], 10)).toEqual([1, 2]);
  });
});

describe("prepared dataset reader", () => {
  const dir = mkdtempSync(join(tmpdir(), "msr-prompts-"));
  const items = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"].map((id) => ({
    id,
    title: `Title ${id.toUpperCase()}`,
    genre: "x",
  }));
  writeFileSync(join(dir, "items.jsonl"), items.map((i) => JSON.stringify(i)).join("\n") + "\n");
  const user = {
    user: "u1",
    train: ["a", "b", "c"],
    valid: "d",
    test: "e",
    candidates: { valid: ["f", "d", "g", "h", "i", "j"], test: ["k", "l", "f", "e", "g", "h"] },
  };
  writeFileSync(join(dir, "users.jsonl"), JSON.stringify(user) + "\n");
  writeFileSync(
    join(dir, "stats.json"),
    JSON.stringify({ name: "toy", users: 1, items: 12, interactions: 5, density: 5 / 12, source: "hand-written" }),
  );
  const ds = readPreparedDataset(dir);

  it("builds test, valid and train samples by the documented rules", () => {
    expect(ds.name).toBe("toy");
    const u = ds.users[0]!;
    expect(sampleFor(u, "test")).toEqual({
      user: "u1",
      split: "test",
      history: ["a", "b", "c", "d"],
      candidates: ["k", "l", "f", "e", "g", "h"],
      target: "e",
      targetIndex: 3,
    });
    expect(sampleFor(u, "valid")).toMatchObject({ history: ["a", "b", "c"], target: "d", targetIndex: 1 });
    expect(sampleFor(u, "train")).toEqual({
      user: "u1",
      split: "train",
      history: ["a", "b"],
      candidates: ["f", "c", "g", "h", "i", "j"],
      target: "c",
      targetIndex: 1,
    });
    expect(contextFor(ds, sampleFor(u, "valid"))).toEqual({
      dataset: "toy",
      history: ["Title A", "Title B", "Title C"],
      candidates: ["Title F", "Title D", "Title G", "Title H", "Title I", "Title J"],
    });
  });

  it("says which file and line is broken", () => {
    const bad = mkdtempSync(join(tmpdir(), "msr-prompts-bad-"));
    writeFileSync(join(bad, "items.jsonl"), '{"id":"a","title":"A"}\n{"id":\n');
    writeFileSync(join(bad, "users.jsonl"), "");
    writeFileSync(join(bad, "stats.json"), "{}");
    expect(() => readPreparedDataset(bad)).toThrow(/items\.jsonl:2: not valid JSON/);
    expect(() => readPreparedDataset(join(bad, "nope"))).toThrow(
      /missing: is .* a dataset folder made by `msr-rec prepare`/,
    );
  });
});
