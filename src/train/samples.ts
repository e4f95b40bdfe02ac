// SFT samples (METHOD.md §3): {prompt, reasoning, recommendation} strings become tokens with a
// role per token. The output the model learns is
//   [reasoning_start] <reasoning> [reasoning_end] <recommendation> EOS
// prompt tokens (with BOS) and the start marker carry no loss, the reasoning tokens strictly
// between the markers form y_rea, and y_rec runs from `[reasoning_end]` (included) to EOS.
// A sample with empty reasoning is behavior-only: its output is just `<recommendation> EOS`, all
// of it y_rec. The markers are plain text (no new vocabulary entries).

export const REASONING_START = "[reasoning_start]";
export const REASONING_END = "[reasoning_end]";

/** Token roles; the numeric codes are what the native trainer reads. */
export const Segment = { prompt: 0, reasoning: 1, recommendation: 2 } as const;
export type SegmentCode = (typeof Segment)[keyof typeof Segment];

export interface SftRecord {
  prompt: string;
  reasoning: string;
  recommendation: string;
}

/** A sample as token ids with one segment code per token. */
export interface TokenizedSample {
  tokens: Int32Array;
  segments: Uint8Array;
}

export type TrainSample = TokenizedSample | SftRecord;

export interface SampleTokenizer {
  tokenize(text: string, opts?: { addBos?: boolean; special?: boolean }): Int32Array;
  /** End-of-sequence token id appended after the recommendation. */
  readonly eosToken: number;
}

export function isTokenized(s: TrainSample): s is TokenizedSample {
  return (s as TokenizedSample).tokens instanceof Int32Array;
}

/** Tokenizes one record; pieces are tokenized separately so the roles are exact. */
export function tokenizeSample(tok: SampleTokenizer, r: SftRecord): TokenizedSample {
  if (typeof r.prompt !== "string" || typeof r.reasoning !== "string" || typeof r.recommendation !== "string") {
    throw new Error("an SFT sample needs string fields prompt, reasoning and recommendation (reasoning may be empty)");
  }
  if (r.recommendation.trim() === "") throw new Error("an SFT sample has an empty recommendation; every sample needs one");
  const parts: [Int32Array, number][] = [[tok.tokenize(r.prompt, { addBos: true }), Segment.prompt]];
  if (r.reasoning.trim() !== "") {
    parts.push([tok.tokenize(REASONING_START, { addBos: false }), Segment.prompt]);
    parts.push([tok.tokenize(r.reasoning.trim(), { addBos: false }), Segment.reasoning]);
    parts.push([tok.tokenize(`${REASONING_END} ${r.recommendation.trim()}`, { addBos: false }), Segment.recommendation]);
  } else {
    parts.push([tok.tokenize(r.recommendation.trim(), { addBos: false }), Segment.recommendation]);
  }
  parts.push([Int32Array.of(tok.eosToken), Segment.recommendation]);
  const n = parts.reduce((a, [t]) => a + t.length, 0);
  const tokens = new Int32Array(n);
  const segments = new Uint8Array(n);
  let off = 0;
  for (const [t, s] of parts) {
    tokens.set(t, off);
    segments.fill(s, off, off + t.length);
    off += t.length;
  }
  return { tokens, segments };
}

/** The flat layout the native trainer takes: samples end to end plus their lengths. */
export interface NativeBatch {
  tokens: Int32Array;
  lengths: Int32Array;
  segments: Uint8Array;
}

export function toNativeBatch(samples: readonly TokenizedSample[]): NativeBatch {
  const n = samples.reduce((a, s) => a + s.tokens.length, 0);
  const out: NativeBatch = { tokens: new Int32Array(n), lengths: new Int32Array(samples.length), segments: new Uint8Array(n) };
  let off = 0;
  samples.forEach((s, i) => {
    if (s.segments.length !== s.tokens.length) throw new Error(`sample ${i}: segments must have one entry per token`);
    out.tokens.set(s.tokens, off);
    out.segments.set(s.segments, off);
    out.lengths[i] = s.tokens.length;
    off += s.tokens.length;
  });
  return out;
}
