// The piscina worker: parses one chunk of lines (see parse-chunk.ts) off the main thread.
import { parseChunk, type ChunkResult, type ChunkTask } from "./parse-chunk.js";

export default function parseChunkTask(task: ChunkTask): ChunkResult {
  return parseChunk(task);
}
