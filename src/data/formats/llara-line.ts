// One line of LLaRA's processed split files: `{"history": [ids], "next": id}` (ids may be numbers).
import { parseJsonObject, type SequenceRecord } from "./records.js";

function asId(v: unknown, what: string): string {
  if (typeof v === "number" && Number.isInteger(v)) return String(v);
  if (typeof v === "string" && v.length > 0) return v;
  throw new Error(`${what} must be an item id (integer or string)`);
}

export function parseLlaraLine(line: string): SequenceRecord {
  const o = parseJsonObject(line);
  if (!Array.isArray(o.history)) throw new Error('field "history" is missing or not a list');
  return { kind: "sequence", history: o.history.map((v, i) => asId(v, `history[${i}]`)), next: asId(o.next, '"next"') };
}
