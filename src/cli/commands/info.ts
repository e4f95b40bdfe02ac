// `msr-rec info`: a summary of a GGUF model or LoRA adapter, read with msr-rec's own GGUF reader
// (header only, so it is instant even for multi-GB files), and for a model whether it can be trained.
import type { Command } from "commander";
import { trainability } from "../../engine/model-files.js";
import { isLoraAdapter, readLoraAdapter } from "../../gguf/lora.js";
import { metaArrayLength, metaNumber, metaString, readGguf } from "../../gguf/reader.js";
import { ggmlTypeName } from "../../gguf/types.js";

function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function table(rows: [string, string | number | undefined][]): string {
  const shown = rows.filter(([, v]) => v !== undefined && v !== "");
  const w = Math.max(...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${k.padEnd(w)}  ${typeof v === "number" ? v.toLocaleString("en-US") : v}`).join("\n");
}

/** Human-readable summary of a GGUF file: model hyper-parameters, or adapter rank/alpha/targets. */
export function describeGguf(path: string): string {
  const file = readGguf(path);
  const m = file.metadata;
  const params = file.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const types = [...new Set(file.tensors.map((t) => ggmlTypeName(t.type)))].join(", ");
  if (isLoraAdapter(file)) {
    const lora = readLoraAdapter(path);
    return table([
      ["file", path],
      ["kind", "LoRA adapter"],
      ["architecture", lora.architecture],
      ["rank", lora.rank],
      ["alpha", lora.alpha],
      ["targets", lora.targets.join(",")],
      ["adapted weights", lora.weights.length],
      ["parameters", params],
      ["tensor types", types],
      ["file size", formatBytes(file.fileSize)],
    ]);
  }
  const arch = metaString(m, "general.architecture") ?? "(unknown)";
  const hp = (k: string) => metaNumber(m, `${arch}.${k}`);
  const heads = hp("attention.head_count");
  const headsKv = hp("attention.head_count_kv");
  return table([
    ["file", path],
    ["kind", metaString(m, "general.type") ?? "model"],
    ["name", metaString(m, "general.name")],
    ["architecture", arch],
    ["vocabulary size", hp("vocab_size") ?? metaArrayLength(m, "tokenizer.ggml.tokens")],
    ["context length", hp("context_length")],
    ["layers", hp("block_count")],
    ["embedding size", hp("embedding_length")],
    ["feed-forward size", hp("feed_forward_length")],
    [
      "heads",
      heads === undefined
        ? undefined
        : `${heads}${headsKv !== undefined && headsKv !== heads ? ` (KV ${headsKv})` : ""}`,
    ],
    ["parameters", params],
    ["tensor types", types],
    [
      "tokenizer",
      [metaString(m, "tokenizer.ggml.model"), metaString(m, "tokenizer.ggml.pre")].filter(Boolean).join(" / "),
    ],
    ["GGUF version", file.version],
    ["file size", formatBytes(file.fileSize)],
  ]);
}

/**
 * Whether msr-rec can train the model (LoRA / full) and if not why, from the native trainer's own
 * checks on the model's structure (loaded without its weights, so instant for any size).
 */
export async function describeTrainability(path: string): Promise<string> {
  const t = await trainability(path);
  const full =
    t.full === null
      ? "yes"
      : t.fullWithDequantize === null
        ? "only as F32 copies of the quantized weights (dequantize: true)"
        : `no: ${t.full}`;
  return table([
    ["trainable (lora)", t.lora === null ? "yes" : `no: ${t.lora}`],
    ["trainable (full)", full],
  ]);
}

export function register(program: Command): void {
  program
    .command("info")
    .description("describe a GGUF model or LoRA adapter (architecture, sizes, tokenizer, rank/alpha/targets)")
    .requiredOption("--model <file>", "a .gguf model or adapter")
    .action(async (opts: { model: string }) => {
      process.stdout.write(`${describeGguf(opts.model)}\n`);
      if (isLoraAdapter(readGguf(opts.model))) return;
      try {
        process.stdout.write(`${await describeTrainability(opts.model)}\n`);
      } catch (e) {
        // The header summary above needs no addon; trainability does (or llama.cpp may not load the file).
        process.stdout.write(`trainable  unknown: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    });
}
