// `msr-rec init-model`: writes a LLaMA-architecture GGUF with random weights and a real tokenizer
// (tiny for tests, small for the demo). The work is in src/gguf/init-model.ts.
import type { Command } from "commander";
import { statSync } from "node:fs";
import { MODEL_PRESETS, VOCAB_NAMES, initModel, type ModelPreset, type VocabName } from "../../gguf/init-model.js";

export interface InitModelCliOptions {
  preset: string;
  vocab: string;
  seed: string | number;
  out: string;
  weightType?: string;
}

/** Validates the CLI's strings, generates the model and reports what it wrote. */
export async function runInitModel(opts: InitModelCliOptions, log: (line: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<void> {
  if (!(opts.preset in MODEL_PRESETS)) throw new Error(`--preset must be one of ${Object.keys(MODEL_PRESETS).join(", ")}, got "${opts.preset}"`);
  if (!VOCAB_NAMES.includes(opts.vocab as VocabName)) throw new Error(`--vocab must be one of ${VOCAB_NAMES.join(", ")}, got "${opts.vocab}"`);
  const seed = typeof opts.seed === "number" ? opts.seed : /^\d+$/.test(opts.seed) ? Number(opts.seed) : NaN;
  if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be a non-negative integer, got "${opts.seed}"`);
  if (!opts.out) throw new Error("--out is required: the .gguf file to write");
  const weightType = opts.weightType ?? "F32";
  if (weightType !== "F32" && weightType !== "F16") throw new Error(`--weight-type must be F32 or F16, got "${weightType}"`);
  const t0 = performance.now();
  const res = initModel({ preset: opts.preset as ModelPreset, vocab: opts.vocab as VocabName, seed, out: opts.out, weightType });
  const mb = statSync(res.path).size / 2 ** 20;
  log(
    `wrote ${res.path}: ${opts.preset} LLaMA, ${res.parameterCount.toLocaleString("en-US")} parameters, vocab ${opts.vocab} (${res.vocabSize}), ` +
      `${mb.toFixed(1)} MiB in ${((performance.now() - t0) / 1000).toFixed(2)} s`,
  );
}

export function register(program: Command): void {
  program
    .command("init-model")
    .description("write a LLaMA GGUF with deterministic random weights and a real llama.cpp tokenizer")
    .option("--preset <name>", `model size: ${Object.keys(MODEL_PRESETS).join(" | ")}`, "tiny")
    .option("--vocab <name>", `tokenizer: ${VOCAB_NAMES.join(" | ")}`, "llama-spm")
    .option("--seed <n>", "random seed (same seed → identical file)", "0")
    .option("--weight-type <type>", "storage of the weight matrices: F32 | F16", "F32")
    .requiredOption("--out <file>", "output .gguf path")
    .action(async (opts: InitModelCliOptions) => runInitModel(opts));
}
