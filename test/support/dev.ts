// The development hooks (devAddon(), native/dev) called on the public wrappers the tests hold: a
// scorer's full logits, a trainer's graph logits, llama_decode's reference logits and gradients.
import { devAddon, type NativeModel, type NativeTrainDevSettings, type TokenArray } from "../../src/engine/bindings.js";
import { toNativeLora, type LoraChoice } from "../../src/engine/lora.js";
import type { Scorer } from "../../src/engine/scorer.js";
import { openTrainerWith, type Trainer, type TrainerOptions } from "../../src/engine/trainer.js";

/** Full [tokens × vocab] logits of one sequence at every position, row-major: the naive reference of the scorer. */
export function scorerLogits(
  scorer: Scorer,
  tokens: TokenArray,
  options: { lora?: readonly LoraChoice[] } = {},
): Promise<Float32Array> {
  return devAddon().scorerLogits(scorer.handle(), tokens, { lora: toNativeLora(options.lora) });
}

/** The training graph's logits for one sequence, [tokens × vocab] row-major. */
export function trainingLogits(trainer: Trainer, tokens: TokenArray): Promise<Float32Array> {
  return devAddon().trainerLogits(trainer.handle(), tokens);
}

/** llama.cpp's own logits (llama_decode with the trainer's current adapter) for the same tokens. */
export function referenceLogits(trainer: Trainer, tokens: TokenArray): Promise<Float32Array> {
  return devAddon().trainerReferenceLogits(trainer.handle(), tokens);
}

/** A trainer whose session has development settings (e.g. the GPU's transposed backward on the CPU). */
export function openDevTrainer(
  model: NativeModel,
  options: TrainerOptions,
  settings: NativeTrainDevSettings,
): Promise<Trainer> {
  return openTrainerWith(model, options, (m, o) => devAddon().buildTrainSession(m, o, settings));
}

/** The gradient the last step accumulated for one parameter (all of it when that step did not update). */
export function gradient(trainer: Trainer, name: string): Float32Array {
  return devAddon().trainerGrad(trainer.handle(), name);
}
