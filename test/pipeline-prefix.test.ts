// Inference inputs are the training layout, token for token, and PPL is computed on the tokens
// that were generated. A recording engine (the tiny model's real tokenizer, scripted outputs)
// captures every prompt the infer stage generates from and every request it scores; the
// expectations come from the trainer's own sample tokenization (its segment roles) and from
// byte-level token sequences built here, never from the helpers under test.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { loadModel, type Model } from "../src/engine/index.js";
import { presetConfig, type RunConfig } from "../src/pipeline/config.js";
import { inferVariant, type InferenceEngine, type TestCase } from "../src/pipeline/stages/infer.js";
import { inferVariants, type InferVariant } from "../src/pipeline/variants.js";
import { runLayout } from "../src/run/layout.js";
import { tokenizeSample } from "../src/train/samples.js";
import { Segment } from "../src/engine/train-batch.js";
import type { GeneratedText, GenerateOptions, Prompt, ScoreRequest } from "../src/infer/generate.js";
import { tinyModelPath } from "./support/models.js";
import { addonMissing } from "./support/addon.js";

const missing = addonMissing("inference-layout tests");

const TITLES = ["Apex Phone", "Zen Mat", "Sonix Case"];

describe.skipIf(missing !== null)("inference inputs follow the training layout", () => {
  let model: Model;
  let dir: string;
  let c: RunConfig;
  // The llama SPM vocabulary's byte tokens <0x00>..<0xFF> are ids 3..258: text spelled byte by
  // byte is a token sequence the tokenizer itself would never produce for it.
  const bytes = (s: string) => Int32Array.from(Buffer.from(s, "utf8"), (b) => 3 + b);

  beforeAll(async () => {
    model = await loadModel(tinyModelPath(), { vocabOnly: true });
    expect(model.detokenize(bytes("Ab\n["))).toBe("Ab\n[");
    dir = mkdtempSync(join(tmpdir(), "msr-prefix-"));
    c = presetConfig("tiny", { runDir: dir });
    for (const name of ["msr", "wo-reason", "tallrec"]) {
      const p = runLayout(dir).adapter(name);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, "");
    }
  });
  afterAll(() => {
    model?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** An engine that answers every free generation with `output` and records what it was asked. */
  function recordingEngine(output: Int32Array) {
    const generated: Prompt[] = [];
    const constrained: Prompt[] = [];
    const scored: ScoreRequest[] = [];
    const engine: InferenceEngine<string> = {
      tokenize: (t, o) => model.tokenize(t, o),
      detokenize: (t) => model.detokenize(t),
      adapter: async (p) => p,
      generate: async (prompts: Prompt[], o: GenerateOptions<string>): Promise<GeneratedText[]> => {
        const isConstrained = o.grammar !== undefined || o.grammars !== undefined;
        if (o.grammars) expect(o.grammars).toHaveLength(prompts.length);
        (isConstrained ? constrained : generated).push(...prompts);
        const out = isConstrained ? bytes(` ${TITLES[0]}`) : output;
        return prompts.map(() => ({ text: model.detokenize(out), tokens: out, finishReason: "eos" }));
      },
      scorer: {
        score: async (reqs) => {
          scored.push(...reqs);
          return reqs.map(() => ({ logprob: -1, ppl: Math.E, tokenLogprobs: new Float32Array([-1]) }));
        },
      },
    };
    return { engine, generated, constrained, scored };
  }

  const kase: TestCase = {
    user: "u1",
    position: 0,
    prompts: { user: 'User side prompt about "Apex Phone".', item: "Item side prompt." },
    full: "Full chain prompt.",
    tallrec: "TALLRec prompt.\n### Response:\n",
    candidateIds: ["a", "b", "c"],
    candidateTitles: TITLES,
    targetIndex: 0,
  };

  /** The prompt tokens of a trained sample and the target tokens that carry no loss (the trainer's roles). */
  function trainedInput(prompt: string, behaviorOnly: boolean): Int32Array {
    const tok = { tokenize: (t: string, o?: { addBos?: boolean }) => model.tokenize(t, o), eosToken: 2 };
    const s = tokenizeSample(tok, {
      prompt,
      reasoning: behaviorOnly ? "" : "Step 4 - Summary: the phone fits.",
      recommendation: TITLES[1]!,
    });
    const firstLoss = s.segments.findIndex((g) => g !== Segment.prompt);
    return s.tokens.slice(0, firstLoss);
  }

  const variant = (name: string): InferVariant => inferVariants(c).find((v) => v.name === name)!;

  it("every variant generates from exactly the prefix it was trained to continue", async () => {
    const cases: Array<[string, boolean | null]> = [
      ["msr", false],
      ["wo-reason", true],
      ["msr-full", false],
      ["base-zero-shot", null],
      ["tallrec", null],
    ];
    for (const [name, behaviorOnly] of cases) {
      const v = variant(name);
      const { engine, generated } = recordingEngine(bytes("\n[reasoning_end] Apex Phone"));
      await inferVariant(c, engine, v, [kase], true);
      // TALLRec was trained on the title right after its own prompt: it gets that prompt, bare.
      const texts =
        v.mode === "bidirectional"
          ? [kase.prompts.user, kase.prompts.item]
          : [name === "tallrec" ? kase.tallrec : kase.full];
      expect(generated, name).toHaveLength(texts.length);
      generated.forEach((p, i) => {
        if (behaviorOnly === null) expect(p, name).toBe(texts[i]);
        else
          expect(Array.from(p as Int32Array), name).toEqual(Array.from(trainedInput(texts[i] as string, behaviorOnly)));
      });
    }
    // The w/o reason model was trained with the newline after the start marker on its input side.
    const { engine, generated } = recordingEngine(bytes("[reasoning_end] Apex Phone"));
    await inferVariant(c, engine, variant("wo-reason"), [kase], true);
    const bare = model.tokenize(kase.prompts.user as string, { addBos: true });
    expect(model.detokenize((generated[0] as Int32Array).slice(bare.length)).trimStart()).toBe("[reasoning_start]\n");
  });

  it("PPL scores the generated reasoning tokens, after the prompt and what came before them", async () => {
    const out = bytes("\nStep 4 - Summary: Apex Phone fits.\n[reasoning_end] Apex Phone");
    const { engine, scored } = recordingEngine(out);
    const [rec] = await inferVariant(c, engine, variant("msr"), [kase], true);
    // One call: both sides' reasonings, then both sides' whole outputs (the literal Eq. 3).
    expect(scored).toHaveLength(4);
    const prefix = trainedInput(kase.prompts.user as string, false);
    // Reasoning = bytes 1 .. before "\n[reasoning_end]"; the leading newline conditions it.
    const reasoningEnd = 1 + "Step 4 - Summary: Apex Phone fits.".length;
    expect(Array.from(scored[0]!.continuation as Int32Array)).toEqual(Array.from(out.slice(1, reasoningEnd)));
    expect(Array.from(scored[0]!.prompt as Int32Array)).toEqual([...prefix, ...out.slice(0, 1)]);
    expect(rec!.userSide!.tokenIds).toEqual(Array.from(out));
    expect(rec!.userSide!.ppl).toBeCloseTo(Math.E, 12);
    // Eq. 3 as written: y = every generated token (reasoning and answer) after the same prompt.
    expect(Array.from(scored[2]!.continuation as Int32Array)).toEqual(Array.from(out));
    expect(Array.from(scored[2]!.prompt as Int32Array)).toEqual(Array.from(prefix));
    expect(Array.from(scored[3]!.prompt as Int32Array)).toEqual(
      Array.from(trainedInput(kase.prompts.item as string, false)),
    );
    expect(rec!.userSide!.pplOutput).toBeCloseTo(Math.E, 12);
    expect(rec!.fusedEq3).toEqual({ side: "user", choice: "a", case: "agree" });
  });

  it("scores whole outputs for the main variant only", async () => {
    const out = bytes("\nStep 4 - Summary: Apex Phone fits.\n[reasoning_end] Apex Phone");
    const { engine, scored } = recordingEngine(out);
    const [rec] = await inferVariant(c, engine, variant("wo-reason"), [kase], true);
    expect(scored).toHaveLength(2);
    expect(rec!.fusedEq3).toBeUndefined();
  });

  it("the constrained answer continues the generated tokens through [reasoning_end]", async () => {
    const withMarker = bytes("\nStep 4 - Summary: Apex Phone fits.\n[reasoning_end] Zen Mat");
    const a = recordingEngine(withMarker);
    await inferVariant(c, a.engine, variant("msr"), [kase], true);
    const prefix = trainedInput(kase.prompts.user as string, false);
    const upToMarker = withMarker.slice(0, "\nStep 4 - Summary: Apex Phone fits.\n[reasoning_end]".length);
    expect(Array.from(a.constrained[0] as Int32Array)).toEqual([...prefix, ...upToMarker]);

    // Cut off before the marker: the generated reasoning, then the end marker as training
    // tokenizes it (found verbatim in a trained sample, right after its reasoning).
    const cut = bytes("\nStep 4 - Summary: Apex Phone fits.  ");
    const b = recordingEngine(cut);
    await inferVariant(c, b.engine, variant("msr"), [kase], true);
    const got = (b.constrained[0] as Int32Array).slice(prefix.length);
    const reasoning = cut.slice(0, "\nStep 4 - Summary: Apex Phone fits.".length);
    expect(Array.from(got.slice(0, reasoning.length))).toEqual(Array.from(reasoning));
    const tail = Array.from(got.slice(reasoning.length));
    expect(model.detokenize(Int32Array.from(tail))).toBe("\n[reasoning_end]");
    const tok = { tokenize: (t: string, o?: { addBos?: boolean }) => model.tokenize(t, o), eosToken: 2 };
    const trained = tokenizeSample(tok, {
      prompt: "p",
      reasoning: "Step 4 - Summary: it fits.",
      recommendation: "Zen Mat",
    });
    const firstRec = trained.segments.indexOf(Segment.recommendation);
    // The newline is the reasoning's last token and [reasoning_end] opens y_rec.
    expect(Array.from(trained.tokens.slice(firstRec - 1, firstRec - 1 + tail.length))).toEqual(tail);
  });

  it("a shard samples every user with the seed the unsharded run gives it", async () => {
    // Prompt j of one generate call is sampled with seed + j: record which seed each prompt got.
    const seeds = async (cases: TestCase[]) => {
      const got = new Map<string, number>();
      const { engine } = recordingEngine(bytes("[reasoning_end] Apex Phone"));
      const inner = engine.generate;
      engine.generate = async (prompts, o) => {
        if (!o.grammar && !o.grammars)
          prompts.forEach((p, j) => got.set(model.detokenize(p as Int32Array), o.seed + j));
        return inner(prompts, o);
      };
      await inferVariant(c, engine, variant("msr"), cases, true);
      return got;
    };
    // 11 users (more than one generate batch of 8 prompts), each with its own prompts.
    const cases: TestCase[] = Array.from({ length: 11 }, (_, k) => ({
      ...kase,
      user: `u${k}`,
      position: k,
      prompts: { user: `User ${k} prompt.`, item: `Item ${k} prompt.` },
    }));
    const whole = await seeds(cases);
    expect(new Set(whole.values()).size).toBe(22);
    for (const [from, to] of [
      [0, 4],
      [4, 9],
      [9, 11],
    ]) {
      const part = await seeds(cases.slice(from, to));
      expect(part.size).toBe(2 * (to - from));
      for (const [prompt, seed] of part) expect(seed, prompt).toBe(whole.get(prompt));
    }
  });
});
