// openTrainer: the trainer built off the JS thread equals the one createTrainer builds on it (same
// parameters, same step), waits for the model's running call without blocking the event loop,
// rejects with createTrainer's errors, and a prebuilt session is adopted once, by its own model.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { native } from "../src/engine/bindings.js";
import { loadModel, modelSampleTokenizer, tokenizeSample, type Model } from "../src/index.js";
import { addonMissing } from "./support/addon.js";
import { testModelPath, tinyModelPath } from "./support/models.js";

const missing = addonMissing("openTrainer tests");
const record = { prompt: "User bought a phone.", reasoning: "A case protects it.", recommendation: "Apex Phone Case" };
const opts = { lora: { rank: 4, alpha: 8, seed: 3 }, optimizer: { lr: 1e-2 } };
let model: Model;

beforeAll(async () => {
  if (!missing) model = await loadModel(tinyModelPath(), { threads: 2 });
});
afterAll(() => model?.dispose());

describe.skipIf(missing !== null)("openTrainer", () => {
  it("builds the trainer createTrainer builds: same parameters, same steps", async () => {
    const a = model.createTrainer(opts);
    const b = await model.openTrainer(opts);
    const sample = tokenizeSample(modelSampleTokenizer(model), record);
    expect(b.paramNames()).toEqual(a.paramNames());
    for (const name of a.paramNames()) expect(b.getParam(name)).toEqual(a.getParam(name));
    for (let i = 0; i < 2; i++) {
      const [sa, sb] = [await a.step([sample]), await b.step([sample])];
      expect(sb.loss).toBe(sa.loss);
    }
    a.dispose();
    b.dispose();
  });

  it("waits for the model's running call while the event loop goes on", async () => {
    const order: string[] = [];
    const gen = model
      .generate(["The user bought"], { maxTokens: 48, temperature: 0 })
      .then(() => order.push("generate"));
    const opening = model.openTrainer(opts).then((t) => {
      order.push("trainer");
      return t;
    });
    // The JS thread is free at once: an immediate callback runs before either call finishes.
    await new Promise((r) => setImmediate(r));
    order.push("tick");
    const t = await opening;
    await gen;
    expect(order).toEqual(["tick", "generate", "trainer"]);
    t.dispose();
  });

  it("rejects with createTrainer's errors", async () => {
    await expect(model.openTrainer({ lora: { rank: 0 } })).rejects.toThrow(/lora.rank must be a positive integer/);
    await expect(model.openTrainer({ lora: { targets: ["qq" as never] } })).rejects.toThrow(/unknown LoRA target 'qq'/);
  });

  it("adopts a prebuilt session once, and only with the model it was built for", async () => {
    const other = await loadModel(testModelPath({ seed: 1 }), { threads: 2 });
    const Ctor = native().Trainer;
    const nopts = { mode: "lora" as const, rank: 4, loraAlpha: 8 };
    const session = await native().buildTrainSession(model.handle(), nopts);
    expect(() => new Ctor(other.handle(), nopts, session)).toThrow(/belongs to another model/);
    const t = new Ctor(model.handle(), nopts, session);
    expect(() => new Ctor(model.handle(), nopts, session)).toThrow(/already used/);
    t.dispose();
    other.dispose();
  });
});
