// `msr-rec score`: log-probs of continuations given prompts, batched through the native scorer.
// Input lines {"prompt", "continuation"} → output lines {"logprob", "ppl", "tokens", "tokenLogprobs"}.
import type { Command } from "commander";
import { loadModel, type LoraChoice } from "../../engine/index.js";
import { readJsonl, writeJsonlAtomically } from "../../util/jsonl.js";
import { ProgressBar } from "../../util/progress.js";

interface ScoreCliOptions {
  model: string;
  input: string;
  out: string;
  lora?: string;
  loraScale: string;
  threads?: string;
  contextSize: string;
  chunk: string;
}

export async function runScore(opts: ScoreCliOptions): Promise<void> {
  const rows = await readJsonl<{ prompt?: unknown; continuation?: unknown }>(opts.input);
  rows.forEach((r, i) => {
    if (typeof r.prompt !== "string" || typeof r.continuation !== "string") {
      throw new Error(`${opts.input}:${i + 1}: each line needs string fields "prompt" and "continuation"`);
    }
  });
  const scale = Number(opts.loraScale);
  if (!Number.isFinite(scale)) throw new Error(`--lora-scale must be a finite number, got "${opts.loraScale}"`);
  const model = await loadModel(opts.model, { threads: opts.threads ? Number(opts.threads) : undefined });
  const lora: LoraChoice[] | undefined = opts.lora ? [{ adapter: await model.loadLora(opts.lora), scale }] : undefined;
  const scorer = model.createScorer({ contextSize: Number(opts.contextSize) });
  const bar = new ProgressBar("score", rows.length);
  const chunk = Math.max(1, Number(opts.chunk));
  try {
    await writeJsonlAtomically(opts.out, async (write) => {
      for (let i = 0; i < rows.length; i += chunk) {
        const part = rows
          .slice(i, i + chunk)
          .map((r) => ({ prompt: r.prompt as string, continuation: r.continuation as string }));
        const results = await scorer.score(part, { lora });
        results.forEach((r, k) => {
          const tokens = Array.from(model.tokenize(part[k]!.continuation, { addBos: false }));
          write({ logprob: r.logprob, ppl: r.ppl, tokens, tokenLogprobs: Array.from(r.tokenLogprobs) });
        });
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
    .command("score")
    .description("log P(continuation | prompt) per token for JSONL requests, batched")
    .requiredOption("--model <file>", "GGUF model")
    .requiredOption("--input <file>", 'JSONL lines {"prompt", "continuation"}')
    .requiredOption("--out <file>", 'JSONL lines {"logprob", "ppl", "tokens", "tokenLogprobs"}')
    .option("--lora <file>", "GGUF LoRA adapter")
    .option("--lora-scale <s>", "adapter scale", "1")
    .option("--threads <n>", "CPU threads")
    .option("--context-size <n>", "scorer context (KV cells per wave)", "2048")
    .option("--chunk <n>", "requests per scorer call (progress granularity)", "256")
    .action(runScore);
}
