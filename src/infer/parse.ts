// Turns one generated output into (reasoning, answer, chosen candidate). The fine-tuned model
// writes `[reasoning_start] … [reasoning_end] <title>`; the answer is the text after the end
// marker, matched to the candidates with LLaRA's rule. Without an end marker the whole text is
// both the reasoning and the answer (the base model zero-shot, a truncated output): LLaRA's rule
// then decides validity on all of it, exactly as LLaRA scores free-form answers.
import { REASONING_END, REASONING_START } from "../prompts/build.js";
import { matchTitle } from "../eval/title-match.js";

export interface ParsedOutput {
  /** Text before the answer: between the markers, or all of it when there is no end marker. */
  reasoning: string;
  /** What LLaRA's rule is applied to. */
  answer: string;
  /** Index of the single candidate named by the answer, or -1. */
  choiceIndex: number;
  /** Character offset of the reasoning inside the generated text (for PPL conditioning). */
  reasoningStart: number;
}

export function parseOutput(text: string, candidateTitles: readonly string[]): ParsedOutput {
  const end = text.indexOf(REASONING_END);
  let reasoning: string;
  let answer: string;
  let reasoningStart = 0;
  if (end === -1) {
    reasoning = text;
    answer = text;
  } else {
    const start = text.lastIndexOf(REASONING_START, end);
    reasoningStart = start === -1 ? 0 : start + REASONING_START.length;
    reasoning = text.slice(reasoningStart, end);
    answer = text.slice(end + REASONING_END.length);
  }
  // Leading whitespace belongs to the prefix, so the scored continuation starts at a word.
  const lead = reasoning.length - reasoning.trimStart().length;
  reasoningStart += lead;
  reasoning = reasoning.trim();
  const m = matchTitle(answer, candidateTitles);
  return { reasoning, answer: answer.trim(), choiceIndex: m.index, reasoningStart };
}

/**
 * A GBNF grammar whose only sentences are the candidate titles (constrained final answer), with
 * an optional leading space: after `[reasoning_end]` the title's first token carries one.
 */
export function candidateGrammar(candidateTitles: readonly string[]): string {
  if (candidateTitles.length === 0) throw new Error("candidateGrammar needs at least one candidate title");
  const lit = (s: string) =>
    `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r")}"`;
  return `root ::= " "? (${candidateTitles.map(lit).join(" | ")})\n`;
}
