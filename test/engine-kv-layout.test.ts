// The scorer's KV layouts (kvLayout: unified, per-sequence, auto) give the same log-probs: with and
// without shared prompts, with more requests than sequences or streams, and with requests that
// nearly fill a per-sequence stream. Bit for bit: the scorer's default numerics are invariant.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model, type ScoreRequest, type ScoreResult } from "../src/index.js";
import { scorerLogits } from "./support/dev.js";
import { expectClose } from "./support/reference.js";
import { tinyModelPath } from "./support/models.js";

const TOL = 0;
let model: Model;

beforeAll(async () => {
  model = await loadModel(tinyModelPath(), { threads: 2 });
});
afterAll(() => model?.dispose());

function flat(rs: ScoreResult[]): number[] {
  return rs.flatMap((r) => Array.from(r.tokenLogprobs));
}

/** Deterministic token ids in [1, vocab). */
function tokens(n: number, seed: number): Int32Array {
  const V = model.info.vocabSize;
  let x = seed * 2654435761 + 12345;
  return Int32Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return 1 + (x % (V - 1));
  });
}

async function scoreWith(
  kvLayout: "auto" | "unified" | "per-sequence",
  reqs: ScoreRequest[],
  opts: { contextSize: number; sequences?: number; batchSize?: number },
): Promise<ScoreResult[]> {
  const s = model.createScorer({ ...opts, kvLayout });
  try {
    return await s.score(reqs);
  } finally {
    s.dispose();
  }
}

async function expectSameAcrossLayouts(
  reqs: ScoreRequest[],
  opts: { contextSize: number; sequences?: number; batchSize?: number },
): Promise<void> {
  const unified = flat(await scoreWith("unified", reqs, opts));
  expectClose(flat(await scoreWith("per-sequence", reqs, opts)), unified, TOL);
  expectClose(flat(await scoreWith("auto", reqs, opts)), unified, TOL);
}

describe("scorer KV layouts", () => {
  it("agree on requests with distinct prompts of varied lengths, more requests than sequences", async () => {
    const reqs = Array.from({ length: 11 }, (_, i) => ({
      prompt: tokens(20 + 13 * i, i),
      continuation: tokens(5 + 17 * i, 100 + i),
    }));
    await expectSameAcrossLayouts(reqs, { contextSize: 1024, sequences: 4 });
    // A small batch: sequences are decoded in pieces of batch / streams tokens.
    await expectSameAcrossLayouts(reqs, { contextSize: 2048, sequences: 8, batchSize: 96 });
  });

  it("agree on requests that share prompts (per-sequence evaluates each member's prompt itself)", async () => {
    const prompts = [tokens(40, 1), tokens(90, 2), tokens(7, 3)];
    const reqs = prompts.flatMap((prompt, p) =>
      Array.from({ length: 5 }, (_, k) => ({ prompt, continuation: tokens(3 + 11 * k, 10 * p + k) })),
    );
    await expectSameAcrossLayouts(reqs, { contextSize: 1024, sequences: 4 });
  });

  it("agree on requests that nearly fill a stream, more of them than streams", async () => {
    // 255 and 511 cells: streams of 256 and 512 cells (the tiny model's training context is 512).
    const near256 = Array.from({ length: 5 }, (_, i) => ({
      prompt: tokens(100 + i, 200 + i),
      continuation: tokens(156 - i, 300 + i),
    }));
    const near512 = Array.from({ length: 3 }, (_, i) => ({
      prompt: tokens(300, 400 + i),
      continuation: tokens(212 - 2 * i, 500 + i),
    }));
    await expectSameAcrossLayouts(near256, { contextSize: 1024, sequences: 8 });
    await expectSameAcrossLayouts([...near256, ...near512], { contextSize: 1024, sequences: 8, batchSize: 512 });
  });

  it("agree when one auto scorer switches layouts between calls", async () => {
    const distinct = Array.from({ length: 6 }, (_, i) => ({
      prompt: tokens(30 + i, 600 + i),
      continuation: tokens(20 + 3 * i, 700 + i),
    }));
    const shared = distinct.map((r, i) => ({ prompt: distinct[0]!.prompt, continuation: tokens(10 + i, 800 + i) }));
    const long = [{ prompt: tokens(300, 900), continuation: tokens(150, 901) }, ...distinct];
    const auto = model.createScorer({ contextSize: 1024, sequences: 8 });
    const got: number[][] = [];
    for (const reqs of [distinct, shared, distinct, long, distinct.slice(0, 1), shared])
      got.push(flat(await auto.score(reqs)));
    // Full logits go through the unified context: the scorer switches back for them.
    expect((await scorerLogits(auto, distinct[0]!.prompt)).length).toBe(
      distinct[0]!.prompt.length * model.info.vocabSize,
    );
    got.push(flat(await auto.score(distinct)));
    auto.dispose();
    const want = [distinct, shared, distinct, long, distinct.slice(0, 1), shared, distinct];
    for (let i = 0; i < want.length; i++)
      expectClose(got[i]!, flat(await scoreWith("unified", want[i]!, { contextSize: 1024, sequences: 8 })), TOL);
  });

  it("reports the layout option and refuses an unknown one", () => {
    const s = model.createScorer({ contextSize: 512 });
    expect(s.config.kvLayout).toBe("auto");
    s.dispose();
    const p = model.createScorer({ contextSize: 512, kvLayout: "per-sequence" });
    expect(p.config.kvLayout).toBe("per-sequence");
    p.dispose();
    expect(() => model.createScorer({ contextSize: 512, kvLayout: "paged" as "auto" })).toThrow(
      /kvLayout must be "auto", "unified" or "per-sequence"/,
    );
  });
});
