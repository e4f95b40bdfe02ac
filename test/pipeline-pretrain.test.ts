// The demo's pretraining corpus: the list exercises answer with a title only the list holds, and
// no document of the corpus answers with a user's validation or test item. Expectations come
// from the users' sequences and from the candidate lines parsed back out of the prompts.
import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { presetConfig } from "../src/pipeline/config.js";
import { loadRunDataset, prepareStage } from "../src/pipeline/stage-data.js";
import { baseStage, pretrainCorpus } from "../src/pipeline/stage-base.js";
import { runLayout } from "../src/pipeline/layout.js";
import { metaNumber, readGguf } from "../src/gguf/reader.js";

/** The quoted titles of the prompt's `Candidate items:` line. */
function listedTitles(prompt: string): string[] | null {
  const line = prompt.split("\n").find((l) => l.startsWith("Candidate items: "));
  return line ? [...line.slice("Candidate items: ".length).matchAll(/"([^"]*)"/g)].map((m) => m[1]!) : null;
}

describe("pretraining corpus", () => {
  it("adds one list exercise per step, answered from a list of items the user never bought", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-pretrain-"));
    try {
      const c = presetConfig("demo", { runDir: dir });
      expect(c.model.pretrainListExercises).toBe(1);
      await prepareStage(c);
      const ds = loadRunDataset(c);
      const title = (id: string) => ds.items.get(id)!.title;
      const without = pretrainCorpus({ ...c, model: { ...c.model, pretrainListExercises: 0 } }, ds, 0);
      const docs = pretrainCorpus(c, ds, 0);
      let exercises = 0;
      for (const u of ds.users) {
        const mine = docs.filter((d) => d.user === u.user);
        const steps = Math.max(0, u.train.length - 2);
        expect(without.filter((d) => d.user === u.user)).toHaveLength(2 * steps);
        expect(mine).toHaveLength(3 * steps);
        const bought = new Set([...u.train, u.valid, u.test].map(title));
        for (let k = 1; k <= steps; k++) {
          const [story, exercise, list] = mine.slice(3 * (k - 1), 3 * k);
          // Steps 1..L-2 in order: the bought item answers the first two documents.
          expect(story!.recommendation).toBe(title(u.train[k]!));
          expect(exercise!.recommendation).toBe(title(u.train[k]!));
          expect(listedTitles(exercise!.prompt)).toContain(title(u.train[k]!));
          const listed = listedTitles(list!.prompt)!;
          expect(listed).toHaveLength(c.dataset.candidates);
          expect(listed.filter((t) => bought.has(t))).toEqual([]);
          expect(listed).toContain(list!.recommendation);
          expect(list!.reasoning).toContain(`"${list!.recommendation}" fits best`);
          exercises++;
        }
        // Nothing answers with the user's held-out items.
        for (const d of mine) expect([title(u.valid), title(u.test)]).not.toContain(d.recommendation);
      }
      expect(exercises).toBeGreaterThan(100);
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
