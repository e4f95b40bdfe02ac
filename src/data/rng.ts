// A seeded PRNG of our own (xoshiro128** seeded through splitmix32), written with Math.imul and
// 32-bit integer ops only, so the same seed gives the same stream on every Node version and
// platform. Independent streams are derived from (seed, label), so e.g. one user's candidates do
// not change when another user is added.

import { Xoshiro128, hashString } from "../util/xoshiro.js";

export { hashString };

export class Rng extends Xoshiro128 {
  /** A stream determined by `seed` and an optional `label` naming its purpose. */
  constructor(seed: number, label = "") {
    // The high part of large seeds is mixed in too, so seeds above 2^32 still differ.
    super(((Math.trunc(seed) ^ hashString(label)) ^ Math.trunc(seed / 2 ** 32)) | 0);
  }

  /** The next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    return this.nextU32();
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  next(): number {
    return this.uniform();
  }

  /** A uniform integer in [0, n), exact (rejection sampling, no modulo bias). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Shuffles `a` in place (Fisher–Yates) and returns it. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }

  /** `k` distinct elements of `a` in sampling order (partial Fisher–Yates on a copy). */
  sample<T>(a: readonly T[], k: number): T[] {
    const copy = a.slice();
    const n = Math.min(k, copy.length);
    for (let i = 0; i < n; i++) {
      const j = i + this.int(copy.length - i);
      const t = copy[i]!;
      copy[i] = copy[j]!;
      copy[j] = t;
    }
    return copy.slice(0, n);
  }

  /** An index drawn with probability proportional to `weights[i]` (non-negative, not all zero). */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    if (!(total > 0)) throw new Error("Rng.weighted: weights must have a positive sum");
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!;
      if (r < 0) return i;
    }
    return weights.length - 1;
  }
}
