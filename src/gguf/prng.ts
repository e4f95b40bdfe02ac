// Deterministic random numbers for generated weights: xoshiro128** seeded through splitmix32,
// Gaussian samples by Box–Muller. 32-bit integer arithmetic only (Math.imul), so it is fast in
// JS and gives the same stream on every platform and Node version.

import { Xoshiro128, hashString } from "../util/xoshiro.js";

export { hashString };

export class Rng extends Xoshiro128 {
  private spare: number | undefined;

  /** `seed` is any safe integer; `stream` separates independent sequences for the same seed. */
  constructor(seed: number, stream = 0) {
    if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    super(lo ^ Math.imul(hi, 0x27d4eb2f) ^ Math.imul(stream >>> 0, 0x165667b1));
  }

  /** Standard normal sample (Box–Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log stays finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** Fills a new Float32Array with N(0, std²) samples. */
  normalArray(n: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * std;
    return out;
  }
}
