// What every crash-corpus file shares: the fixtures the parent makes, the shape of a case, and
// small helpers to run one on the tiny model.
import { loadModel, type Model } from "../../src/engine/index.js";
import type { DamagedFiles } from "./crash-fixtures.js";

/** Files the parent makes before the children start (generated models and damaged files). */
export interface Fixtures {
  model: string;
  lora: string;
  /** adapter.lora.alpha stored as u32 instead of f32. */
  loraAlphaU32: string;
  /** general.type stored as u32 instead of a string. */
  loraTypeU32: string;
  /** A tensor whose header claims far more data than the file holds. */
  loraHugeTensor: string;
  /** Q4_0 weights, which llama.cpp repacks into CPU-only buffers on x86 (Llama 3 layout). */
  quantized: string;
  /** Q, K and V in one attn_qkv weight (llama.cpp loads it; the layers have no attn_q). */
  fusedQkv: string;
  /** Files damaged in the ways llama.cpp asserts or crashes on (crash-fixtures.ts). */
  damaged: DamagedFiles;
  dir: string;
}

export interface CrashCase {
  run: (f: Fixtures) => Promise<unknown>;
  /** The error the case must end with; absent = it must resolve. */
  error?: RegExp;
  /** For resolving cases: throws if the value is wrong. */
  check?: (value: unknown) => void;
}

export const TINY = { threads: 1 };

export async function withModel<T>(f: Fixtures, fn: (m: Model) => Promise<T>): Promise<T> {
  const m = await loadModel(f.model, TINY);
  try {
    return await fn(m);
  } finally {
    m.dispose();
  }
}

export function assertFinite(values: Iterable<number>, what: string): void {
  for (const v of values) if (!Number.isFinite(v)) throw new Error(`returned silently: ${what} ${v}`);
}

/** A copy of `values` whose element `index` runs `onRead` each time it is read (then reads as before). */
export function withGetter<T>(values: readonly T[], index: number, onRead: () => void): T[] {
  const a = [...values];
  Object.defineProperty(a, index, {
    get() {
      onRead();
      return values[index];
    },
    enumerable: true,
  });
  return a;
}
