// What line parsers produce. Plain data only: these cross the worker-thread boundary.
import type { Item } from "../types.js";

export interface ReviewRecord {
  kind: "review";
  user: string;
  item: string;
  /** Seconds since the epoch. */
  time: number;
  rating?: number;
}

export interface MetaRecord {
  kind: "meta";
  id: string;
  /** Undefined when the source has no usable title (the item is then dropped). */
  item?: Item;
}

export interface SequenceRecord {
  kind: "sequence";
  history: string[];
  next: string;
}

export type LineRecord = ReviewRecord | MetaRecord | SequenceRecord;

/** Helpers for line parsers: a field that must be there, with a message saying which. */
export function requireString(obj: Record<string, unknown>, key: string): string {
  const v = obj[key];
  if (typeof v === "string" && v.length > 0) return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  throw new Error(`field "${key}" is missing or not a non-empty string`);
}

export function requireNumber(obj: Record<string, unknown>, key: string): number {
  const v = obj[key];
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n === "number" && Number.isFinite(n)) return n;
  throw new Error(`field "${key}" is missing or not a number`);
}

export function optionalNumber(obj: Record<string, unknown>, key: string): number | undefined {
  return obj[key] === undefined || obj[key] === null ? undefined : requireNumber(obj, key);
}

export function parseJsonObject(line: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new Error(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("expected a JSON object");
  return v as Record<string, unknown>;
}
