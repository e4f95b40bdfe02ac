// Converter-layout fixtures for the trainer's architecture and weight-type tests: the tiny-llama3
// (Llama 3.2 layout: 128k BPE vocab, GQA, rope_freqs, tied output), tiny-qwen2 (Q/K/V biases,
// Qwen2 vocab) and tiny-qwen3 (Q/K norms, heads x head size != width, tied) presets in any
// weight type, plus models llama.cpp loads but the trainer must refuse. Cached under
// .cache/test-models/ like support/models.ts; writes are atomic.
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  MODEL_GENERATOR_VERSION,
  defaultVocab,
  initModel,
  type ModelPreset,
  type WeightType,
} from "../../src/gguf/init-model.js";
import { createModel } from "../../src/gguf/quantize.js";
import { readGguf, readTensorBytes } from "../../src/gguf/reader.js";
import { GGML_TYPE_F32 } from "../../src/gguf/types.js";
import { gguf, writeGguf, type GgufTensorInput } from "../../src/gguf/writer.js";
import { llamaCppSourceDir } from "../../src/util/paths.js";
import { testModelsDir } from "./models.js";

export type ArchPreset = Extract<ModelPreset, "tiny-llama3" | "tiny-qwen2" | "tiny-qwen3">;

const pending = new Map<string, Promise<string>>();

/** A tiny converter-layout model of the given weight type (quantized ones by llama.cpp's quantizer). */
export function archModelPath(preset: ArchPreset, weightType: WeightType = "F32", seed = 0): Promise<string> {
  const vocab = defaultVocab(preset);
  const vocabBytes = statSync(join(llamaCppSourceDir(), "models", `ggml-vocab-${vocab}.gguf`)).size;
  const path = join(
    testModelsDir,
    `model-v${MODEL_GENERATOR_VERSION}-${preset}-${vocab}${vocabBytes}-s${seed}-${weightType.toLowerCase()}.gguf`,
  );
  if (existsSync(path)) return Promise.resolve(path);
  let p = pending.get(path);
  if (!p) {
    mkdirSync(testModelsDir, { recursive: true });
    p = createModel({ preset, vocab, seed, out: path, weightType, threads: 2 }).then(() => path);
    pending.set(path, p);
  }
  return p;
}

/**
 * Models llama.cpp loads that the trainer refuses, made from the tiny LLaMA layout: `fused` keeps
 * Q, K and V in one attn_qkv weight (llama.cpp's llama loader accepts that; the layers then have
 * no attn_q), `gemma` is the same weights labelled as Gemma (tied output, no output.weight).
 */
export function refusedModelPath(kind: "fused" | "gemma"): string {
  const path = join(testModelsDir, `model-v${MODEL_GENERATOR_VERSION}-refused-${kind}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(testModelsDir, { recursive: true });
  const src = `${path}.src-${process.pid}.gguf`;
  initModel({
    preset: "tiny",
    vocab: "llama-spm",
    seed: 4,
    out: src,
    ...(kind === "gemma" ? { overrides: { tiedOutput: true } } : {}),
  });
  const file = readGguf(src);
  const bytes = (name: string) =>
    readTensorBytes(
      file,
      file.tensors.find((t) => t.name === name)!,
    );
  const tensors: GgufTensorInput[] = [];
  for (const t of file.tensors) {
    const m = /^blk\.(\d+)\.attn_([qkv])\.weight$/.exec(t.name);
    if (kind === "fused" && m) {
      if (m[2] !== "q") continue;
      const [q, k, v] = ["q", "k", "v"].map((x) => bytes(`blk.${m[1]}.attn_${x}.weight`));
      const rows = (b: Uint8Array) => b.length / 4 / t.shape[0]!;
      const raw = new Uint8Array(q!.length + k!.length + v!.length);
      raw.set(q!, 0);
      raw.set(k!, q!.length);
      raw.set(v!, q!.length + k!.length);
      tensors.push({
        name: `blk.${m[1]}.attn_qkv.weight`,
        shape: [t.shape[0]!, rows(q!) + rows(k!) + rows(v!)],
        ggmlType: GGML_TYPE_F32,
        raw,
      });
      continue;
    }
    tensors.push({ name: t.name, shape: t.shape, ggmlType: t.type, raw: bytes(t.name) });
  }
  const meta = new Map(file.metadata);
  if (kind === "gemma") {
    for (const [k, v] of file.metadata) {
      if (!k.startsWith("llama.")) continue;
      meta.delete(k);
      meta.set(`gemma.${k.slice(6)}`, v);
    }
    meta.set("general.architecture", gguf.str("gemma"));
  }
  writeGguf(path, meta, tensors);
  rmSync(src, { force: true });
  return path;
}
