// Every seeded random number in the project comes from here: one string hash (FNV-1a) and two
// generators, each written with Math.imul and 32-bit integer ops only, so a seed gives the same
// stream on every platform and Node version.
//   Rng          xoshiro128** seeded through splitmix32, with sampling methods: the data protocol,
//                the synthetic catalog, train-split negatives, pretraining exercises, the random
//                baseline and generated weights (Gaussian by Box–Muller).
//   mulberry32   a one-word generator: the training loop's epoch order and the rule teacher's
//                retries. Kept beside Rng rather than replaced by it because finished runs and
//                their tests depend on its exact stream.
// Independent streams are derived from (seed, purpose), so e.g. one user's candidates do not
// change when another user is added.

/** FNV-1a over the UTF-16 code units of `s`: a stable 32-bit hash for stream seeds and shards. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** mulberry32: uniform floats in [0, 1) from one 32-bit seed word. */
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

/**
 * The 32-bit seed word of a stream. A string `label` names a purpose ("users",
 * `candidates:${user}` ...); a number is a stream index (generated weights pass a hash of the
 * tensor name). Both mix in the high part of seeds above 2^32, so such seeds still differ.
 */
function seedWord(seed: number, label: string | number): number {
  if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  if (typeof label === "string") return (seed ^ hashString(label) ^ Math.trunc(seed / 2 ** 32)) | 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  return (seed >>> 0) ^ Math.imul(hi, 0x27d4eb2f) ^ Math.imul(label >>> 0, 0x165667b1);
}

/** xoshiro128** seeded through splitmix32, with the sampling methods the project uses. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | undefined;

  /** A stream determined by `seed` and what it is for (see seedWord). */
  constructor(seed: number, label: string | number = "") {
    // The four state words are four splitmix32 outputs starting from the seed word.
    let x = seedWord(seed, label) | 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** The next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A uniform integer in [0, n), exact (rejection sampling, no modulo bias). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296)
      throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
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

  /** Standard normal sample (Box–Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u1 = 1 - this.next(); // (0, 1]: log stays finite
    const u2 = this.next();
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

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
