// `msr-rec init-model`: writes a GGUF with random weights and a real tokenizer, in the layout
// llama.cpp's converter writes for the chosen architecture (tiny/small for tests and the demo;
// real shapes such as llama3-8b for benches). The work is in src/gguf/init-model.ts and quantize.ts.
import type { Command } from "commander";
import { statSync } from "node:fs";
import {
  MODEL_ARCHS,
  MODEL_PRESETS,
  VOCAB_NAMES,
  WEIGHT_TYPES,
  defaultVocab,
  type LlamaHparams,
  type ModelArch,
  type ModelPreset,
  type VocabName,
  type WeightType,
} from "../../gguf/init-model.js";
import { createModel } from "../../gguf/quantize.js";

const ARCH_NAMES: Record<ModelArch, string> = { llama: "LLaMA", qwen2: "Qwen2", qwen3: "Qwen3" };

export interface InitModelCliOptions {
  preset: string;
  /** Default: the preset's tokenizer (llama-spm for tiny/small, llama-bpe for Llama 3, qwen2 for Qwen). */
  vocab?: string;
  seed: string | number;
  out: string;
  weightType?: string;
  /** Default: the preset's architecture. */
  arch?: string;
}

/** Validates the CLI's strings, generates the model and reports what it wrote. */
export async function runInitModel(
  opts: InitModelCliOptions,
  log: (line: string) => void = (s) => process.stdout.write(`${s}\n`),
): Promise<void> {
  if (!(opts.preset in MODEL_PRESETS))
    throw new Error(`--preset must be one of ${Object.keys(MODEL_PRESETS).join(", ")}, got "${opts.preset}"`);
  const preset = opts.preset as ModelPreset;
  if (opts.arch !== undefined && !MODEL_ARCHS.includes(opts.arch as ModelArch))
    throw new Error(`--arch must be one of ${MODEL_ARCHS.join(", ")}, got "${opts.arch}"`);
  const presetArch = (MODEL_PRESETS[preset] as LlamaHparams).arch ?? "llama";
  const arch = (opts.arch ?? presetArch) as ModelArch;
  const vocab = opts.vocab ?? (arch === presetArch ? defaultVocab(preset) : arch === "llama" ? "llama-bpe" : "qwen2");
  if (!VOCAB_NAMES.includes(vocab as VocabName))
    throw new Error(`--vocab must be one of ${VOCAB_NAMES.join(", ")}, got "${vocab}"`);
  const seed = typeof opts.seed === "number" ? opts.seed : /^\d+$/.test(opts.seed) ? Number(opts.seed) : NaN;
  if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be a non-negative integer, got "${opts.seed}"`);
  if (!opts.out) throw new Error("--out is required: the .gguf file to write");
  const weightType = (opts.weightType ?? "F32").toUpperCase();
  if (!WEIGHT_TYPES.includes(weightType as WeightType))
    throw new Error(`--weight-type must be one of ${WEIGHT_TYPES.join(", ")}, got "${opts.weightType}"`);
  const t0 = performance.now();
  const res = await createModel({
    preset,
    vocab: vocab as VocabName,
    seed,
    out: opts.out,
    weightType: weightType as WeightType,
    ...(arch !== presetArch ? { overrides: { arch } } : {}),
  });
  const mb = statSync(res.path).size / 2 ** 20;
  log(
    `wrote ${res.path}: ${preset} ${ARCH_NAMES[arch]} ${weightType}, ${res.parameterCount.toLocaleString("en-US")} parameters, vocab ${vocab} (${res.vocabSize}), ` +
      `${mb.toFixed(1)} MiB in ${((performance.now() - t0) / 1000).toFixed(2)} s`,
  );
}

export function register(program: Command): void {
  program
    .command("init-model")
    .description(
      "write a GGUF (llama, qwen2 or qwen3 layout) with deterministic random weights and a real llama.cpp tokenizer",
    )
    .option("--preset <name>", `model shape: ${Object.keys(MODEL_PRESETS).join(" | ")}`, "tiny")
    .option("--arch <name>", `layout: ${MODEL_ARCHS.join(" | ")} (default: the preset's)`)
    .option("--vocab <name>", `tokenizer: ${VOCAB_NAMES.join(" | ")} (default: the preset's)`)
    .option("--seed <n>", "random seed (same seed → identical file)", "0")
    .option(
      "--weight-type <type>",
      `storage of the weight matrices: ${WEIGHT_TYPES.join(" | ")} (quantized types via llama.cpp's quantizer)`,
      "F32",
    )
    .requiredOption("--out <file>", "output .gguf path")
    .action(async (opts: InitModelCliOptions) => runInitModel(opts));
}
