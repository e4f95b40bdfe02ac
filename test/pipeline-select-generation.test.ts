// Epoch selection by generation (train.selectBy "generation"): each validation user is decoded
// greedily from exactly the input the variant was trained to continue, up to selectMaxTokens, and
// the answer is judged as inference judges it. The engine records the prompts and answers with
// scripted outputs; prompts are checked against the trainer's own sample tokenization.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, type Model } from "../src/engine/index.js";
import { presetConfig, trainVariants, type RunConfig } from "../src/pipeline/config.js";
import { prepareStage } from "../src/pipeline/stages/prepare.js";
import { generatedHitRatio } from "../src/pipeline/epoch-select.js";
import { loadRunDataset, tallrecPrompt, trainingPrompt, validationUsers } from "../src/pipeline/run-data.js";
import { sampleFor } from "../src/prompts/dataset.js";
import { loadTemplates } from "../src/prompts/templates.js";
import { tokenizeSample } from "../src/train/samples.js";
import { Segment } from "../src/engine/train-batch.js";
import { tinyModelPath } from "./support/models.js";
import { addonMissing } from "./support/addon.js";

const missing = addonMissing("generation-based epoch selection tests");

describe.skipIf(missing !== null)("validation HitRatio@1 by greedy generation", () => {
  let dir: string;
  let c: RunConfig;
  let vocab: Model;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "msr-selgen-"));
    c = presetConfig("tiny", { runDir: dir, train: { selectBy: "generation", selectMaxTokens: 40 } });
    await prepareStage(c);
    vocab = await loadModel(tinyModelPath(), { vocabOnly: true });
  });
  afterAll(() => {
    vocab?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("decodes each variant from its trained input and counts answers naming the ground truth", async () => {
    const ds = loadRunDataset(c);
    const users = validationUsers(c, ds);
    const samples = users.map((u) => sampleFor(u, "valid", c.dataset.historyLength));
    const titles = samples.map((s) => s.candidates.map((id) => ds.items.get(id)!.title));
    // User 0 names the truth, user 1 another candidate, user 2 the truth without an end marker
    // (valid: the whole text is the answer), user 3 runs out of tokens inside its reasoning.
    const answer = (i: number) => {
      const truth = titles[i]![samples[i]!.targetIndex]!;
      const other = titles[i]!.find((t) => t !== truth && !t.includes(truth) && !truth.includes(t))!;
      return (
        [
          "\nStep 4 - Summary: fits.\n[reasoning_end] " + truth,
          "\n[reasoning_end] " + other,
          truth,
          "\nStep 4 - Summary: the user",
        ][i] ?? ""
      );
    };
    const tok = { tokenize: (t: string, o?: { addBos?: boolean }) => vocab.tokenize(t, o), eosToken: vocab.info.eos };
    const templates = loadTemplates();
    for (const v of trainVariants(c)) {
      const seen: { prompts: Int32Array[]; opts: Record<string, unknown> } = { prompts: [], opts: {} };
      const engine = {
        tokenize: (t: string, o?: { addBos?: boolean }) => vocab.tokenize(t, o),
        loadLora: async () => ({ dispose: () => {} }),
        generate: async (prompts: Int32Array[], opts: Record<string, unknown>) => {
          seen.prompts = prompts;
          seen.opts = opts;
          return prompts.map((_, i) => ({ text: answer(i), tokens: new Int32Array(), finishReason: "eos" }));
        },
      } as unknown as Model;
      const hr = await generatedHitRatio(engine, "adapter.gguf", c, v);
      expect(hr, v.name).toBeCloseTo(2 / users.length, 12);
      expect(seen.opts, v.name).toMatchObject({ temperature: 0, maxTokens: 40 });
      samples.forEach((s, i) => {
        // The trained sample's tokens that carry no loss are exactly what the decoding starts from.
        const record =
          v.format === "tallrec"
            ? { prompt: tallrecPrompt(ds, s), reasoning: "", recommendation: "x", layout: "plain" as const }
            : {
                prompt: trainingPrompt(ds, templates, s),
                reasoning: v.withoutReasoning ? "" : "Step 4 - Summary: fits.",
                recommendation: "x",
              };
        const t = tokenizeSample(tok, record);
        const firstLoss = t.segments.findIndex((g) => g !== Segment.prompt);
        expect(Array.from(seen.prompts[i]!), `${v.name} user ${i}`).toEqual(Array.from(t.tokens.slice(0, firstLoss)));
      });
    }
  });
});
