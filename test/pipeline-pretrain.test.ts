// The demo's pretraining corpus: the list exercises answer with a title only the list holds, and
// no document of the corpus answers with a user's validation or test item. Expectations come
// from the users' sequences and from the candidate lines parsed back out of the prompts.
import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { presetConfig } from "../src/pipeline/config.js";
import { loadRunDataset } from "../src/pipeline/run-data.js";
import { prepareStage } from "../src/pipeline/stages/prepare.js";
import { baseStage, pretrainCorpus } from "../src/pipeline/stages/base.js";
import { runLayout } from "../src/run/layout.js";
import { metaNumber, readGguf } from "../src/gguf/reader.js";

/** The quoted titles of the prompt's `Candidate items:` line. */
function listedTitles(prompt: string): string[] | null {
  const line = prompt.split("\n").find((l) => l.startsWith("Candidate items: "));
  return line ? [...line.slice("Candidate items: ".length).matchAll(/"([^"]*)"/g)].map((m) => m[1]!) : null;
}

describe("pretraining corpus", () => {
  it("tells each step as an exercise and as list exercises answered from lists of items the user never bought", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-pretrain-"));
    try {
      const c = presetConfig("demo", { runDir: dir });
      expect(c.model.pretrainListExercises).toBe(5);
      expect(c.model.pretrainOpenSteps).toBe(false);
      await prepareStage(c);
      const ds = loadRunDataset(c);
      const title = (id: string) => ds.items.get(id)!.title;
      // The default corpus shape (an open step, an exercise, no lists) for comparison.
      const plain = pretrainCorpus(
        { ...c, model: { ...c.model, pretrainListExercises: 0, pretrainOpenSteps: true } },
        ds,
        0,
      );
      const docs = pretrainCorpus(c, ds, 0);
      // No document is behavior-only (an empty reasoning teaches skipping it), and the catalog's
      // facts answer with the title their reasoning starts with.
      for (const d of docs) expect(d.reasoning).not.toBe("");
      const facts = docs.filter((d) => d.user === "");
      expect(facts).toHaveLength(2 * ds.items.size);
      for (const d of facts) expect(d.reasoning.startsWith(`"${d.recommendation}"`), d.reasoning).toBe(true);
      const perStep = 1 + c.model.pretrainListExercises;
      let exercises = 0;
      let templated = 0;
      for (const u of ds.users) {
        const mine = docs.filter((d) => d.user === u.user);
        const steps = Math.max(0, u.train.length - 2);
        const open = plain.filter((d) => d.user === u.user);
        expect(open).toHaveLength(2 * steps);
        expect(mine).toHaveLength(perStep * steps);
        const bought = new Set([...u.train, u.valid, u.test].map(title));
        for (let k = 1; k <= steps; k++) {
          // The open step (history line only, no candidate list) is left out of the demo's corpus.
          expect(listedTitles(open[2 * (k - 1)]!.prompt)).toBeNull();
          const [exercise, ...lists] = mine.slice(perStep * (k - 1), perStep * k);
          // Steps 1..L-2 in order: the bought item answers the exercise, from a list that holds it.
          expect(exercise!.recommendation).toBe(title(u.train[k]!));
          expect(listedTitles(exercise!.prompt)).toContain(title(u.train[k]!));
          for (const list of lists) {
            const listed = listedTitles(list.prompt)!;
            expect(listed).toHaveLength(c.dataset.candidates);
            expect(listed.filter((t) => bought.has(t))).toEqual([]);
            expect(listed).toContain(list.recommendation);
            expect(list.reasoning).toContain(`"${list.recommendation}" fits best`);
            // List exercises come in the prompt templates too, not only as the bare lines.
            if (list.prompt.split("\n").length > 2) templated++;
            exercises++;
          }
        }
        // Nothing answers with the user's held-out items.
        for (const d of mine) expect([title(u.valid), title(u.test)]).not.toContain(d.recommendation);
      }
      expect(exercises).toBeGreaterThan(300);
      expect(templated).toBeGreaterThan(exercises / 4);
      expect(templated).toBeLessThan(exercises);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("initialises the base model in the configured shape", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-shape-"));
    try {
      const c = presetConfig("demo", { runDir: dir, model: { pretrainEpochs: 0, initShape: { blockCount: 3 } } });
      const lines: string[] = [];
      await baseStage(c, (m) => lines.push(m), true);
      const meta = readGguf(runLayout(dir).baseModel).metadata;
      expect(metaNumber(meta, "llama.block_count")).toBe(3);
      expect(metaNumber(meta, "llama.embedding_length")).toBe(64);
      expect(lines.join("\n")).toContain("3 layers, width 64");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
