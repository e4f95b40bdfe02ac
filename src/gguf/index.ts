// Public surface of msr-rec's GGUF support: read/write GGUF v3, generate LLaMA models with a real
// tokenizer, and write/read LoRA adapters in llama.cpp's layout.
export {
  readGguf,
  readTensorBytes,
  readTensorF32,
  findTensor,
  metaNumber,
  metaString,
  metaArrayLength,
  GgufFormatError,
  type GgufFile,
} from "./reader.js";
export { writeGguf, gguf, type GgufTensorInput } from "./writer.js";
export { f32ToF16Bits, f16BitsToF32, f32ArrayToF16, f16ArrayToF32, bf16ArrayToF32 } from "./f16.js";
export {
  GGML_TYPES,
  ggmlTypeName,
  ggmlTensorBytes,
  type GgufMetadata,
  type GgufValue,
  type GgufTensorInfo,
  type GgufScalarType,
} from "./types.js";
export { createModel, type CreateModelOptions } from "./quantize.js";
export {
  initModel,
  llamaTensorShapes,
  llama3RopeFactors,
  defaultVocab,
  MODEL_ARCHS,
  WEIGHT_TYPES,
  readBundledTokenizer,
  MODEL_PRESETS,
  MODEL_GENERATOR_VERSION,
  VOCAB_NAMES,
  type InitModelOptions,
  type InitModelResult,
  type LlamaHparams,
  type ModelArch,
  type WeightType,
  type ModelPreset,
  type VocabName,
} from "./init-model.js";
export {
  writeLoraAdapter,
  readLoraAdapter,
  randomLoraAdapter,
  randomLoraTensors,
  loraTargetWeights,
  parseLoraTargets,
  isLoraAdapter,
  LORA_TARGETS,
  ALL_LORA_TARGETS,
  type LoraTarget,
  type LoraTensor,
  type LoraAdapterSpec,
  type LoraAdapterInfo,
  type RandomLoraOptions,
} from "./lora.js";
