// `msr-rec generate`: batched generation for JSONL prompts → {"text", "finishReason"} lines.
import type { Command } from "commander";
import { loadModel } from "../../engine/index.js";
import { readJsonl, writeJsonlAtomically } from "../../util/jsonl.js";
import { ProgressBar } from "../../util/progress.js";

interface GenerateCliOptions {
  model: string;
  input: string;
  out: string;
  maxTokens: string;
  temperature: string;
  topP: string;
  topK: string;
  seed: string;
  parallel: string;
  lora?: string;
  loraScale: string;
  threads?: string;
}

function num(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${flag} must be a number, got "${v}"`);
  return n;
}

export async function runGenerate(opts: GenerateCliOptions): Promise<void> {
  const rows = await readJsonl<{ prompt?: unknown; stop?: unknown }>(opts.input);
  rows.forEach((r, i) => {
    if (typeof r.prompt !== "string")
      throw new Error(`${opts.input}:${i + 1}: each line needs a string field "prompt"`);
  });
  const model = await loadModel(opts.model, { threads: opts.threads ? num(opts.threads, "--threads") : undefined });
  const lora = opts.lora
    ? [{ adapter: await model.loadLora(opts.lora), scale: num(opts.loraScale, "--lora-scale") }]
    : undefined;
  const parallel = num(opts.parallel, "--parallel");
  const seed = num(opts.seed, "--seed");
  const bar = new ProgressBar("generate", rows.length);
  try {
    await writeJsonlAtomically(opts.out, async (write) => {
      // Chunks of a few slot-fulls keep progress visible while slots stay busy.
      const chunk = parallel * 4;
      for (let i = 0; i < rows.length; i += chunk) {
        const part = rows.slice(i, i + chunk).map((r) => r.prompt as string);
        const results = await model.generate(part, {
          maxTokens: num(opts.maxTokens, "--max-tokens"),
          temperature: num(opts.temperature, "--temperature"),
          topP: num(opts.topP, "--top-p"),
          topK: num(opts.topK, "--top-k"),
          seed: seed + i, // prompt i of the file gets seed + i wherever its chunk starts
          parallel,
          lora,
        });
        for (const r of results) write({ text: r.text, finishReason: r.finishReason });
        bar.tick(part.length);
      }
    });
  } finally {
    bar.finish();
    model.dispose();
  }
}

export function register(program: Command): void {
  program
    .command("generate")
    .description("batched generation (continuous batching) for JSONL prompts")
    .requiredOption("--model <file>", "GGUF model")
    .requiredOption("--input <file>", 'JSONL lines {"prompt"}')
    .requiredOption("--out <file>", 'JSONL lines {"text", "finishReason"}')
    .option("--max-tokens <n>", "new tokens per prompt", "256")
    .option("--temperature <t>", "0 = greedy", "0.7")
    .option("--top-p <p>", "nucleus sampling", "0.95")
    .option("--top-k <k>", "top-k sampling (0 = off)", "40")
    .option("--seed <s>", "base seed (prompt i uses seed + i)", "0")
    .option("--parallel <n>", "prompts decoded together", "16")
    .option("--lora <file>", "GGUF LoRA adapter")
    .option("--lora-scale <s>", "adapter scale", "1")
    .option("--threads <n>", "CPU threads")
    .action(runGenerate);
}
