// Generated models for benchmarks, cached under .cache/bench-models (same generator as init-model).
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { native } from "../../src/engine/bindings.js";
import {
  MODEL_GENERATOR_VERSION,
  MODEL_PRESETS,
  defaultVocab,
  initModel,
  type LlamaHparams,
  type ModelPreset,
} from "../../src/gguf/init-model.js";
import { packageRoot } from "../../src/util/paths.js";

const dir = join(packageRoot, ".cache", "bench-models");

/** A width/depth where the GPU has real work: 1024 wide, 8 layers, about 160M parameters (F32). */
export const MEDIUM_OVERRIDES: Partial<LlamaHparams> = {
  embeddingLength: 1024,
  blockCount: 8,
  feedForwardLength: 2816,
  headCount: 16,
  headCountKv: 8,
};

export function benchModelPath(preset: ModelPreset | "medium"): string {
  const path = join(dir, `${preset}-v${MODEL_GENERATOR_VERSION}.gguf`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    if (preset === "medium")
      initModel({ preset: "small", overrides: MEDIUM_OVERRIDES, vocab: "llama-spm", seed: 1, out: path });
    else initModel({ preset, vocab: "llama-spm", seed: 1, out: path });
  }
  return path;
}

/** An init-model preset named by a --preset flag; throws listing the presets when it is none. */
export function presetNamed(name: string): ModelPreset {
  const presets = Object.keys(MODEL_PRESETS) as ModelPreset[];
  if (!presets.includes(name as ModelPreset))
    throw new Error(`--preset: "${name}" is not one of ${presets.join(", ")}`);
  return name as ModelPreset;
}

/**
 * The preset with its default vocabulary in F32 or F16 (written by init-model), or quantized from
 * the F16 file by llama.cpp's quantizer (on `threads` threads).
 */
export async function quantizedModelPath(
  preset: ModelPreset,
  type: "F32" | "F16" | "Q8_0" | "Q4_0",
  threads: number,
): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const path = (t: string) => join(dir, `${preset}-${t.toLowerCase()}-v${MODEL_GENERATOR_VERSION}.gguf`);
  const float = type === "F32" ? "F32" : "F16";
  if (!existsSync(path(float)))
    initModel({ preset, vocab: defaultVocab(preset), seed: 1, out: path(float), weightType: float });
  if (type !== float && !existsSync(path(type))) {
    const tmp = `${path(type)}.tmp-${process.pid}`;
    await native().quantizeModel(path(float), tmp, type, { threads });
    renameSync(tmp, path(type));
  }
  return path(type);
}
