// LoRA hot-swap: adapters load once per model and are chosen per call, whatever state the
// context was left in.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type LoraAdapter, type Model, type ScoreResult } from "../src/index.js";
import { expectClose } from "./support/reference.js";
import { tinyLoraPath, tinyModelPath } from "./support/models.js";

let model: Model;
let a: LoraAdapter;
let b: LoraAdapter;
const reqs = [
  { prompt: "A user who likes running shoes", continuation: " would buy socks next" },
  { prompt: "Step 1 - Preference Recognition:", continuation: " the user prefers audio gear" },
];
const flat = (rs: ScoreResult[]) => rs.flatMap((r) => Array.from(r.tokenLogprobs));

beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 2 });
  a = await model.loadLora(tinyLoraPath(1));
  b = await model.loadLora(tinyLoraPath(2));
});
afterAll(() => model?.dispose());

describe("LoRA adapters", () => {
  it("scale 0 equals no adapter, and an adapter changes the results", async () => {
    const s = model.createScorer();
    const none = flat(await s.score(reqs));
    expectClose(flat(await s.score(reqs, { lora: [{ adapter: a, scale: 0 }] })), none, 1e-5);
    const withA = flat(await s.score(reqs, { lora: [{ adapter: a, scale: 1 }] }));
    const maxDiff = Math.max(...withA.map((v, i) => Math.abs(v - none[i]!)));
    expect(maxDiff).toBeGreaterThan(1e-3);
  });

  it("alternating adapters and scales between calls returns each one's own results", async () => {
    const s = model.createScorer();
    // References, each from a fresh scorer that never saw another adapter.
    const ref = async (lora?: { adapter: LoraAdapter; scale: number }[]) => {
      const fresh = model.createScorer();
      const r = flat(await fresh.score(reqs, { lora }));
      fresh.dispose();
      return r;
    };
    const refNone = await ref();
    const refA = await ref([{ adapter: a, scale: 1 }]);
    const refB = await ref([{ adapter: b, scale: 1 }]);
    const refHalfA = await ref([{ adapter: a, scale: 0.5 }]);
    const refAB = await ref([
      { adapter: a, scale: 1 },
      { adapter: b, scale: 1 },
    ]);
    expect(Math.max(...refA.map((v, i) => Math.abs(v - refB[i]!)))).toBeGreaterThan(1e-3);
    for (let round = 0; round < 2; round++) {
      expectClose(flat(await s.score(reqs, { lora: [{ adapter: a, scale: 1 }] })), refA, 1e-5);
      expectClose(flat(await s.score(reqs, { lora: [{ adapter: b, scale: 1 }] })), refB, 1e-5);
      expectClose(flat(await s.score(reqs)), refNone, 1e-5);
      expectClose(flat(await s.score(reqs, { lora: [{ adapter: a, scale: 0.5 }] })), refHalfA, 1e-5);
      expectClose(
        flat(
          await s.score(reqs, {
            lora: [
              { adapter: a, scale: 1 },
              { adapter: b, scale: 1 },
            ],
          }),
        ),
        refAB,
        1e-5,
      );
    }
  });

  it("generation uses the adapter chosen for the call", async () => {
    const opts = { maxTokens: 8, temperature: 0 };
    const [plain] = await model.generate(["The user likes"], opts);
    const [withA] = await model.generate(["The user likes"], { ...opts, lora: [{ adapter: a, scale: 1 }] });
    const [plainAgain] = await model.generate(["The user likes"], opts);
    expect(plainAgain!.text).toBe(plain!.text);
    const s = model.createScorer();
    const [argA] = await s.score([{ prompt: "The user likes", continuation: withA!.tokens }], {
      lora: [{ adapter: a, scale: 1 }],
    });
    expect(argA!.tokenLogprobs.length).toBe(withA!.tokens.length);
  });

  it("disposing an adapter keeps the model usable and makes the adapter unusable", async () => {
    const c = await model.loadLora(tinyLoraPath(3));
    const s = model.createScorer();
    await s.score(reqs, { lora: [{ adapter: c, scale: 1 }] });
    c.dispose();
    c.dispose(); // idempotent
    await expect(s.score(reqs, { lora: [{ adapter: c, scale: 1 }] })).rejects.toThrow(/disposed/);
    expect((await s.score(reqs)).length).toBe(2);
  });
});
