// Bidirectional reasoning-based recommendation (Figure 5, Eq. 3): for every test user, generate a
// user-side and an item-side output (one batched stream of 2N prompts), parse the recommendation
// of each, take the PPL of both reasonings, and fuse by this project's rule; optionally also by
// the literal Eq. 3 (PPL of reasoning and answer). With the PPL conditioned on the prompt (the
// default) the PPLs come from the generator's own token log-probs, which are the scorer's for the
// same tokens; unconditioned PPLs (or a generator without log-probs) take ONE batched scorer call. Optionally the
// final answer is re-decoded under a GBNF grammar that admits only the candidate titles, given
// each side's own reasoning, and fused the same way (the "constrained" row).
import { candidateGrammar, parseOutput, type ParsedOutput } from "./parse.js";
import { fuseByPerplexity, fuseEq3, type FusionDecision } from "./fusion.js";
import {
  generateAll,
  type ContinuationScorer,
  type GeneratedText,
  type GenerateOptions,
  type Prompt,
  type ScoreRequest,
  type TextGenerator,
} from "./generate.js";
import { concatTokens, constrainedPrefix, reasoningTokens, type TokenCodec } from "./align.js";
import { matchTitle } from "../eval/title-match.js";

/** One test user's inference inputs. */
export interface InferenceCase {
  user: string;
  prompts: { user: Prompt; item: Prompt };
  candidateIds: string[];
  candidateTitles: string[];
  targetIndex: number;
}

export interface SideResult extends ParsedOutput {
  text: string;
  finishReason: string;
  /** PPL of the reasoning tokens (this project's fusion). */
  ppl: number;
  /** PPL of every generated token, reasoning and answer (the literal Eq. 3), when computed. */
  pplOutput?: number;
  /** The generated token ids (`text` is their detokenization): what PPL is computed on. */
  tokenIds?: number[];
  /** Candidate index chosen under the title grammar (constrained run only). */
  constrainedIndex?: number;
}

export interface BidirectionalResult {
  user: string;
  candidateIds: string[];
  candidateTitles: string[];
  targetIndex: number;
  userSide: SideResult;
  itemSide: SideResult;
  fused: FusionDecision;
  /** The literal Eq. 3 over the output PPLs (when `eq3` was asked for). */
  fusedEq3?: FusionDecision;
  constrained?: FusionDecision;
}

export interface BidirectionalOptions<L> {
  generation: Omit<GenerateOptions<L>, "grammar" | "stop">;
  batchSize: number;
  /** "prompt": PPL conditioned on the prompt and the output before the reasoning; "none": alone. */
  pplConditioning: "prompt" | "none";
  constrained: boolean;
  /** Also fuse by the literal Eq. 3: PPL of all generated tokens (reasoning + answer), same conditioning. */
  eq3?: boolean;
  /** The model's tokenizer both ways: PPL and the constrained prefix work on the generated tokens. */
  codec: TokenCodec;
  quiet?: boolean;
}

/**
 * The scorer request for a side's reasoning: the generated reasoning tokens themselves (never a
 * re-tokenization of its text), after the prompt and whatever was generated before them
 * ("prompt") or alone ("none"); null when there is no reasoning to score.
 */
export function reasoningScoreRequest(
  prompt: Prompt,
  gen: GeneratedText,
  parsed: ParsedOutput,
  conditioning: "prompt" | "none",
  codec: TokenCodec,
): ScoreRequest | null {
  const t = reasoningTokens(gen, parsed, codec.detokenize);
  if (!t) return null;
  return {
    prompt: conditioning === "prompt" ? concatTokens(prompt, codec.tokenize, t.before) : "",
    continuation: t.reasoning.slice(),
  };
}

/**
 * The scorer request for a side's whole output y = {y^rea, y^rec} (literal Eq. 3): every generated
 * token (EOS is not among them), after the prompt ("prompt") or alone ("none"); null when nothing
 * was generated.
 */
export function outputScoreRequest(
  prompt: Prompt,
  gen: GeneratedText,
  conditioning: "prompt" | "none",
): ScoreRequest | null {
  if (gen.tokens.length === 0) return null;
  return { prompt: conditioning === "prompt" ? prompt : "", continuation: gen.tokens.slice() };
}

/** Scores many (prompt, continuation) pairs in one scorer call; NaN where there is nothing to score. */
export async function scoreReasonings<L>(
  scorer: ContinuationScorer<L>,
  requests: Array<ScoreRequest | null>,
  lora: L | undefined,
): Promise<number[]> {
  const live = requests
    .map((r, i) => [r, i] as const)
    .filter((x): x is readonly [ScoreRequest, number] => x[0] !== null);
  const ppl = new Array<number>(requests.length).fill(Number.NaN);
  if (live.length === 0) return ppl;
  const scores = await scorer.score(
    live.map(([r]) => r),
    lora === undefined ? undefined : { lora },
  );
  live.forEach(([, i], k) => (ppl[i] = scores[k]!.ppl));
  return ppl;
}

/**
 * PPL of tokens [a, b) of a generated output from the generator's log-probs of them (conditioned on
 * the prompt and the tokens before): exp(-mean), summed in order in double as the scorer sums.
 */
