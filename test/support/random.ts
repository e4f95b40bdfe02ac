// Small seeded generators for tests (the project's mulberry32): random logits and random training samples.
import { Segment, type TokenizedSample } from "../../src/engine/train-batch.js";
import { mulberry32 } from "../../src/util/random.js";

export { mulberry32 };

/** A random sample: `p` prompt tokens (BOS first), `r` reasoning, `c` recommendation tokens. */
export function randomSample(seed: number, p: number, r: number, c: number, vocab = 32000): TokenizedSample {
  const rand = mulberry32(seed);
  const n = p + r + c;
  const tokens = Int32Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 3 + Math.floor(rand() * (vocab - 3))));
  const segments = Uint8Array.from({ length: n }, (_, i) =>
    i < p ? Segment.prompt : i < p + r ? Segment.reasoning : Segment.recommendation,
  );
  return { tokens, segments };
}
