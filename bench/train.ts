// LoRA training throughput vs forward-only scoring on the same model and tokens: tokens/s of
// trainer.step (forward + fused CE + backward + AdamW, rank 8 on all seven targets) vs tokens/s
// of the scorer over the same samples (prompt → continuation log-probs). Goal: training ≥ 0.25×
// scoring. Tiny and small presets.
import { loadModel, type ScoreRequest } from "../src/index.js";
import { createTrainer } from "../src/engine/trainer.js";
import { medianMs, newResult, type BenchResult, type SuiteFlags } from "./lib.js";
import { benchModelPath } from "./support/models.js";
import { randomTrainSamples } from "./support/samples.js";

export const description = "LoRA training tokens/s vs forward-only scoring tokens/s on the same model and tokens";
export const flags = {} as const satisfies SuiteFlags;

export async function run(): Promise<BenchResult> {
  const res = newResult("train");
  for (const preset of ["tiny", "small"] as const) {
    const model = await loadModel(benchModelPath(preset));
    const data = randomTrainSamples(8, 128, model.info.vocabSize);
    const tokens = data.reduce((a, s) => a + s.tokens.length, 0);
    const trainer = createTrainer(model.handle(), {
      lora: { rank: 8, alpha: 32 },
      microBatchTokens: 512,
      optimizer: { lr: 1e-4 },
    });
    const trainMs = await medianMs(() => trainer.step(data), 3, 1);
    const scorer = model.createScorer({ contextSize: 512, sequences: 8 });
    const reqs: ScoreRequest[] = data.map((d) => ({ prompt: d.tokens.slice(0, 64), continuation: d.tokens.slice(64) }));
    const scoreMs = await medianMs(() => scorer.score(reqs), 3, 1);
    res.results.push({ name: `${preset} LoRA training`, value: tokens / (trainMs / 1000), unit: "tokens/s" });
    res.results.push({ name: `${preset} scoring (forward only)`, value: tokens / (scoreMs / 1000), unit: "tokens/s" });
    res.ratios[`${preset} training/scoring throughput`] = scoreMs / trainMs;
    scorer.dispose();
    trainer.dispose();
    model.dispose();
  }
  return res;
}
