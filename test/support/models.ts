// Generated models and adapters shared by the engine tests. Each file is made once and cached
// under .cache/test-models/, named by generator version + arguments; writes are atomic
// (temp + rename), so test files running in parallel may race to create one but never read a
// partial file.
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  MODEL_GENERATOR_VERSION,
  MODEL_PRESETS,
  initModel,
  llamaTensorShapes,
  type ModelPreset,
  type VocabName,
} from "../../src/gguf/init-model.js";
import {
  ALL_LORA_TARGETS,
  loraTargetWeights,
  randomLoraAdapter,
  randomLoraTensors,
  writeLoraAdapter,
  type LoraTarget,
} from "../../src/gguf/lora.js";
import { llamaCppSourceDir, packageRoot } from "../../src/util/paths.js";

/** Bump when the random-adapter recipe below changes. */
const LORA_RECIPE_VERSION = 1;

export const testModelsDir = join(packageRoot, ".cache", "test-models");

function cached(name: string, make: (path: string) => void): string {
  const path = join(testModelsDir, name);
  if (!existsSync(path)) {
    mkdirSync(testModelsDir, { recursive: true });
    make(path);
  }
  return path;
}

/** A generated model (default: tiny preset, SentencePiece 32k vocab, seed 0). */
export function testModelPath(
  opts: { preset?: ModelPreset; vocab?: VocabName; seed?: number; weightType?: "F32" | "F16" } = {},
): string {
  const { preset = "tiny", vocab = "llama-spm", seed = 0, weightType = "F32" } = opts;
  // the vocab file's size stands in for its version: a different llama.cpp bundle makes a new model
  const vocabBytes = statSync(join(llamaCppSourceDir(), "models", `ggml-vocab-${vocab}.gguf`)).size;
  const suffix = weightType === "F32" ? "" : `-${weightType.toLowerCase()}`;
  return cached(`model-v${MODEL_GENERATOR_VERSION}-${preset}-${vocab}${vocabBytes}-s${seed}${suffix}.gguf`, (out) =>
    initModel({ preset, vocab, seed, out, weightType }),
  );
}

/** The tiny LLaMA model (n_embd 64, 2 layers, 4 heads / 2 KV heads, llama-spm vocab). */
export function tinyModelPath(): string {
  return testModelPath();
}

export interface TinyLoraOptions {
  rank?: number;
  alpha?: number;
  targets?: readonly LoraTarget[];
  /** Standard deviation of B; the default is large enough to change the tiny model's outputs. */
  scale?: number;
}

/** A random LoRA adapter for tinyModelPath(); different seeds give different adapters. */
export function tinyLoraPath(seed = 1, opts: TinyLoraOptions = {}): string {
  const { rank = 4, alpha = 8, targets = ALL_LORA_TARGETS, scale = 0.05 } = opts;
  const model = tinyModelPath();
  const name = `lora-v${MODEL_GENERATOR_VERSION}.${LORA_RECIPE_VERSION}-tiny-r${rank}-a${alpha}-${targets.join("_")}-sc${scale}-s${seed}.gguf`;
  return cached(name, (out) => randomLoraAdapter(model, { rank, alpha, targets, seed, scale, out }));
}

/** An adapter shaped for a tiny model of a different width (n_embd 96), for mismatch errors. */
export function otherModelLoraPath(): string {
  const name = `lora-v${MODEL_GENERATOR_VERSION}.${LORA_RECIPE_VERSION}-other-width96.gguf`;
  return cached(name, (out) => {
    const shapes = llamaTensorShapes(
      { ...MODEL_PRESETS.tiny, embeddingLength: 96, headCount: 4, headCountKv: 2 },
      32000,
    );
    const weights = loraTargetWeights(shapes, ["q", "v"]);
    writeLoraAdapter(out, {
      alpha: 8,
      rank: 4,
      tensors: randomLoraTensors(weights, { rank: 4, seed: 7, scale: 0.05 }),
    });
  });
}
