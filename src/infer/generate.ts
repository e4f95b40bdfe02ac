// Batched generation with a progress bar, plus the narrow view of the engine that inference needs
// (structural, so any object with these methods works: the native Model, or a test double that
// really generates).
import { ProgressBar } from "../util/progress.js";

export interface GenerateOptions<L> {
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
  stop?: string[];
  grammar?: string;
  /** One grammar per prompt (see the engine's generate options). */
  grammars?: readonly (string | null)[];
  /** Return each generated token's log-prob under the model (the engine's `logprobs` option). */
  logprobs?: boolean;
  lora?: L;
}

export interface GeneratedText {
  text: string;
  /** The sampled tokens; `text` is their detokenization. */
  tokens: Int32Array;
  finishReason: string;
  /** With `logprobs`: log P(token | prompt, tokens before) per token, before sampling's changes. */
  tokenLogprobs?: Float32Array;
}

/** A prompt as text (tokenized with BOS by the engine) or as exact token ids. */
export type Prompt = string | Int32Array;

export type Tokenize = (text: string, opts: { addBos: boolean }) => Int32Array;

export interface TextGenerator<L> {
  generate(prompts: Prompt[], opts: GenerateOptions<L>): Promise<GeneratedText[]>;
}

export interface ScoreRequest {
  prompt: Prompt;
  /** Text (tokenized without BOS by the engine) or the exact tokens to score. */
  continuation: string | Int32Array;
}

export interface ContinuationScore {
  logprob: number;
  ppl: number;
  tokenLogprobs: Float32Array;
}

export interface ContinuationScorer<L> {
  score(requests: ScoreRequest[], opts?: { lora?: L }): Promise<ContinuationScore[]>;
}

/** Generates for every prompt, `batchSize` prompts per call; the seed (and per-prompt grammars) follow each batch. */
export async function generateAll<L>(
  model: TextGenerator<L>,
  prompts: Prompt[],
  opts: GenerateOptions<L>,
  batchSize: number,
  label: string,
  quiet = false,
): Promise<GeneratedText[]> {
  const out: GeneratedText[] = [];
  const bar = quiet || prompts.length === 0 ? null : new ProgressBar(label, prompts.length);
  for (let i = 0; i < prompts.length; i += batchSize) {
    const batch = prompts.slice(i, i + batchSize);
    const res = await model.generate(batch, {
      ...opts,
      seed: opts.seed + i,
      ...(opts.grammars ? { grammars: opts.grammars.slice(i, i + batchSize) } : {}),
    });
    if (res.length !== batch.length)
      throw new Error(`generate returned ${res.length} outputs for ${batch.length} prompts`);
    out.push(...res);
    bar?.tick(batch.length);
  }
  bar?.finish();
  return out;
}
