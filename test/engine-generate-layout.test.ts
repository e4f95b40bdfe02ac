// Batched generation on per-sequence KV streams (kvLayout "per-sequence") gives token for token the
// output of the unified cache: greedy and seeded sampling, more prompts than slots (a finished
// slot's stream is cleared and reused, the last running slots move down once no prompt waits),
// prompts of very different lengths, per-prompt grammars and stop strings; repeated prompts share
// one decode of the prompt. The layouts differ only in which cells a token's attention reads (its
// own stream vs the whole cache, masked).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type GenerateOptions, type GenerateResult, type Model } from "../src/index.js";
import { tinyModelPath } from "./support/models.js";

let model: Model;

beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 2 });
});
afterAll(() => model?.dispose());

/** Deterministic token ids in [1, vocab), after a BOS. */
function tokens(n: number, seed: number): Int32Array {
  const V = model.info.vocabSize;
  let x = seed * 2654435761 + 12345;
  return Int32Array.from({ length: n }, (_, i) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return i === 0 ? 1 : 1 + (x % (V - 1));
  });
}

async function bothLayouts(
  prompts: Int32Array[],
  opts: GenerateOptions,
): Promise<[GenerateResult[], GenerateResult[]]> {
  const unified = await model.generate(prompts, { ...opts, kvLayout: "unified" });
  const perSeq = await model.generate(prompts, { ...opts, kvLayout: "per-sequence" });
  return [unified, perSeq];
}

function expectSame(a: GenerateResult[], b: GenerateResult[]): void {
  expect(b.length).toBe(a.length);
  for (let i = 0; i < a.length; i++) {
    expect(Array.from(b[i]!.tokens), `prompt ${i}`).toEqual(Array.from(a[i]!.tokens));
    expect(b[i]!.text, `prompt ${i}`).toBe(a[i]!.text);
    expect(b[i]!.finishReason, `prompt ${i}`).toBe(a[i]!.finishReason);
  }
}

// 9 prompts of 5..270 tokens: with 4 slots every slot is reused, and short prompts finish
// prefilling while long ones still run.
const lengths = [40, 5, 270, 90, 17, 150, 60, 8, 200];

