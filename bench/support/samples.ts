// Seeded random training samples for the training benchmarks: the first token is BOS, the first
// half of each sample is prompt, then a quarter reasoning and a quarter recommendation.
import { Segment, type TokenizedSample } from "../../src/engine/train-batch.js";

export function randomTrainSamples(n: number, len: number, vocab: number): TokenizedSample[] {
  const out: TokenizedSample[] = [];
  let s = 12345;
  for (let i = 0; i < n; i++) {
    const tokens = Int32Array.from({ length: len }, (_, j) => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return j === 0 ? 1 : 3 + (s % (vocab - 3));
    });
    const segments = Uint8Array.from({ length: len }, (_, j) =>
      j < len / 2 ? Segment.prompt : j < (3 * len) / 4 ? Segment.reasoning : Segment.recommendation,
    );
    out.push({ tokens, segments });
  }
  return out;
}
