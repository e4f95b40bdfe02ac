// What every teacher (remote chat API, local GGUF model, rule-based) looks like to the
// synthesis loop: a prompt in, a raw answer out. Parsing and pruning happen elsewhere, after the
// answer is safely stored.
import type { PromptSample } from "../prompts/dataset.js";

export interface TeacherRequest {
  /** Stable id of this (split, user, attempt); the answer store is keyed by it. */
  key: string;
  prompt: string;
  sample: PromptSample;
  /** 0-based attempt number for this sample. */
  attempt: number;
}

export interface TeacherAnswer {
  /** The answer proper (the five-step chain). */
  content: string;
  /** A hidden chain some APIs return beside the answer (DeepSeek's `reasoning_content`). */
  reasoningContent?: string;
  /** The model that answered, when known. */
  model?: string;
}

export interface Teacher {
  /** "openai", "local" or "rules": written into every output line. */
  readonly name: string;
  readonly model: string;
  ask(req: TeacherRequest, signal?: AbortSignal): Promise<TeacherAnswer>;
  close?(): Promise<void>;
}
