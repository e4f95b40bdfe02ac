// Starts a LoRA trainer from an adapter file (the SFT adapter a policy-gradient run refines): the
// file's tensors into the trainer's parameters, after checking that both have the same rank,
// alpha and adapted weights.
import type { Trainer } from "../engine/trainer.js";
import { readLoraAdapter } from "../gguf/lora.js";
import { readTensorF32 } from "../gguf/reader.js";

/** Sets every LoRA tensor of `trainer` from the adapter at `path` (live adapters follow). */
export async function loadAdapterWeights(trainer: Trainer, path: string): Promise<void> {
  const info = readLoraAdapter(path);
  const mine = trainer.info;
  if (mine.mode !== "lora")
    throw new Error("loadAdapterWeights: this trainer trains the full model; it has no LoRA tensors");
  if (info.rank !== mine.rank || info.alpha !== mine.loraAlpha)
    throw new Error(
      `loadAdapterWeights: ${path} has rank ${info.rank} and alpha ${info.alpha}, this trainer rank ${mine.rank} and alpha ${mine.loraAlpha}; create the trainer with the adapter's (readLoraAdapter(path))`,
    );
  const names = trainer.paramNames();
  const inFile = new Set(info.file.tensors.map((t) => t.name));
  const differ = [...names.filter((n) => !inFile.has(n)), ...[...inFile].filter((n) => !names.includes(n))];
  if (differ.length > 0)
    throw new Error(
      `loadAdapterWeights: ${path} adapts other weights than this trainer (e.g. ${differ[0]}); create the trainer with the adapter's targets (${info.targets.join(",")})`,
    );
  await trainer.setParams(new Map(names.map((n) => [n, readTensorF32(info.file, n)])));
}
