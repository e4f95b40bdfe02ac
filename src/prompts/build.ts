// Pure prompt builders: fill a template with a dataset name, a history and a candidate list, and
// format training targets. No I/O here, so the piscina workers and the main thread share it.

/** Reasoning markers of the training target (plain text, METHOD.md §3). */
export const REASONING_START = "[reasoning_start]";
export const REASONING_END = "[reasoning_end]";

export interface PromptContext {
  /** Domain name shown to the model, e.g. "movie" or "Electronics". */
  dataset: string;
  /** Titles of the items the user interacted with, oldest first (already truncated). */
  history: readonly string[];
  /** Candidate titles in display order. */
  candidates: readonly string[];
}

/** Titles as a quoted, comma-separated list: quotes keep titles with commas readable. */
export function formatTitleList(titles: readonly string[]): string {
  return titles.map((t) => `"${t}"`).join(", ");
}

/** Replaces every placeholder; the replacement text is inserted literally (no `$&` surprises). */
export function fillTemplate(template: string, ctx: PromptContext): string {
  const values: Record<string, string> = {
    "[dataset]": ctx.dataset,
    "[history]": formatTitleList(ctx.history),
    "[candidates]": formatTitleList(ctx.candidates),
  };
  return template.replace(/\[dataset\]|\[history\]|\[candidates\]/g, (p) => values[p]!);
}

/** `[reasoning_start]\n<steps 1–4>\n[reasoning_end] <title>`: the reasoning-enhanced target. */
export function formatTrainingTarget(reasoning: string, title: string): string {
  const r = reasoning.trim();
  if (r.length === 0) return formatBehaviorTarget(title);
  return `${REASONING_START}\n${r}\n${REASONING_END} ${title}`;
}

/** Behavior-only target: the markers with nothing between them, so y_rea is empty. */
export function formatBehaviorTarget(title: string): string {
  return `${REASONING_START}\n${REASONING_END} ${title}`;
}

/** Splits a target (or a generated output) at the markers; null parts when a marker is absent. */
export function splitTarget(text: string): { reasoning: string | null; recommendation: string | null } {
  const s = text.indexOf(REASONING_START);
  const e = text.indexOf(REASONING_END, s === -1 ? 0 : s + REASONING_START.length);
  if (e === -1) return { reasoning: null, recommendation: null };
  const reasoning = s === -1 ? null : text.slice(s + REASONING_START.length, e).trim();
  return { reasoning, recommendation: text.slice(e + REASONING_END.length).trim() };
}
