// Small seeded generators for tests (mulberry32): random logits and random training samples.
import { Segment, type TokenizedSample } from "../../src/train/samples.js";

/** Uniform floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random sample: `p` prompt tokens (BOS first), `r` reasoning, `c` recommendation tokens. */
export function randomSample(seed: number, p: number, r: number, c: number, vocab = 32000): TokenizedSample {
  const rand = mulberry32(seed);
  const n = p + r + c;
  const tokens = Int32Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 3 + Math.floor(rand() * (vocab - 3))));
  const segments = Uint8Array.from({ length: n }, (_, i) => (i < p ? Segment.prompt : i < p + r ? Segment.reasoning : Segment.recommendation));
  return { tokens, segments };
}
