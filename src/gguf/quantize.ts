// Models of any weight type: float types are written by initModel; quantized ones are the F16
// model quantized by llama.cpp's own llama_model_quantize (the addon's quantizeModel), so the file
// is what `llama-quantize model-f16.gguf out.gguf TYPE` writes for a converted checkpoint (K types
// are the _M mixes, the kinds people download: Q4_K = Q4_K_M).
import { renameSync, rmSync } from "node:fs";
import { quantizeModel } from "../engine/model-files.js";
import { allowedCpus } from "../util/cpus.js";
import {
  WEIGHT_TYPES,
  initModel,
  isFloatWeightType,
  type InitModelOptions,
  type InitModelResult,
  type WeightType,
} from "./init-model.js";

export interface CreateModelOptions extends Omit<InitModelOptions, "weightType"> {
  /** Default F32. */
  weightType?: WeightType;
  /** Quantizer threads (default: the CPUs this process may use, see src/util/cpus.ts). */
  threads?: number;
}

/** initModel for every weight type (quantized types need the native addon). */
export async function createModel(opts: CreateModelOptions): Promise<InitModelResult> {
  const type = opts.weightType ?? "F32";
  if (!WEIGHT_TYPES.includes(type))
    throw new Error(`unknown weight type "${String(type)}"; choose one of ${WEIGHT_TYPES.join(", ")}`);
  if (isFloatWeightType(type)) return initModel({ ...opts, weightType: type });
  const tag = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const f16 = `${opts.out}.f16-${tag}`;
  const tmp = `${opts.out}.tmp-${tag}`;
  try {
    const r = initModel({ ...opts, weightType: "F16", out: f16 });
    await quantizeModel(f16, tmp, type, { threads: opts.threads ?? allowedCpus() });
    renameSync(tmp, opts.out);
    return { ...r, path: opts.out };
  } finally {
    rmSync(f16, { force: true });
    rmSync(tmp, { force: true });
  }
}
