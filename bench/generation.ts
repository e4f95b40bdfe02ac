// Long batched generation at MSR-Rec's real lengths on the small preset: both sides' prompts of
// synthetic-catalog users (~300 tokens each), 256 new tokens per prompt, 32 and 64 prompts decoded
// together, in per-sequence KV streams vs one unified cache, measured in the same run. In the
// unified cache every decoded token attends over all slots' cells (masked), so a step's attention
// grows with parallel x total cells; in its own stream a token reads its own sequence only.
// Sampling at temperature 0.7 (top-k 40, top-p 0.95) keeps the random model going: an end of
// text is rare, and tokens/s counts the tokens actually generated.
// Measured with the model's default threads (one per core), then once more at 64 parallel with one
// thread: on a machine shared with other programs, llama.cpp's threads wait for each other at
// every graph node (a preempted thread stalls the rest), which swamps the short steps of
// per-sequence decoding; one thread measures the work each layout does.
import { loadModel, type Model } from "../src/engine/index.js";
import { benchUsers } from "./fusion.js";
import { newResult, type BenchResult, type SuiteFlags } from "./lib.js";
import { benchModelPath } from "./support/models.js";

export const description =
  "long batched generation (small preset, 32 and 64 parallel): per-sequence KV streams vs the unified cache";
export const flags = {} as const satisfies SuiteFlags;

const MAX_TOKENS = 256;

async function tokensPerSecond(
  model: Model,
  prompts: Int32Array[],
  parallel: number,
  kvLayout: "unified" | "per-sequence",
): Promise<number> {
  const t0 = performance.now();
  const rs = await model.generate(prompts, {
    maxTokens: MAX_TOKENS,
    temperature: 0.7,
    topK: 40,
    topP: 0.95,
    seed: 1,
    parallel,
    kvLayout,
  });
  const secs = (performance.now() - t0) / 1000;
  return rs.reduce((n, r) => n + r.tokens.length, 0) / secs;
}

export async function run(): Promise<BenchResult> {
  const result = newResult("generation");
  for (const [threads, sizes] of [
    [undefined, [32, 64]],
    [1, [64]],
  ] as const) {
    const model = await loadModel(benchModelPath("small"), threads ? { threads } : {});
    const users = await benchUsers(32);
    const tok = (p: string | Int32Array): Int32Array => (typeof p === "string" ? model.tokenize(p) : p);
    const prompts = users.flatMap((u) => [tok(u.kase.prompts.user), tok(u.kase.prompts.item)]);
    const meanPrompt = prompts.reduce((n, p) => n + p.length, 0) / prompts.length;
    if (!threads) result.results.push({ name: "small: mean prompt length", value: meanPrompt, unit: "tokens" });
    await model.generate(prompts.slice(0, 2), { maxTokens: 4 }); // warm-up: pages the weights in
    const t = threads ? `, ${threads} thread` : "";
    for (const parallel of sizes) {
      // One run each (a run is tens of seconds): the layouts alternate so drifting load hits both.
      const perSeq = await tokensPerSecond(model, prompts.slice(0, parallel), parallel, "per-sequence");
      const unified = await tokensPerSecond(model, prompts.slice(0, parallel), parallel, "unified");
      result.results.push(
        {
          name: `small: ${parallel} prompts x ${MAX_TOKENS} new tokens, ${parallel} parallel${t}, per-sequence KV streams`,
          value: perSeq,
          unit: "tokens/s",
        },
        {
          name: `small: ${parallel} prompts x ${MAX_TOKENS} new tokens, ${parallel} parallel${t}, unified KV cache`,
          value: unified,
          unit: "tokens/s",
        },
      );
      result.ratios[`small: per-sequence / unified generation, ${parallel} parallel${t}`] = perSeq / unified;
    }
    model.dispose();
  }
  return result;
}
