// What the trainer learns from: token ids with one loss segment per token, and the flat layout
// the native trainer reads. Segments are the engine's whole view of a sample's structure: prompt
// tokens carry no loss, and the loss is α · (mean NLL of the reasoning tokens) + β · (mean NLL
// of the recommendation tokens). Which text becomes which segment is the method's business
// (src/train/samples.ts); the engine never sees strings or markers.

/** Token roles; the numeric codes are what the native trainer reads. */
export const Segment = { prompt: 0, reasoning: 1, recommendation: 2 } as const;
export type SegmentCode = (typeof Segment)[keyof typeof Segment];

/** A sample as token ids with one segment code per token. */
export interface TokenizedSample {
  tokens: Int32Array;
  segments: Uint8Array;
}

/** The flat layout the native trainer takes: samples end to end plus their lengths. */
export interface NativeBatch {
  tokens: Int32Array;
  lengths: Int32Array;
  segments: Uint8Array;
}

export function toNativeBatch(samples: readonly TokenizedSample[]): NativeBatch {
  const n = samples.reduce((a, s) => a + s.tokens.length, 0);
  const out: NativeBatch = {
    tokens: new Int32Array(n),
    lengths: new Int32Array(samples.length),
    segments: new Uint8Array(n),
  };
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
