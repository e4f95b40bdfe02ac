// Generated models for benchmarks, cached under .cache/bench-models (same generator as init-model).
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { MODEL_GENERATOR_VERSION, initModel, type ModelPreset } from "../../src/gguf/init-model.js";
import { packageRoot } from "../../src/util/paths.js";

export function benchModelPath(preset: ModelPreset): string {
  const dir = join(packageRoot, ".cache", "bench-models");
  const path = join(dir, `${preset}-v${MODEL_GENERATOR_VERSION}.gguf`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    initModel({ preset, vocab: "llama-spm", seed: 1, out: path });
  }
  return path;
}
