// SFT samples (METHOD.md §3): {prompt, reasoning, recommendation} strings become tokens with a
// role per token (the engine's loss segments, src/engine/train-batch.ts): the engine trains on
// tokens only, and this is where the method's text and markers become them. The output the model
// learns is the training target of src/prompts/build.ts,
//   [reasoning_start]\n<reasoning>\n[reasoning_end] <recommendation>   then EOS,
// tokenized as one string (as the scorer and generation see it). Prompt tokens (with BOS) and the
// start marker carry no loss, the tokens strictly between the markers form y_rea, and y_rec runs
// from `[reasoning_end]` (included) to EOS. A sample with empty reasoning is behavior-only (the
// markers with nothing between them): it has no y_rea and counts only in the recommendation term.
// The markers are plain text (no new vocabulary entries).
import { formatTrainingTarget, REASONING_END, REASONING_START } from "../prompts/build.js";
import { Segment, type TokenizedSample } from "../engine/train-batch.js";

export interface SftRecord {
  prompt: string;
  reasoning: string;
  recommendation: string;
  /**
   * "markers" (default): the target is the reasoning-enhanced one above. "plain": the target is
   * the recommendation alone, right after the prompt (instruction tuning without reasoning, the
   * TALLRec baseline's layout); `reasoning` must be empty.
   */
  layout?: TargetLayout;
}

export type TargetLayout = "markers" | "plain";

export type TrainSample = TokenizedSample | SftRecord;

export interface SampleTokenizer {
  tokenize(text: string, opts?: { addBos?: boolean; special?: boolean }): Int32Array;
  /** End-of-sequence token id appended after the recommendation. */
  readonly eosToken: number;
}

/** A model's tokenizer as training uses it; `model` names it in the error when it has no EOS. */
export function sampleTokenizer(tokenize: SampleTokenizer["tokenize"], eos: number, model: string): SampleTokenizer {
  if (!(eos >= 0)) throw new Error(`${model} has no end-of-sequence token; training needs one to end each sample`);
  return { tokenize, eosToken: eos };
}

/** A loaded model's tokenizer (src/engine/model.ts) as training uses it. */
export function modelSampleTokenizer(model: {
  tokenize: SampleTokenizer["tokenize"];
  info: { eos: number; path: string };
}): SampleTokenizer {
  return sampleTokenizer((t, o) => model.tokenize(t, o), model.info.eos, model.info.path);
}

export function isTokenized(s: TrainSample): s is TokenizedSample {
  return (s as TokenizedSample).tokens instanceof Int32Array;
}

/** The trainer's input: records tokenized with `tok`, tokenized samples passed through. */
export function tokenizeSamples(tok: SampleTokenizer, samples: readonly TrainSample[]): TokenizedSample[] {
  return samples.map((s) => (isTokenized(s) ? s : tokenizeSample(tok, s)));
}

/**
 * The target's tokens and where its markers end: `nA` tokens up to the end of `[reasoning_start]`,
 * `nB` up to the start of `[reasoning_end]`. The target is tokenized as one string; where a
 * marker boundary does not fall on a token boundary (Llama-3's BPE merges `]\n`), the three parts
 * are tokenized separately so the roles stay exact.
 */
export function targetLayout(
  tokenize: SampleTokenizer["tokenize"],
  target: string,
): { body: Int32Array; nA: number; nB: number } {
  const full = tokenize(target, { addBos: false });
  const startEnd = target.indexOf(REASONING_START) + REASONING_START.length;
  const endStart = target.indexOf(REASONING_END, startEnd);
  // Token counts of the target up to each marker boundary, when those prefixes tokenize to a
  // prefix of the whole (true at the newline boundaries for the SPM vocabulary).
  const boundary = (text: string): number => {
    const p = tokenize(text, { addBos: false });
    return p.length <= full.length && p.every((t, i) => t === full[i]) ? p.length : -1;
  };
  const nA = boundary(target.slice(0, startEnd));
  const nB = boundary(target.slice(0, endStart));
  if (nA >= 0 && nB >= nA) return { body: full, nA, nB };
  const a = tokenize(target.slice(0, startEnd), { addBos: false });
  const b = tokenize(target.slice(startEnd, endStart), { addBos: false });
  const c = tokenize(target.slice(endStart), { addBos: false });
  return { body: Int32Array.from([...a, ...b, ...c]), nA: a.length, nB: a.length + b.length };
}

