// GPTScore (Fu et al. 2023): how likely an evaluator language model finds a text, given an
// instruction that names the quality aspect. Score = mean log-probability of the text's tokens,
//   GPTScore(h | a, c) = (1/|h|) Σ_t log p(h_t | h_<t, T(a, c)),
// where T fills the aspect's instruction with the context c (history and candidates). Higher is
// better. Log-probabilities come from a scorer callback shaped like the engine's
// `scorer.score([{prompt, continuation}])`.

export interface ContinuationRequest {
  prompt: string;
  continuation: string;
}

export interface ContinuationScore {
  tokenLogprobs: ArrayLike<number>;
}

export type ContinuationScorer = (requests: readonly ContinuationRequest[]) => Promise<readonly ContinuationScore[]>;

/** Instructions per aspect; "{context}" is replaced by the sample's context. */
export const GPTSCORE_ASPECTS = {
  coherence:
    "Generate a coherent, logically connected explanation of which candidate item the user will choose next and why.\n{context}\nExplanation:",
  consistency:
    "Generate an explanation that is consistent with the user's history and the candidates' attributes, without inventing facts.\n{context}\nExplanation:",
  informativeness:
    "Generate an informative explanation that analyses the user's preferences and each candidate in detail.\n{context}\nExplanation:",
  fluency: "Generate a fluent, grammatical explanation of the recommendation.\n{context}\nExplanation:",
} as const;
export type GptScoreAspect = keyof typeof GPTSCORE_ASPECTS;

export function gptScorePrompt(aspect: GptScoreAspect | { template: string }, context: string): string {
  const template = typeof aspect === "string" ? GPTSCORE_ASPECTS[aspect] : aspect.template;
  if (!template.includes("{context}")) throw new Error('a GPTScore template must contain "{context}"');
  return template.split("{context}").join(context);
}

export interface GptScoreResult {
  /** Mean token log-probability per text (NaN for a text with no tokens). */
  scores: number[];
  /** Mean over texts with tokens. */
  mean: number;
}

/** GPTScore of each text (with its context) under one aspect. */
export async function gptScore(
  items: readonly { text: string; context: string }[],
  scorer: ContinuationScorer,
  aspect: GptScoreAspect | { template: string } = "coherence",
): Promise<GptScoreResult> {
  if (items.length === 0) return { scores: [], mean: NaN };
  // A leading space keeps the text's first word a separate token after "Explanation:".
  const requests = items.map((it) => ({
    prompt: gptScorePrompt(aspect, it.context),
    continuation: it.text.startsWith(" ") ? it.text : ` ${it.text}`,
  }));
  const results = await scorer(requests);
  if (results.length !== items.length)
    throw new Error(`the scorer returned ${results.length} results for ${items.length} texts`);
  const scores = results.map((r) => {
    const n = r.tokenLogprobs.length;
    let s = 0;
    for (let i = 0; i < n; i++) s += r.tokenLogprobs[i]!;
    return n > 0 ? s / n : NaN;
  });
  const valid = scores.filter((x) => !Number.isNaN(x));
  return { scores, mean: valid.length > 0 ? valid.reduce((a, b) => a + b, 0) / valid.length : NaN };
}
