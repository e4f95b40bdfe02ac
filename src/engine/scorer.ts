// Batched log-prob scoring: log P(continuation | prompt) per token, in as few decodes as fit.
// Prompts are tokenized with the model's BOS rule, continuations without BOS (so the prompt's
// tokenization never shifts); pass token arrays to control tokenization yourself.
import type {
  NativeKvLayout,
  NativeNumerics,
  NativeScoreProfile,
  NativeScorer,
  NativeScoreRequest,
  TokenArray,
} from "./bindings.js";
import { toNativeLora, type LoraChoice } from "./lora.js";
import type { Model } from "./model.js";

export interface ScoreRequest {
  prompt: string | TokenArray;
  continuation: string | TokenArray;
}

export interface ScoreResult {
  /** log P of each continuation token given everything before it. */
  tokenLogprobs: Float32Array;
  /** Sum of tokenLogprobs. */
  logprob: number;
  /** exp(-mean(tokenLogprobs)). */
  ppl: number;
}

/** Where a score call's time went: see NativeScoreProfile. */
export type ScoreProfile = NativeScoreProfile;

export interface ScoreOptions {
  lora?: readonly LoraChoice[];
  /** Add the call's timings (decode, log-prob reduction, the rest) to the results as `results.profile`. */
  profile?: boolean;
}

export interface ScorerOptions {
  /** KV cells shared by all sequences of one wave (default 2048). */
  contextSize?: number;
  /** Sequences decoded together (default 32). */
  sequences?: number;
  /** Tokens per llama_decode call (default 512). */
  batchSize?: number;
  /**
   * Most KV cells one wave fills before the next starts (default max(batchSize, min(contextSize,
   * 4 × embedding size))): every token of a wave attends over the wave's cells, so narrow models
   * score faster in shorter waves. Results do not depend on it.
   */
  waveTokens?: number;
  /**
   * KV cache layout (default "auto"). "unified": one cache all sequences of a wave share (a shared
   * prompt is evaluated once for all its continuations), but every token attends over all of the
   * wave's cells. "per-sequence": one KV stream per request (llama.cpp's kv_unified = false), as
   * many streams of (longest request, rounded up to 256 cells) as contextSize holds, so a token
   * attends over its own request only; a shared prompt is then evaluated once per request.
   * "auto" picks per call: per-sequence when no two requests share a prompt and at least two
   * streams fit, unified otherwise. The scorer holds one context at a time (the same KV memory
   * either way) and remakes it when a call needs the other layout or longer streams. With
   * invariant numerics results do not depend on the layout, bit for bit.
   */
  kvLayout?: NativeKvLayout;
  /**
   * "invariant" (default on the CPU): a request's scores are bitwise the same whatever else is in
   * the call, its waves, batches, layout and thread count. "fast": llama.cpp's default kernels, not
   * batch invariant. See NativeNumerics and docs/engine.md, "Numerics".
   */
  numerics?: NativeNumerics;
}

export class Scorer {
  #native: NativeScorer | undefined;

  /** @internal */
  constructor(
    private readonly model: Model,
    handle: NativeScorer,
  ) {
    this.#native = handle;
  }

  get config(): {
    contextSize: number;
    sequences: number;
    batchSize: number;
    waveTokens: number;
    kvLayout: NativeKvLayout;
    numerics: NativeNumerics;
  } {
    const c = this.handle().config;
    if (!c) throw new Error("the scorer was disposed");
    return c;
  }

  /** Scores every request; results come back in request order. Bad input rejects with the reason. */
  async score(
    requests: readonly ScoreRequest[],
    options: ScoreOptions = {},
  ): Promise<ScoreResult[] & { profile?: ScoreProfile }> {
    const reqs = this.toNative(requests);
    const lora = toNativeLora(options.lora);
    const profile = options.profile === true;
    return this.model.enqueue(() => this.handle().score(reqs, { lora, profile }));
  }

  dispose(): void {
    this.#native?.dispose();
    this.#native = undefined;
  }

  /** @internal The native handle, for the development hooks (tests, benches). */
  handle(): NativeScorer {
    if (!this.#native) throw new Error("the scorer was disposed; create a new one with model.createScorer()");
    return this.#native;
  }

  /** @internal Requests as token arrays (prompts with BOS, continuations without). */
  toNative(requests: readonly ScoreRequest[]): NativeScoreRequest[] {
    if (!Array.isArray(requests)) throw new TypeError("score() takes an array of {prompt, continuation}");
    return requests.map((r, i) => {
      if (r === null || typeof r !== "object") throw new TypeError(`requests[${i}] must be {prompt, continuation}`);
      return {
        prompt: typeof r.prompt === "string" ? this.model.tokenize(r.prompt) : r.prompt,
        continuation:
          typeof r.continuation === "string" ? this.model.tokenize(r.continuation, { addBos: false }) : r.continuation,
      };
    });
  }
}
