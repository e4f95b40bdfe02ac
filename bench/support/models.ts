// Generated models for benchmarks, cached under .cache/bench-models (same generator as init-model).
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { MODEL_GENERATOR_VERSION, initModel, type LlamaHparams, type ModelPreset } from "../../src/gguf/init-model.js";
import { packageRoot } from "../../src/util/paths.js";

/** A width/depth where the GPU has real work: 1024 wide, 8 layers, about 160M parameters (F32). */
export const MEDIUM_OVERRIDES: Partial<LlamaHparams> = { embeddingLength: 1024, blockCount: 8, feedForwardLength: 2816, headCount: 16, headCountKv: 8 };

export function benchModelPath(preset: ModelPreset | "medium"): string {
  const dir = join(packageRoot, ".cache", "bench-models");
  const path = join(dir, `${preset}-v${MODEL_GENERATOR_VERSION}.gguf`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    if (preset === "medium") initModel({ preset: "small", overrides: MEDIUM_OVERRIDES, vocab: "llama-spm", seed: 1, out: path });
    else initModel({ preset, vocab: "llama-spm", seed: 1, out: path });
  }
  return path;
}
