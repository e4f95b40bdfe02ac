// What a policy-gradient step (GRPO and its relatives) learns from, checked and laid out for the
// native trainer (native/src/train_policy.h), and GRPO's group-normalised advantages.
//
// A sample is a prompt with one sampled completion, as tokens with segments (prompt tokens carry
// Segment.prompt, completion tokens any other segment): the same TokenizedSample the SFT step
// takes. Per-token data (advantages, reference and old log-probs) has one entry per completion
// token, i.e. per token after the first whose segment is not the prompt: exactly the
// `tokenLogprobs` a scorer returns for {prompt, continuation: completion}.
import type { NativePolicyInputs, NativePolicyLossType } from "./bindings.js";
import { Segment, type TokenizedSample } from "./train-batch.js";

export interface PolicySample extends TokenizedSample {
  /** The completion's advantage (GRPO: its reward normalised within its group), or one per completion token. */
  advantage: number | Float32Array;
  /** log π_ref of each completion token (the KL penalty's reference policy, e.g. the SFT adapter's scores). */
  refLogprobs?: Float32Array;
  /** log π_old of each completion token: the policy that sampled it (for clipping when a batch serves several updates). */
  oldLogprobs?: Float32Array;
}

/** A sample for evaluatePolicy: the advantage may be left out (counted as 0). */
export type PolicyEvalSample = Omit<PolicySample, "advantage"> & { advantage?: number | Float32Array };

/**
 * How the per-token losses of a batch of N samples are averaged: "sequence" (GRPO: mean over
 * samples of each sample's token mean), "token" (DAPO: mean over all completion tokens),
 * "constant" (Dr. GRPO: sum over tokens / (N · maxTokens)).
 */
export type PolicyLossType = NativePolicyLossType;

export interface PolicyOptions {
  /** KL coefficient β (default 0, TRL's default since 0.19): needs refLogprobs on every sample. */
  beta?: number;
  /** Ratio clip range ε: r is clipped to [1 − ε, 1 + epsilonHigh] (default 0.2). Acts only with oldLogprobs. */
  epsilon?: number;
  /** Upper clip range (default ε; DAPO's clip-higher uses 0.28). */
  epsilonHigh?: number;
  /** Default "sequence". */
  lossType?: PolicyLossType;
  /** "constant" only: the maxTokens the completions were generated with. */
  maxTokens?: number;
  /**
   * The temperature the completions were sampled at (default 1): log-probs, ratios and the KL are
   * those of softmax(logits / temperature). oldLogprobs and refLogprobs must be at the same
   * temperature (evaluatePolicy gives them; a scorer scores at temperature 1).
   */
  temperature?: number;
}

/** Completion tokens of a sample: positions after the first whose segment is not the prompt. */
export function completionTokenCount(s: TokenizedSample): number {
  let n = 0;
  for (let p = 1; p < s.segments.length; p++) if (s.segments[p] !== Segment.prompt) n++;
  return n;
}

function checkPerToken(v: Float32Array, n: number, what: string, logprobs: boolean): void {
  if (!(v instanceof Float32Array)) throw new TypeError(`${what} must be a Float32Array`);
  if (v.length !== n)
    throw new RangeError(
      `${what} has ${v.length} entries but the sample has ${n} completion tokens (tokens after the first whose segment is not the prompt): pass one per completion token`,
    );
  for (let k = 0; k < v.length; k++) {
    if (!Number.isFinite(v[k])) throw new RangeError(`${what}[${k}] is not a finite number`);
    if (logprobs && v[k]! > 1e-3)
      throw new RangeError(
        `${what}[${k}] is ${v[k]}, but log-probabilities are <= 0: pass log-probs (e.g. a scorer's tokenLogprobs), not probabilities`,
      );
  }
}

/**
 * The per-token arrays of a batch, flat in sample order, after checking every length and value.
 * Reference and old log-probs are given for every sample or for none.
 */
export function toNativePolicy(
  samples: readonly PolicyEvalSample[],
  requireAdvantages: boolean,
): { inputs: NativePolicyInputs; counts: number[] } {
  const counts = samples.map((s) => completionTokenCount(s));
  const total = counts.reduce((a, b) => a + b, 0);
  const flat = (key: "refLogprobs" | "oldLogprobs"): Float32Array | undefined => {
    const given = samples.filter((s) => s[key] !== undefined).length;
    if (given === 0) return undefined;
    if (given !== samples.length)
      throw new TypeError(
        `${key}: ${given} of ${samples.length} samples have them; give them for every sample or none`,
      );
    const out = new Float32Array(total);
    let off = 0;
    samples.forEach((s, i) => {
      checkPerToken(s[key]!, counts[i]!, `samples[${i}].${key}`, true);
      out.set(s[key]!, off);
      off += counts[i]!;
    });
    return out;
  };
  const advantages = new Float32Array(total);
  let off = 0;
  samples.forEach((s, i) => {
    const a = s.advantage;
    if (a === undefined) {
      if (requireAdvantages)
        throw new TypeError(`samples[${i}].advantage is missing: give a number or one per completion token`);
    } else if (typeof a === "number") {
      if (!Number.isFinite(a)) throw new RangeError(`samples[${i}].advantage must be a finite number, got ${a}`);
      advantages.fill(a, off, off + counts[i]!);
    } else {
      checkPerToken(a, counts[i]!, `samples[${i}].advantage`, false);
      advantages.set(a, off);
    }
    off += counts[i]!;
  });
  const ref = flat("refLogprobs");
  const old = flat("oldLogprobs");
  return {
    inputs: { advantages, ...(ref ? { refLogprobs: ref } : {}), ...(old ? { oldLogprobs: old } : {}) },
    counts,
  };
}

/** Splits per-completion-token values (flat, sample after sample) into one array per sample. */
export function splitPerSample(flat: Float32Array, counts: readonly number[]): Float32Array[] {
  let off = 0;
  return counts.map((n) => {
    const part = flat.slice(off, off + n);
    off += n;
    return part;
  });
}

/**
 * GRPO's advantages: each reward minus its group's mean, divided by the group's sample standard
 * deviation (Bessel-corrected, as TRL) plus 1e-4 when `scale` is "std" (the default; DeepSeekMath),
 * left unscaled when it is "none" (Dr. GRPO). Rewards come grouped: groups of `groupSize`
 * consecutive entries (the G completions of one prompt). A group whose rewards are all equal gets
 * advantages of 0.
 */
export function groupAdvantages(
  rewards: readonly number[],
  groupSize: number,
  scale: "std" | "none" = "std",
): Float64Array {
  if (!Number.isInteger(groupSize) || groupSize < 1)
    throw new RangeError(`groupSize must be a positive integer, got ${groupSize}`);
  if (rewards.length % groupSize !== 0)
    throw new RangeError(`${rewards.length} rewards do not split into groups of ${groupSize}`);
  const out = new Float64Array(rewards.length);
  for (let g = 0; g < rewards.length; g += groupSize) {
    const group = rewards.slice(g, g + groupSize);
    if (group.some((r) => !Number.isFinite(r)))
      throw new RangeError(`rewards ${g}..${g + groupSize - 1}: not all finite`);
    const mean = group.reduce((a, b) => a + b, 0) / groupSize;
    const std = groupSize > 1 ? Math.sqrt(group.reduce((a, r) => a + (r - mean) ** 2, 0) / (groupSize - 1)) : 0;
    group.forEach((r, k) => (out[g + k] = scale === "std" ? (r - mean) / (std + 1e-4) : r - mean));
  }
  return out;
}
