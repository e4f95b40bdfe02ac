// What the engine does with a model file without loading it for inference: llama.cpp's quantizer,
// and whether the training graph supports the model (its structure only, no weights read).
import { native, type NativeTrainability } from "./bindings.js";

/**
 * Writes `dst` as llama.cpp's llama_model_quantize does (`llama-quantize src dst TYPE`; Q4_K, Q5_K
 * are the _M mixes). `threads`: 0 or absent = all cores. Not atomic: write to a temporary name and rename.
 */
export function quantizeModel(
  src: string,
  dst: string,
  type: string,
  options: { threads?: number } = {},
): Promise<void> {
  if (typeof src !== "string" || typeof dst !== "string" || typeof type !== "string") {
    throw new TypeError("quantizeModel(src, dst, type): src, dst and type must be strings");
  }
  return native().quantizeModel(src, dst, type, options);
}

/** Whether the model at `path` can be trained in each mode: null when it can, else the reason. */
export function trainability(path: string): Promise<NativeTrainability> {
  if (typeof path !== "string" || path.length === 0)
    throw new TypeError("trainability(path): path must be a non-empty string");
  return native().trainability(path);
}
