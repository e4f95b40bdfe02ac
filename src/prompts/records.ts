// Prompt records as JSON lines: the unit the piscina workers produce and `msr-rec prompts` writes.
// Pure functions shared by the worker and the single-threaded path, so both give the same bytes.
import { fillTemplate } from "./build.js";
import type { PromptSample, Split } from "./dataset.js";
import type { PromptKind } from "./templates.js";

/** One line of a prompts file. */
export interface PromptRecord {
  user: string;
  split: Split;
  kind: PromptKind;
  prompt: string;
  /** Candidate titles in prompt order, and the ground truth's index and title. */
  candidates: string[];
  targetIndex: number;
  target: string;
  /** Prompt length in tokens, when a tokenizer was given. */
  tokens?: number;
}

/** What every chunk of a run shares: sent to each worker once. */
export interface PromptSetup {
  dataset: string;
  kind: PromptKind;
  template: string;
  /** Item id → title. */
  titles: Map<string, string>;
}

function title(setup: PromptSetup, id: string): string {
  const t = setup.titles.get(id);
  if (t === undefined) throw new Error(`item ${id} has no title in items.jsonl; re-run the prepare step`);
  return t;
}

export function promptRecord(setup: PromptSetup, s: PromptSample): PromptRecord {
  const candidates = s.candidates.map((id) => title(setup, id));
  const prompt = fillTemplate(setup.template, {
    dataset: setup.dataset,
    history: s.history.map((id) => title(setup, id)),
    candidates,
  });
  return {
    user: s.user,
    split: s.split,
    kind: setup.kind,
    prompt,
    candidates,
    targetIndex: s.targetIndex,
    target: candidates[s.targetIndex]!,
  };
}

/** Records for a chunk of samples as JSON lines, each ending in "\n". */
export function promptJsonl(setup: PromptSetup, samples: readonly PromptSample[]): string {
  let out = "";
  for (const s of samples) out += JSON.stringify(promptRecord(setup, s)) + "\n";
  return out;
}

/** Adds `tokens` to every line of a JSONL chunk (tokenizers live on the main thread). */
export function withTokenCounts(jsonl: string, countTokens: (text: string) => number): string {
  let out = "";
  for (const line of jsonl.split("\n")) {
    if (line === "") continue;
    const r = JSON.parse(line) as PromptRecord;
    r.tokens = countTokens(r.prompt);
    out += JSON.stringify(r) + "\n";
  }
  return out;
}
