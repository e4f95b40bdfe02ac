// One grammar per prompt (`grammars`): prompts with different constraints decode in one batch, and
// each output equals that prompt generated alone under the single-grammar option.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../src/index.js";
import { tinyModelPath } from "./support/models.js";

let model: Model;

beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 2 });
});
afterAll(() => model?.dispose());

const titles = (xs: string[]) => `root ::= ${xs.map((t) => JSON.stringify(t)).join(" | ")}`;

describe("generate with one grammar per prompt", () => {
  const prompts = [
    "The user bought a phone. Recommend:",
    "Candidates: Zen Yoga Mat, Apex Case. Pick:",
    "Hello there",
    "Step 1 -",
  ];
  const grammars = [
    titles(["Apex Phone Case", "Sonix Charger"]),
    titles(["Zen Yoga Mat", "Apex Case"]),
    null,
    titles(["yes", "no"]),
  ];

  it("constrains each prompt by its own grammar, as if each ran alone", async () => {
    for (const temperature of [0, 0.9]) {
      const opts = { maxTokens: 24, temperature, seed: 5, parallel: 4 };
      const batched = await model.generate(prompts, { ...opts, grammars });
      // Reference: prompt i alone at the same seed offset (prompt i samples with seed + i).
      const alone = [];
      for (let i = 0; i < prompts.length; i++) {
        const g = grammars[i];
        const [r] = await model.generate([prompts[i]!], { ...opts, seed: opts.seed + i, ...(g ? { grammar: g } : {}) });
        alone.push(r!);
      }
      expect(batched.map((r) => r.text)).toEqual(alone.map((r) => r.text));
      expect(["Apex Phone Case", "Sonix Charger"]).toContain(batched[0]!.text);
      expect(["Zen Yoga Mat", "Apex Case"]).toContain(batched[1]!.text);
      expect(["yes", "no"]).toContain(batched[3]!.text);
    }
  });

  it("refuses a count that does not match the prompts, both options at once, and names a bad grammar", async () => {
    await expect(model.generate(prompts, { grammars: grammars.slice(1) })).rejects.toThrow(
      /grammars has 3 entries for 4 prompts/,
    );
    await expect(model.generate(prompts, { grammars, grammar: titles(["x"]) })).rejects.toThrow(
      /either grammar .* or grammars/,
    );
    await expect(model.generate(prompts.slice(0, 2), { grammars: [titles(["a"]), "root ::= ("] })).rejects.toThrow(
      /grammars\[1\] is not valid GBNF/,
    );
  });
});
