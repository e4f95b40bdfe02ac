// Parses a chunk of lines (UTF-8 bytes) with one line parser: the unit of work both on the main thread and in
// the piscina workers (parse-worker.ts), so the two paths cannot disagree. A line that fails
// becomes an error entry with its line number; the caller decides whether to throw or skip.
import { parseAmazon2014Meta, parseAmazon2014Review } from "./amazon2014.js";
import { parseAmazon2018Meta, parseAmazon2018Review } from "./amazon2018.js";
import { parseAmazon2023Meta, parseAmazon2023Review } from "./amazon2023.js";
import { parseLlaraLine } from "./llara-line.js";
import type { LineRecord } from "./records.js";

export type LineKind =
  | "amazon2014-review"
  | "amazon2014-meta"
  | "amazon2018-review"
  | "amazon2018-meta"
  | "amazon2023-review"
  | "amazon2023-meta"
  | "llara";

export interface ChunkTask {
  kind: LineKind;
  /** 1-based line number of the chunk's first line in its file. */
  firstLine: number;
  /** UTF-8 bytes of whole lines (see readByteChunks). */
  bytes: Uint8Array;
}

export interface ChunkResult {
  records: LineRecord[];
  /** Line number of each record, parallel to `records`. */
  lineNumbers: number[];
  errors: { line: number; message: string }[];
}

// A switch, not a table built at load time, so import cycles can never see it half-initialised.
function parserFor(kind: LineKind): (line: string) => LineRecord {
  switch (kind) {
    case "amazon2014-review":
      return parseAmazon2014Review;
    case "amazon2014-meta":
      return parseAmazon2014Meta;
    case "amazon2018-review":
      return parseAmazon2018Review;
    case "amazon2018-meta":
      return parseAmazon2018Meta;
    case "amazon2023-review":
      return parseAmazon2023Review;
    case "amazon2023-meta":
      return parseAmazon2023Meta;
    case "llara":
      return parseLlaraLine;
    default:
      throw new Error(`unknown line kind "${kind as string}"`);
  }
}

const decoder = new TextDecoder("utf-8");

export function parseChunk(task: ChunkTask): ChunkResult {
  const parse = parserFor(task.kind);
  const out: ChunkResult = { records: [], lineNumbers: [], errors: [] };
  const lines = decoder.decode(task.bytes).split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  lines.forEach((raw, j) => {
    const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (text.trim() === "") return;
    const line = task.firstLine + j;
    try {
      out.records.push(parse(text));
      out.lineNumbers.push(line);
    } catch (e) {
      out.errors.push({ line, message: e instanceof Error ? e.message : String(e) });
    }
  });
  return out;
}