describe("generate KV layouts", () => {
  it("agree token for token with greedy decoding and with seeded sampling, more prompts than slots", async () => {
    const prompts = lengths.map((n, i) => tokens(n, i));
    const greedy = await bothLayouts(prompts, { maxTokens: 48, temperature: 0, parallel: 4 });
    expectSame(...greedy);
    expect(greedy[0].every((r) => r.tokens.length > 0)).toBe(true);
    const sampled = await bothLayouts(prompts, { maxTokens: 48, temperature: 0.9, seed: 5, parallel: 4 });
    expectSame(...sampled);
    // Different seeds per prompt really sample: not every prompt's greedy continuation.
    expect(sampled[0].map((r) => r.text)).not.toEqual(greedy[0].map((r) => r.text));
    // Auto picks per-sequence here (4 slots of 318 cells): same outputs.
    expectSame(sampled[0], await model.generate(prompts, { maxTokens: 48, temperature: 0.9, seed: 5, parallel: 4 }));
  });

  it("per-sequence equals each prompt generated alone when outputs end at different steps (stop strings, per-prompt grammars)", async () => {
    const prompts = [70, 64, 270, 90, 117, 150, 66, 80, 200].map((n, i) => tokens(n, 100 + i));
    const alone = async (i: number, opts: GenerateOptions): Promise<GenerateResult> =>
      (await model.generate([prompts[i]!], { ...opts, seed: opts.seed! + i, parallel: 1 }))[0]!;
    const free = await model.generate(prompts, {
      maxTokens: 30,
      temperature: 0.8,
      seed: 9,
      parallel: 9,
      kvLayout: "per-sequence",
    });
    // A stop string taken from each of three outputs: those prompts stop early, at different steps.
    const stop = [1, 4, 7].map((i) => free[i]!.text.slice(6 + i, 9 + i)).filter((s) => s.trim().length === 3);
    expect(stop.length).toBeGreaterThan(0);
    const stopOpts: GenerateOptions = { maxTokens: 30, temperature: 0.8, seed: 9, stop };
    const p = await model.generate(prompts, { ...stopOpts, parallel: 9, kvLayout: "per-sequence" });
    expect(p.some((r) => r.finishReason === "stop")).toBe(true);
    // The unified cache is not compared here: the running sequences write their next tokens into
    // the cells the stopped ones freed, out of position order, and on this nearly flat model the
    // reordered (f16) attention sums are enough to change sampled tokens.
    for (let i = 0; i < prompts.length; i++) expectSame([await alone(i, stopOpts)], [p[i]!]);
    const titles = ["Apex Phone Case", "Zen Yoga Mat", "Sonix Wireless Headphones and a Long Cable"];
    const grammar = `root ::= ${titles.map((t) => JSON.stringify(t)).join(" | ")}`;
    const grammars = prompts.map((_, i) => (i % 3 === 0 ? null : grammar));
    const gp = await model.generate(prompts, {
      maxTokens: 30,
      temperature: 1.1,
      seed: 2,
      parallel: 3,
      grammars,
      kvLayout: "per-sequence",
    });
    for (let i = 0; i < prompts.length; i++) {
      if (i % 3 !== 0) expect(titles).toContain(gp[i]!.text.trim());
      expectSame(
        [
          (
            await model.generate([prompts[i]!], {
              maxTokens: 30,
              temperature: 1.1,
              seed: 2 + i,
              parallel: 1,
              grammar: grammars[i] ?? undefined,
            })
          )[0]!,
        ],
        [gp[i]!],
      );
    }
  });

  it("decodes a repeated prompt once (G samples of one prompt) and samples each copy as if alone", async () => {
    const prompts = [tokens(150, 7), tokens(90, 8)].flatMap((p) => [p, p, p, p]);
    const opts: GenerateOptions = { maxTokens: 20, temperature: 1, seed: 11 };
    const batched = await model.generate(prompts, { ...opts, parallel: 8, kvLayout: "per-sequence", profile: true });
    // Each prompt's first copy is decoded, the three others copy its stream.
    expect(batched.profile!.sharedPrompts).toBe(6);
    expect(new Set(batched.slice(0, 4).map((r) => r.text)).size).toBeGreaterThan(1);
    for (let i = 0; i < prompts.length; i++)
      expectSame([(await model.generate([prompts[i]!], { ...opts, seed: 11 + i, parallel: 1 }))[0]!], [batched[i]!]);
  });

  it("decodes new prompts together, in equal pieces of consecutive streams, each as if alone", async () => {
    const alone = async (p: Int32Array, opts: GenerateOptions, i: number) =>
      (await model.generate([p], { ...opts, seed: opts.seed! + i, parallel: 1 }))[0]!;
    const expectAlone = async (prompts: Int32Array[], opts: GenerateOptions, got: GenerateResult[]) => {
      for (let i = 0; i < prompts.length; i++) {
        const a = await alone(prompts[i]!, opts, i);
        expectSame([a], [got[i]!]);
        expect(Array.from(got[i]!.tokenLogprobs!), `prompt ${i}`).toEqual(Array.from(a.tokenLogprobs!));
      }
    };
    // 12 prompts of 48 tokens (576, more than a 512-token ubatch): 42 of each, then the last 6.
    const equal = Array.from({ length: 12 }, (_, i) => tokens(48, 300 + i));
    const first: GenerateOptions = { maxTokens: 1, temperature: 0.9, seed: 3, logprobs: true };
    const one = await model.generate(equal, { ...first, parallel: 12, kvLayout: "per-sequence", profile: true });
    expect(one.profile!.decodes).toBe(2);
    await expectAlone(equal, first, one);
    // Lengths that end at different pieces, a slot that stops early, more prompts than slots.
    const mixed = [40, 41, 40, 12, 90, 7, 33, 64, 5].map((n, i) => tokens(n, 400 + i));
    const opts: GenerateOptions = { maxTokens: 12, temperature: 0.9, seed: 4, logprobs: true };
    const r = await model.generate(mixed, { ...opts, parallel: 6, kvLayout: "per-sequence", profile: true });
    expect(r.profile!.decodes).toBeLessThan(mixed.length + 12 * 2);
    await expectAlone(mixed, opts, r);
  });

  it("auto picks per-sequence streams when the unified cache would be twice as wide (fast numerics)", async () => {
    // Streams are 256 cells; sequences of 20 + 24 = 44 cells: unified spans 44 cells a slot.
    const layoutOf = async (n: number) => {
      const prompts = Array.from({ length: n }, (_, i) => tokens(20, 100 + i));
      const r = await model.generate(prompts, {
        maxTokens: 24,
        temperature: 0,
        parallel: n,
        numerics: "fast",
        profile: true,
      });
      return r.profile!.layout;
    };
    expect(await layoutOf(4)).toBe("unified"); // 176 cells unified, 256 a stream
    expect(await layoutOf(16)).toBe("per-sequence"); // 704 cells unified
  });

  it("refuses an unknown layout and a contextSize too small for one stream, with what to do", async () => {
    const prompts = [tokens(100, 1), tokens(50, 2)];
    await expect(model.generate(prompts, { maxTokens: 8, kvLayout: "paged" as "auto" })).rejects.toThrow(
      /kvLayout must be "auto", "unified" or "per-sequence"/,
    );
    // 108 cells hold the longest sequence unified, but a stream is 256 cells.
    await expect(model.generate(prompts, { maxTokens: 8, contextSize: 200, kvLayout: "per-sequence" })).rejects.toThrow(
      /stream of 256 cells.*raise contextSize to at least 256 or use kvLayout "unified"/,
    );
    const [u] = await model.generate(prompts, { maxTokens: 8, temperature: 0, contextSize: 200, kvLayout: "unified" });
    const [a] = await model.generate(prompts, { maxTokens: 8, temperature: 0, contextSize: 200 });
    expect(Array.from(a!.tokens)).toEqual(Array.from(u!.tokens));
  });
});
