// What the engine does with a model file without loading it for inference: llama.cpp's quantizer,
// and whether the training graph supports the model (its structure only, no weights read).
import { native, type NativeTrainability } from "./bindings.js";
import { inputFile, outputFile } from "../util/file-args.js";

/**
 * Writes `dst` as llama.cpp's llama_model_quantize does (`llama-quantize src dst TYPE`; Q4_K, Q5_K
 * are the _M mixes). `threads`: 0 or absent = the CPUs this process may use. `src` is checked as
 * loadModel checks a model; `dst` may not be `src` (the same file under any name), and is written
 * beside itself and renamed into place: whole or untouched, and a failure removes nothing but that
 * temporary file.
 */
export function quantizeModel(
  src: string,
  dst: string,
  type: string,
  options: { threads?: number } = {},
): Promise<void> {
  if (typeof type !== "string") throw new TypeError("quantizeModel(src, dst, type): type must be a string");
  inputFile(src, "quantizeModel", "model file");
  outputFile(dst, "quantizeModel", [src]);
  return native().quantizeModel(src, dst, type, options);
}

/** Whether the model at `path` can be trained in each mode: null when it can, else the reason. */
export function trainability(path: string): Promise<NativeTrainability> {
  inputFile(path, "trainability", "model file");
  return native().trainability(path);
}