export function pplOfSpan(tokenLogprobs: Float32Array, a: number, b: number): number {
  let sum = 0;
  for (let i = a; i < b; i++) sum += tokenLogprobs[i]!;
  return Math.exp(-sum / (b - a));
}

/**
 * The PPLs the generator's log-probs already give, by request index (undefined: the scorer must
 * compute it): a side's reasoning (`reasoning` k) and, for Eq. 3, its whole output (`output` k).
 */
function pplsFromGeneration(
  gens: GeneratedText[],
  parsed: ParsedOutput[],
  o: Pick<BidirectionalOptions<unknown>, "pplConditioning" | "eq3" | "codec">,
): (number | undefined)[] {
  const known: (number | undefined)[] = [];
  if (o.pplConditioning !== "prompt") return known;
  gens.forEach((g, k) => {
    if (!g.tokenLogprobs) return;
    const t = reasoningTokens(g, parsed[k]!, o.codec.detokenize);
    known[k] = t ? pplOfSpan(g.tokenLogprobs, t.before.length, t.before.length + t.reasoning.length) : Number.NaN;
    if (o.eq3)
      known[gens.length + k] = g.tokens.length > 0 ? pplOfSpan(g.tokenLogprobs, 0, g.tokens.length) : Number.NaN;
  });
  return known;
}

const idOf = (c: InferenceCase, index: number): string | null => (index >= 0 ? c.candidateIds[index]! : null);

export async function inferBidirectional<L>(
  model: TextGenerator<L>,
  scorer: ContinuationScorer<L>,
  cases: InferenceCase[],
  o: BidirectionalOptions<L>,
): Promise<BidirectionalResult[]> {
  // Interleave user/item prompts so each generate() batch holds both sides of the same users.
  const prompts = cases.flatMap((c) => [c.prompts.user, c.prompts.item]);
  const logprobs = o.pplConditioning === "prompt";
  const gens = await generateAll(
    model,
    prompts,
    { ...o.generation, logprobs },
    o.batchSize,
    "infer user+item",
    o.quiet,
  );
  const parsed = gens.map((g, k) => parseOutput(g.text, cases[k >> 1]!.candidateTitles));
  const requests = parsed.map((p, k) => reasoningScoreRequest(prompts[k]!, gens[k]!, p, o.pplConditioning, o.codec));
  // The literal Eq. 3's requests ride in the same scorer call, after the reasoning ones.
  if (o.eq3) requests.push(...gens.map((g, k) => outputScoreRequest(prompts[k]!, g, o.pplConditioning)));
  // What generation already gave is not scored again.
  const known = pplsFromGeneration(gens, parsed, o);
  const ppl = await scoreReasonings(
    scorer,
    requests.map((r, i) => (known[i] === undefined ? r : null)),
    o.generation.lora,
  );
  known.forEach((v, i) => {
    if (v !== undefined) ppl[i] = v;
  });
  const sides: SideResult[] = parsed.map((p, k) => ({
    ...p,
    text: gens[k]!.text,
    finishReason: gens[k]!.finishReason,
    ppl: ppl[k]!,
    ...(o.eq3 ? { pplOutput: ppl[gens.length + k]! } : {}),
    tokenIds: Array.from(gens[k]!.tokens),
  }));

  if (o.constrained) {
    // Phase 2: each side's own reasoning, then the title grammar. The output as training lays it
    // out, token for token: prompt, the generated reasoning, then `[reasoning_end]`; the title
    // follows under that user's grammar. One batched stream for every user and side: each
    // prompt carries its own grammar (the candidate set differs per user). Greedy, so batching
    // cannot change an answer.
    const prefixes = sides.map((s, k) => constrainedPrefix(prompts[k]!, gens[k]!, s, o.codec));
    const grammars = sides.map((_, k) => candidateGrammar(cases[k >> 1]!.candidateTitles));
    const answers = await generateAll(
      model,
      prefixes,
      { ...o.generation, maxTokens: 64, temperature: 0, grammars },
      o.batchSize,
      "infer constrained",
      o.quiet,
    );
    answers.forEach((g, k) => (sides[k]!.constrainedIndex = matchTitle(g.text, cases[k >> 1]!.candidateTitles).index));
  }

  return cases.map((c, u) => {
    const us = sides[2 * u]!;
    const is = sides[2 * u + 1]!;
    const fused = fuseByPerplexity(
      { choice: idOf(c, us.choiceIndex), ppl: us.ppl },
      { choice: idOf(c, is.choiceIndex), ppl: is.ppl },
    );
    const r: BidirectionalResult = {
      user: c.user,
      candidateIds: c.candidateIds,
      candidateTitles: c.candidateTitles,
      targetIndex: c.targetIndex,
      userSide: us,
      itemSide: is,
      fused,
    };
    if (o.eq3)
      r.fusedEq3 = fuseEq3(
        { choice: idOf(c, us.choiceIndex), ppl: us.pplOutput ?? Number.NaN },
        { choice: idOf(c, is.choiceIndex), ppl: is.pplOutput ?? Number.NaN },
      );
    if (o.constrained) {
      r.constrained = fuseByPerplexity(
        { choice: idOf(c, us.constrainedIndex ?? -1), ppl: us.ppl },
        { choice: idOf(c, is.constrainedIndex ?? -1), ppl: is.ppl },
      );
    }
    return r;
  });
}
