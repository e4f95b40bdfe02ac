// Model: a loaded GGUF (llama.cpp) with tokenization, LoRA adapters, scorers and generation.
import {
  native,
  type NativeGenerateOptions,
  type NativeGenerateProfile,
  type NativeModel,
  type NativeModelInfo,
  type NativeNumerics,
  type TokenArray,
} from "./bindings.js";
import { LoraAdapter, toNativeLora, type LoraChoice } from "./lora.js";
import { SerialQueue } from "./queue.js";
import { Scorer, type ScorerOptions } from "./scorer.js";
import { allowedCpus } from "../util/cpus.js";
import { inputFile } from "../util/file-args.js";
import {
  createTrainer as newTrainer,
  openTrainer as openNewTrainer,
  type Trainer,
  type TrainerOptions,
} from "./trainer.js";

export interface LoadModelOptions {
  /** CPU threads for decoding (default: the CPUs this process may use, see src/util/cpus.ts). */
  threads?: number;
  /** Layers to offload to the GPU in a CUDA build (default 0). */
  gpuLayers?: number;
  /**
   * Load only the tokenizer (no weights: fast, a few MB): tokenize / detokenize / tokenPieces /
   * info work, anything that runs the model is refused. Used by tokenizing worker threads.
   */
  vocabOnly?: boolean;
  /**
   * false: keep quantized weights as stored instead of llama.cpp's CPU repacking (which speeds up
   * Q4_0/Q4_K/IQ4_NL scoring). A trainer on a repacked model keeps its own copy of those weights
   * (they cannot be read back), so training loads use false (msr-rec train does). Default true.
   */
  repack?: boolean;
  /**
   * false: read the weights into memory instead of mapping the file (default true: mapped, shared
   * with other processes and loaded lazily). A mapped model file that is replaced or truncated on
   * disk while the model is loaded kills the process (docs/engine.md, "Hazards"); load with
   * mmap: false where files may change under a running process.
   */
  mmap?: boolean;
  /**
   * The numerics of this model's scorers and generate calls when they do not name one (see
   * NativeNumerics: "invariant", the CPU default, or "fast"). A model whose repacked weights break
   * invariance on this CPU needs `repack: false` or "fast" (the error says so).
   */
  numerics?: NativeNumerics;
}

export type ModelInfo = NativeModelInfo;

/** Generation options (see NativeGenerateOptions for each field), with adapters as LoraAdapter objects. */
export interface GenerateOptions extends Omit<NativeGenerateOptions, "lora"> {
  lora?: readonly LoraChoice[];
}

export interface GenerateResult {
  text: string;
  tokens: Int32Array;
  finishReason: "eos" | "stop" | "length";
  /** With the `logprobs` option: each token's log-prob under the model (see NativeGenerateOptions.logprobs). */
  tokenLogprobs?: Float32Array;
}

/** Where a generate call's time went (its `profile` option): see NativeGenerateProfile. */
export type GenerateProfile = NativeGenerateProfile;

export class Model {
  #native: NativeModel | undefined;
  readonly #queue = new SerialQueue();
  readonly info: ModelInfo;
  readonly #numerics: NativeNumerics | undefined;

  private constructor(handle: NativeModel, numerics: NativeNumerics | undefined) {
    this.#native = handle;
    this.#numerics = numerics;
    this.info = handle.info();
  }

  /** @internal */
  static async load(path: string, options: LoadModelOptions = {}): Promise<Model> {
    inputFile(path, "loadModel", "model file");
    const { numerics, ...load } = options;
    return new Model(
      await native().loadModel(path, {
        ...load,
        threads: load.threads ?? Math.min(allowedCpus(), 512 /* native kMaxThreads */),
      }),
      numerics,
    );
  }

  tokenize(text: string, options: { addBos?: boolean; special?: boolean } = {}): Int32Array {
    return this.handle().tokenize(text, options);
  }

  detokenize(tokens: TokenArray, options: { special?: boolean } = {}): string {
    return this.handle().detokenize(tokens, options);
  }

  tokenPieces(tokens: TokenArray): string[] {
    return this.handle().tokenPieces(tokens);
  }

  async loadLora(path: string): Promise<LoraAdapter> {
    inputFile(path, "loadLora", "adapter file");
    const h = this.handle();
    return new LoraAdapter(await this.#queue.run(() => h.loadLora(path)), path);
  }

  createScorer(options: ScorerOptions = {}): Scorer {
    const withDefault =
      options.numerics === undefined && this.#numerics ? { ...options, numerics: this.#numerics } : options;
    return new Scorer(this, new (native().Scorer)(this.handle(), withDefault));
  }

  /** A LoRA (default) or full-weight trainer on this model; see src/engine/trainer.ts. */
  createTrainer(options: TrainerOptions = {}): Trainer {
    return newTrainer(this, options);
  }

  /** createTrainer off the JS thread: the event loop keeps running while the trainer is built. */
  openTrainer(options: TrainerOptions = {}): Promise<Trainer> {
    return openNewTrainer(this, options);
  }

  /** Generates a continuation for every prompt (strings are tokenized with BOS). */
  async generate(
    prompts: readonly (string | TokenArray)[],
    options: GenerateOptions = {},
  ): Promise<GenerateResult[] & { profile?: GenerateProfile }> {
    if (!Array.isArray(prompts)) throw new TypeError("generate() takes an array of prompts");
    const toks = prompts.map((p) => (typeof p === "string" ? this.tokenize(p) : p));
    const { lora, ...rest } = options;
    if (rest.numerics === undefined && this.#numerics) rest.numerics = this.#numerics;
    const h = this.handle();
    return this.#queue.run(() => h.generate(toks, { ...rest, lora: toNativeLora(lora) }));
  }

  /**
   * Contextual token embeddings: for each text, the last layer's hidden state of every token after
   * the final norm ([tokens × embeddingSize], row-major), each text encoded on its own. Strings
   * are tokenized with BOS (its row comes first).
   */
  async embed(
    texts: readonly (string | TokenArray)[],
    options: { batchTokens?: number } = {},
  ): Promise<Float32Array[]> {
    if (!Array.isArray(texts)) throw new TypeError("embed() takes an array of texts");
    const toks = texts.map((t) => (typeof t === "string" ? this.tokenize(t) : t));
    const h = this.handle();
    return this.#queue.run(() => h.embed(toks, options));
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  /** Releases the model. Idempotent; later calls on it (or its scorers) throw. */
  dispose(): void {
    this.#native?.dispose();
    this.#native = undefined;
  }

  /**
   * @internal Runs a native call after every call queued before it on this model or any of its
   * scorers. All of them share the model's lock natively; queueing them here instead means a
   * waiting call holds a promise, not a thread-pool thread blocked on that lock (which would starve
   * fs, dns and zlib).
   */
  enqueue<T>(op: () => Promise<T>): Promise<T> {
    return this.#queue.run(op);
  }

  /** @internal The native handle, for other engine objects (scorers, trainers). */
  handle(): NativeModel {
    if (!this.#native) throw new Error("the model was disposed; load it again with loadModel()");
    return this.#native;
  }
}

/** Loads a GGUF model (LLaMA family) for scoring, generation and LoRA work. */
export function loadModel(path: string, options: LoadModelOptions = {}): Promise<Model> {
  return Model.load(path, options);
}
