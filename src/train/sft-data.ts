// Reads SFT data: JSON lines {"prompt", "reasoning", "recommendation"} (reasoning may be empty
// for behavior-only samples). Errors name the file and line.
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { SftRecord } from "./samples.js";

const SftLine = z.object({
  prompt: z.string().min(1),
  reasoning: z.string().default(""),
  recommendation: z.string().min(1),
});

export function parseSftJsonl(text: string, source = "<input>"): SftRecord[] {
  const out: SftRecord[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(
        `${source}:${i + 1}: not valid JSON; each line must be {"prompt", "reasoning", "recommendation"}`,
      );
    }
    const r = SftLine.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new Error(
        `${source}:${i + 1}: ${issue?.path.join(".") || "line"}: ${issue?.message ?? "invalid"} (need a non-empty prompt and recommendation; reasoning may be "")`,
      );
    }
    out.push(r.data);
  });
  return out;
}

export function readSftJsonl(path: string): SftRecord[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`cannot read the SFT data ${path}: ${(e as Error).message}`);
  }
  const rows = parseSftJsonl(text, path);
  if (rows.length === 0) throw new Error(`${path} has no samples`);
  return rows;
}
