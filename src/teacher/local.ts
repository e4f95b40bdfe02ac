// A local GGUF teacher through node-llama-cpp's chat API: the model's own chat template, one
// context sequence, one request at a time (a fresh chat history per request). Slow next to a
// hosted reasoning model, but offline and free; use it when a capable local model is at hand.
import type { Llama, LlamaChatSession, LlamaContext, LlamaModel } from "node-llama-cpp";
import { existsSync } from "node:fs";
import type { Teacher, TeacherAnswer, TeacherRequest } from "./types.js";
import { allowedCpus } from "../util/cpus.js";

export interface LocalTeacherOptions {
  modelPath: string;
  temperature?: number;
  maxTokens?: number;
  contextSize?: number;
  /** CPU threads for evaluation (default: the CPUs this process may use, see src/util/cpus.ts). */
  threads?: number;
  gpuLayers?: number | "auto";
  /** Backend: "auto" picks CUDA/Vulkan/Metal when available; false forces the CPU. */
  gpu?: "auto" | false;
  /** Seed per request is seed + attempt, so retries differ yet runs repeat. */
  seed?: number;
}

export class LocalTeacher implements Teacher {
  readonly name = "local";
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly model: string,
    private readonly llama: Llama,
    private readonly llm: LlamaModel,
    private readonly context: LlamaContext,
    private readonly session: LlamaChatSession,
    private readonly o: LocalTeacherOptions,
  ) {}

  static async load(o: LocalTeacherOptions): Promise<LocalTeacher> {
    if (!existsSync(o.modelPath))
      throw new Error(`teacher model ${o.modelPath} not found; pass a GGUF file path with --model`);
    const { getLlama, LlamaChatSession, LlamaLogLevel } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: o.gpu ?? "auto", logLevel: LlamaLogLevel.error });
    const llm = await llama.loadModel({ modelPath: o.modelPath, gpuLayers: o.gpuLayers ?? "auto" });
    const context = await llm.createContext({
      contextSize: o.contextSize ?? 4096,
      threads: o.threads ?? allowedCpus(),
    });
    const session = new LlamaChatSession({ contextSequence: context.getSequence() });
    return new LocalTeacher(o.modelPath, llama, llm, context, session, o);
  }

  ask(req: TeacherRequest, signal?: AbortSignal): Promise<TeacherAnswer> {
    // One sequence: requests run one after another.
    const run = this.queue.then(async () => {
      this.session.resetChatHistory();
      const content = await this.session.prompt(req.prompt, {
        temperature: this.o.temperature ?? 0.7,
        maxTokens: this.o.maxTokens ?? 1024,
        seed: (this.o.seed ?? 0) + req.attempt,
        signal,
        stopOnAbortSignal: false,
      });
      return { content, model: this.model };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.queue;
    this.session.dispose();
    await this.context.dispose();
    await this.llm.dispose();
    await this.llama.dispose();
  }
}