/** Tokenizes one record; see the header for the roles. */
export function tokenizeSample(tok: SampleTokenizer, r: SftRecord): TokenizedSample {
  if (typeof r.prompt !== "string" || typeof r.reasoning !== "string" || typeof r.recommendation !== "string") {
    throw new Error("an SFT sample needs string fields prompt, reasoning and recommendation (reasoning may be empty)");
  }
  if (r.recommendation.trim() === "")
    throw new Error("an SFT sample has an empty recommendation; every sample needs one");
  if (r.layout === "plain") return tokenizePlainSample(tok, r);
  const prompt = tok.tokenize(r.prompt, { addBos: true });
  const { body, nA, nB } = targetLayout(
    (t, o) => tok.tokenize(t, o),
    formatTrainingTarget(r.reasoning, r.recommendation.trim()),
  );
  const behaviorOnly = r.reasoning.trim() === "";
  const n = prompt.length + body.length + 1;
  const tokens = new Int32Array(n);
  tokens.set(prompt, 0);
  tokens.set(body, prompt.length);
  tokens[n - 1] = tok.eosToken;
  const segments = new Uint8Array(n).fill(Segment.recommendation);
  segments.fill(Segment.prompt, 0, prompt.length + nA);
  segments.fill(behaviorOnly ? Segment.prompt : Segment.reasoning, prompt.length + nA, prompt.length + nB);
  return { tokens, segments };
}

/** A "plain" record: prompt tokens (no loss), then the recommendation and EOS (y_rec). */
function tokenizePlainSample(tok: SampleTokenizer, r: SftRecord): TokenizedSample {
  if (r.reasoning.trim() !== "")
    throw new Error('an SFT sample with layout "plain" has no reasoning; leave reasoning empty');
  const prompt = tok.tokenize(r.prompt, { addBos: true });
  const body = tok.tokenize(r.recommendation.trim(), { addBos: false });
  const tokens = Int32Array.from([...prompt, ...body, tok.eosToken]);
  const segments = new Uint8Array(tokens.length).fill(Segment.recommendation);
  segments.fill(Segment.prompt, 0, prompt.length);
  return { tokens, segments };
}

/**
 * The input a model trained on `prompt` continues from: the prompt (with BOS) and the part of the
 * target that carried no loss. For reasoning samples that is `[reasoning_start]`; for
 * behavior-only samples (`w/o reason`) it is `[reasoning_start]\n`, so such a model is asked for
 * exactly what it learnt to write next: `[reasoning_end] <title>`.
 */
export function trainedPrefix(
  tokenize: SampleTokenizer["tokenize"],
  prompt: string,
  behaviorOnly: boolean,
): Int32Array {
  const p = tokenize(prompt, { addBos: true });
  // Any reasoning and title give the same prefix: the markers' tokens do not depend on them.
  const { body, nA, nB } = targetLayout(
    tokenize,
    formatTrainingTarget(behaviorOnly ? "" : "Step 4 - Summary: it fits.", "Item"),
  );
  const out = new Int32Array(p.length + (behaviorOnly ? nB : nA));
  out.set(p, 0);
  out.set(body.subarray(0, out.length - p.length), p.length);
  return out;
}

/** One user's candidates as scorer requests: a shared context and one continuation per candidate. */
export interface CandidateRequests {
  context: Int32Array;
  continuations: Int32Array[];
}

/**
 * The candidates' titles laid out as a behavior-only training sample gives a recommendation: the
 * prompt (with BOS), `[reasoning_start]\n[reasoning_end] ` and the title ("markers"), or the
 * title right after the prompt ("plain"), token for token as tokenizeSample builds it. What every
 * candidate's tokens share goes into the context; at least one token of each title stays its
 * continuation.
 */
export function candidateRequests(
  tokenize: SampleTokenizer["tokenize"],
  prompt: string,
  titles: readonly string[],
  layout: TargetLayout = "markers",
): CandidateRequests {
  if (titles.length === 0) throw new Error("candidateRequests needs at least one candidate title");
  const p = tokenize(prompt, { addBos: true });
  // targetLayout, as tokenizeSample: where a marker boundary falls inside a token, the parts are
  // tokenized apart, so this is never the target tokenized as one string.
  const targets = titles.map((t) =>
    layout === "plain"
      ? tokenize(t.trim(), { addBos: false })
      : targetLayout(tokenize, formatTrainingTarget("", t.trim())).body,
  );
  let shared = Math.min(...targets.map((t) => t.length)) - 1;
  for (let k = 0; k < shared; k++) {
    if (targets.some((t) => t[k] !== targets[0]![k])) shared = k;
  }
  const context = Int32Array.from([...p, ...targets[0]!.subarray(0, shared)]);
  return { context, continuations: targets.map((t) => t.slice(shared)) };
}
