// The prompt templates (METHOD.md §2–4) live as editable text files in ./templates, one per kind,
// with the placeholders [dataset], [history] and [candidates]. This module reads and checks them;
// filling them is the pure job of build.ts.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../util/paths.js";

export const PROMPT_KINDS = ["teacher", "train", "user", "item", "full"] as const;
export type PromptKind = (typeof PROMPT_KINDS)[number];
export type PromptTemplates = Record<PromptKind, string>;

export const PLACEHOLDERS = ["[dataset]", "[history]", "[candidates]"] as const;

/** The shipped templates folder (src/prompts/templates, also in the published package). */
export function defaultTemplatesDir(): string {
  return join(packageRoot, "src", "prompts", "templates");
}

export function isPromptKind(s: string): s is PromptKind {
  return (PROMPT_KINDS as readonly string[]).includes(s);
}

/** Throws when a template lacks one of the placeholders (a prompt without history is useless). */
export function checkTemplate(kind: string, text: string): void {
  const missing = PLACEHOLDERS.filter((p) => !text.includes(p));
  if (missing.length > 0) {
    throw new Error(
      `prompt template "${kind}" lacks ${missing.join(", ")}; every template must contain ${PLACEHOLDERS.join(", ")}`,
    );
  }
}

/** Reads `<dir>/<kind>.txt` for every kind (trailing whitespace dropped) and checks each. */
export function loadTemplates(dir: string = defaultTemplatesDir()): PromptTemplates {
  const out = {} as PromptTemplates;
  for (const kind of PROMPT_KINDS) {
    const file = join(dir, `${kind}.txt`);
    if (!existsSync(file))
      throw new Error(
        `prompt template ${file} not found; a templates folder needs ${PROMPT_KINDS.map((k) => k + ".txt").join(", ")}`,
      );
    const text = readFileSync(file, "utf8").replace(/\s+$/, "");
    checkTemplate(kind, text);
    out[kind] = text;
  }
  return out;
}

/**
 * The TALLRec baseline's prompt (Bao et al. 2023): their Alpaca layout (instruction, input,
 * response), with the "choose one candidate" instruction LLaRA's comparison gives it in place of
 * TALLRec's yes/no question about one item, so that HitRatio@1 and ValidRatio apply. The response
 * starts on the line after `### Response:`. Not one of PROMPT_KINDS: a templates folder of the
 * method's own prompts needs no baseline's.
 */
export function loadTallrecTemplate(dir: string = defaultTemplatesDir()): string {
  const file = join(dir, "tallrec.txt");
  const text = readFileSync(existsSync(file) ? file : join(defaultTemplatesDir(), "tallrec.txt"), "utf8").replace(
    /\s+$/,
    "",
  );
  checkTemplate("tallrec", text);
  return `${text}\n`;
}
