// Builds the teacher a command asked for. The LLM teachers are imported lazily so the rules
// teacher (the offline demo path) loads nothing it does not need.
import type { PreparedDataset } from "../prompts/dataset.js";
import { RulesTeacher } from "./rules.js";
import type { Teacher } from "./types.js";

export type TeacherKind = "openai" | "local" | "rules";

export interface TeacherConfig {
  kind: TeacherKind;
  dataset: PreparedDataset;
  baseUrls?: string[];
  /** Endpoint model name, or the GGUF path for the local teacher. */
  model?: string;
  apiKeyEnv?: string;
  concurrency?: number;
  temperature?: number;
  maxTokens?: number;
}

export async function createTeacher(c: TeacherConfig): Promise<Teacher> {
  if (c.kind === "rules") return new RulesTeacher(c.dataset.items, c.dataset.users);
  if (!c.model)
    throw new Error(
      `--model is required for --teacher ${c.kind} (${c.kind === "local" ? "a GGUF file path" : "the endpoint's model name"})`,
    );
  if (c.kind === "local") {
    const { LocalTeacher } = await import("./local.js");
    return LocalTeacher.load({ modelPath: c.model, temperature: c.temperature, maxTokens: c.maxTokens });
  }
  const urls = c.baseUrls ?? [];
  if (urls.length === 0)
    throw new Error(
      "--base-url is required for --teacher openai (e.g. https://api.deepseek.com or http://127.0.0.1:8000/v1)",
    );
  const { OpenAIChatClient, OpenAITeacher } = await import("./openai.js");
  const client = new OpenAIChatClient({
    endpoints: urls.map((baseUrl) => ({
      baseUrl,
      model: c.model!,
      apiKeyEnv: c.apiKeyEnv,
      concurrency: c.concurrency,
    })),
  });
  return new OpenAITeacher(client, { temperature: c.temperature, maxTokens: c.maxTokens, model: c.model });
}
