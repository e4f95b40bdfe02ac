// The whole native surface of build/Release/msr_rec.node, typed in one place. Wrappers in this
// folder hold these handles privately; nothing outside src/engine touches them directly.
//
// Contract notes:
// - Every method returning a Promise runs off the main thread (AsyncWorker); getters are sync.
// - Token arrays cross as Int32Array; results never include vocabulary-sized arrays.
// - Methods throw (or reject with) an Error whose message says what to do; no call aborts.
// - Arguments may be anything, getters and Proxies included: each call holds its own reference to
//   the native state before it reads them, and checks again afterwards, so a getter that disposes
//   the model (or scorer, trainer, adapter) makes the call fail with "was disposed", nothing worse.
// - Files are checked before llama.cpp reads them (native/src/gguf_check.h): a model, adapter or
//   checkpoint it would assert on is an Error naming the key or tensor. Paths with NUL bytes,
//   folders, missing folders and outputs that are their own input are refused (path_check.h).
// - Environment: MSR_REC_ADDON=/path/to/msr_rec.node picks the addon (addonPath below);
//   MSR_REC_LOG=0|1|2|3 sets llama.cpp's log level when the addon loads (silent by default; its
//   error lines are folded into our exceptions either way; setLogLevel changes it later). The
//   native code reads no other environment variable.
// - The development hooks (native/dev: naive references, kernel checks, benchmark baselines) are
//   typed here too, as NativeDevAddon, but marked @internal: they reach tests and benches through
//   devAddon() and are left out of the published declarations (tsconfig's stripInternal).
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../util/paths.js";

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type TokenArray = Int32Array | readonly number[];

export interface NativeModelInfo {
  path: string;
  architecture: string;
  name: string;
  description: string;
  vocabSize: number;
  contextLength: number;
  layers: number;
  embeddingSize: number;
  heads: number;
  headsKv: number;
  parameters: number;
  sizeBytes: number;
  bos: number;
  eos: number;
  addBos: boolean;
  threads: number;
  /** Loaded with vocabOnly: tokenizer only (layers, heads and parameters read 0). */
  vocabOnly: boolean;
}

export type NativeModel = Brand<
  {
    info(): NativeModelInfo;
    tokenize(text: string, options?: { addBos?: boolean; special?: boolean }): Int32Array;
    detokenize(tokens: TokenArray, options?: { special?: boolean }): string;
    tokenPieces(tokens: TokenArray): string[];
    loadLora(path: string): Promise<NativeLoraAdapter>;
    generate(prompts: TokenArray[], options?: NativeGenerateOptions): Promise<NativeGenerateResults>;
    /** Last-layer hidden state (after the final norm) of every token: [tokens × embeddingSize] per text. */
    embed(texts: TokenArray[], options?: { batchTokens?: number }): Promise<Float32Array[]>;
    dispose(): void;
  },
  "Model"
>;

export type NativeLoraAdapter = Brand<
  {
    readonly path: string | null;
    readonly alpha: number | null;
    dispose(): void;
  },
  "LoraAdapter"
>;

export interface NativeLoraChoice {
  adapter: NativeLoraAdapter;
  scale: number;
}

export interface NativeScoreRequest {
  prompt: TokenArray;
  continuation: TokenArray;
}

export interface NativeScoreResult {
  tokenLogprobs: Float32Array;
  logprob: number;
  ppl: number;
}

/** The scorer's and the generator's KV cache layout: see ScorerOptions.kvLayout in scorer.ts. */
export type NativeKvLayout = "auto" | "unified" | "per-sequence";

/**
 * The scorer's and the generator's numerics (native/src/numerics.h). "invariant" (the default on
 * the CPU): a request's log-probs, PPL and tokens are bitwise the same whatever else is in the
 * call, however it is batched, in either KV layout and on any thread count (same CPU kind and
 * build); an F32 KV cache and llama.cpp's reference attention kernel. "fast": llama.cpp's default
 * kernels (what node-llama-cpp computes), NOT batch invariant: a request's scores change in the
 * last digits with its batch. A model with GPU layers runs "fast" only.
 */
export type NativeNumerics = "invariant" | "fast";

/** Where one score call's time went (its `profile` option), in milliseconds. */
export interface NativeScoreProfile {
  /** The KV layout the call ran in. */
  layout: "unified" | "per-sequence";
  waves: number;
  decodes: number;
  /** llama_decode. */
  decodeMs: number;
  /** The fused log-prob reduction of the logits rows. */
  logprobMs: number;
  /** Everything else: planning, batch filling, context (re)creation, checks. */
  otherMs: number;
}

/** Results in request order; `profile` only when the call asked for it. */
export type NativeScoreResults = NativeScoreResult[] & { profile?: NativeScoreProfile };

export type NativeScorer = Brand<
  {
    readonly config: {
      contextSize: number;
      sequences: number;
      batchSize: number;
      waveTokens: number;
      kvLayout: NativeKvLayout;
      numerics: NativeNumerics;
    } | null;
    /** profile: add the call's timings to the results (`results.profile`). */
    score(
      requests: NativeScoreRequest[],
      options?: { lora?: NativeLoraChoice[]; profile?: boolean },
    ): Promise<NativeScoreResults>;
    dispose(): void;
  },
  "Scorer"
>;

export interface NativeGenerateOptions {
  /** New tokens per prompt at most (default 256); a sequence also ends ("length") at the model's training context. */
  maxTokens?: number;
  /**
   * 0 = greedy (argmax). Default 0.7; at most 3.4e38 (a float). A temperature so small that a
   * logit divided by it overflows a float is greedy for that token (the limit as it goes to 0).
   */
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  /**
   * Prompt i is sampled with (seed + i) mod (2^32 − 1), so results do not depend on batching.
   * An integer in [0, 2^32 − 2] (llama.cpp reads 2^32 − 1 as "random").
   */
  seed?: number;
  /** Generation ends at the first occurrence of any of these strings: cut from text, and tokens keep only the tokens before it. */
  stop?: string[];
  /**
   * A GBNF grammar (with a `root` rule) every output must match. Limits (llama.cpp's grammar code
   * recurses): 4 MiB of text, parentheses nested 10,000 deep, 100,000 rules and 100,000 rule
   * references after repetitions are expanded; past one, the call fails naming it.
   */
  grammar?: string;
  /**
   * One GBNF grammar per prompt (null: that prompt is free), instead of `grammar`: prompts with
   * different constraints (each user's candidate titles) still decode in one batch.
   */
  grammars?: readonly (string | null)[];
  /** Prompts decoded together (default 16; capped to how many sequences contextSize holds at once). */
  parallel?: number;
  /** KV cells of the shared context (default: parallel x (longest prompt + maxTokens)). */
  contextSize?: number;
  /**
   * "per-sequence": one KV stream per slot (each token attends over its own sequence only; a
   * stream holds the longest prompt + maxTokens, rounded up to 256 cells); "unified": one cache
   * shared by all slots (with invariant numerics it runs prompts in waves: no slot is refilled
   * until all have finished); "auto" (default): per-sequence when there are 2+ slots (of 128+
   * cells, with fast numerics) and contextSize holds as many streams. Outputs do not depend on it.
   */
  kvLayout?: NativeKvLayout;
  /** See NativeNumerics (default "invariant" on the CPU). */
  numerics?: NativeNumerics;
  /**
   * Return each generated token's log-prob under the model (before temperature, top-k, top-p), as
   * `tokenLogprobs`: with invariant numerics the scorer's log-probs of the same tokens after the
   * same prompt, bit for bit.
   */
  logprobs?: boolean;
  lora?: NativeLoraChoice[];
  /** Add the call's timings to the results (`results.profile`). */
  profile?: boolean;
}

export interface NativeGenerateResult {
  text: string;
  tokens: Int32Array;
  finishReason: "eos" | "stop" | "length";
  /** With the `logprobs` option: one per token of `tokens`. */
  tokenLogprobs?: Float32Array;
}

/** Where one generate call's time went (its `profile` option), in milliseconds. */
export interface NativeGenerateProfile {
  slots: number;
  /** The KV layout the call ran in. */
  layout: "unified" | "per-sequence";
  decodes: number;
  /**
   * Per-sequence layout: prompts decoded by copying the KV stream of an identical prompt just
   * decoded (consecutive copies of a prompt, e.g. G samples of it) instead of decoding them again.
   */
  sharedPrompts: number;
  /** llama_decode. */
  decodeMs: number;
  /** Logit checks and the sampler chains (grammars included), stop strings. */
  sampleMs: number;
  otherMs: number;
}

/** Results in prompt order; `profile` only when the call asked for it. */
export type NativeGenerateResults = NativeGenerateResult[] & { profile?: NativeGenerateProfile };

// ---- Trainer (native/src/trainer*.cpp) ----
// (types for the trainer's native surface live in this section)

/** Samples end to end; segments: 0 prompt (no loss), 1 reasoning, 2 recommendation. */
export interface NativeTrainBatch {
  tokens: Int32Array;
  lengths: Int32Array;
  segments: Uint8Array;
}

export interface NativeStepStats {
  loss: number;
  lossReasoning: number;
  lossRecommendation: number;
  tokens: number;
  lossTokens: number;
  reasoningSamples: number;
  recommendationSamples: number;
  /** Only from step(). */
  gradNorm?: number;
  /** Only from a trainer created with profile: true. */
  profile?: NativeTrainProfile;
}

/** One micro-batch's forward and backward pass, as a trainer with profile: true reports it. */
export interface NativeTrainPassProfile {
  tokens: number;
  /** Rows whose logits carry a loss. */
  lossRows: number;
  forwardMs: number;
  /** The fused cross-entropy over the loss rows (loss, log-probs, dLoss/dlogits). */
  crossEntropyMs: number;
  /** 0 in evaluate(). */
  backwardMs: number;
  graphNodes: number;
  graphLeafs: number;
  graphMetadataBytes: number;
  /** The pass's compute buffer: activations and the backward's temporaries. */
  computeBytes: number;
  /**
   * The backward's out_prod nodes and how they ran: asStored (out_prod_cpu reading the weight as
   * stored: the CPU), transposedWeights (a mul_mat with a frozen weight transposed to F32: the GPU;
   * transposedInGraph of them transposed inside the graph, past transposeBudgetMb), asMulMats (a
   * mul_mat of contiguous transposes of both operands).
   */
  outProds: {
    total: number;
    asStored: number;
    transposedWeights: number;
    transposedInGraph: number;
    asMulMats: number;
  };
  /** @internal Development setting profileNodes only: milliseconds per kind of node, largest first. */
  forwardNodes?: { kind: string; ms: number; count: number }[];
  /** @internal */
  backwardNodes?: { kind: string; ms: number; count: number }[];
}

export interface NativeTrainProfile {
  /** One entry per micro-batch of the call, in order. */
  passes: NativeTrainPassProfile[];
}

export interface NativeTrainerInfo {
  mode: "lora" | "full";
  rank: number;
  loraAlpha: number;
  targets: string[];
  steps: number;
  parameterCount: number;
  contextSize: number;
  vocabSize: number;
  /** Where the training graph runs. */
  device: "cpu" | "gpu";
  /** "CPU" or the GPU's description. */
  deviceName: string;
  /** Bytes of host copies of frozen weights llama.cpp repacked (0 for a model loaded with repack: false). */
  weightCopyBytes: number;
  /** Bytes of repacked weights read in place from the model's file mapping instead of copied. */
  mappedWeightBytes: number;
  /** The compute buffer of the last forward/backward: the micro-batch's activations and the backward's temporaries (0 before the first). */
  computeBytes: number;
  /** Bytes of cached F32 transposes of frozen weights (see plan_transposes). */
  transposeBytes: number;
}

/** "auto": the GPU when the model was loaded with gpuLayers and the addon has a GPU backend. */
export type TrainDevice = "auto" | "cpu" | "gpu";

export interface NativeTrainerOptions {
  mode?: "lora" | "full";
  rank?: number;
  /** > 0 (llama.cpp reads an adapter alpha of 0 as "no alpha", so 0 would score differently from how it trained). */
  loraAlpha?: number;
  targets?: string[];
  seed?: number;
  /** 0 = the model's training context. */
  contextSize?: number;
  /** 0 = one micro-batch per step. */
  microBatchTokens?: number;
  threads?: number;
  device?: TrainDevice;
  /** Full mode on a quantized model: train F32 copies of its weights (refused without it). */
  dequantize?: boolean;
  /**
   * LoRA on a GPU: MiB of F32 transposes of the frozen weights the backward keeps between passes
   * (default: half the GPU's free memory). Weights past it are transposed inside each pass's graph
   * instead: slower, less memory held. The CPU reads weights as stored and keeps none.
   */
  transposeBudgetMb?: number;
  /** Every step() and evaluate() result carries a profile of its passes (NativeTrainProfile). */
  profile?: boolean;
}

export interface NativeStepOptions {
  alpha?: number;
  beta?: number;
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Max global gradient norm (0 = no clipping). */
  clip?: number;
  /** false: only accumulate gradients. */
  update?: boolean;
  /** false: add to the gradients of the previous call (gradient accumulation). */
  zeroGrad?: boolean;
  /** Multiplies every token weight (1/gradAccum). */
  lossScale?: number;
}

/**
 * Per completion token of a policy batch (every token after a sample's first whose segment is
 * not the prompt), sample after sample: what train_policy.h reads.
 */
export interface NativePolicyInputs {
  /** A per token, either sign. Required by policyStep; evaluatePolicy counts missing ones as 0. */
  advantages?: Float32Array;
  /** log π_ref per token: adds the k3 KL penalty klCoef·(e^(ref−lp) − (ref−lp) − 1). */
  refLogprobs?: Float32Array;
  /** log π_old per token (the policy that sampled the batch): ratio e^(lp−old), clipped PPO-style. */
  oldLogprobs?: Float32Array;
}

/** Normalisation of the per-token losses (train_policy.h): GRPO, DAPO and Dr. GRPO's choices. */
export type NativePolicyLossType = "sequence" | "token" | "constant";

export interface NativePolicyOptions {
  /** β, the KL coefficient (default 0; needs refLogprobs to matter). */
  klCoef?: number;
  /** Ratio clip range below 1 (default 0.2). */
  epsilonLow?: number;
  /** Ratio clip range above 1 (default: epsilonLow; DAPO's clip-higher: 0.28). */
  epsilonHigh?: number;
  /** Logits are divided by it before the softmax: the sampling temperature (default 1). */
  temperature?: number;
  /** Default "sequence". */
  lossType?: NativePolicyLossType;
  /** "constant": the completion budget L the samples were generated with (loss = Σ / (samples·L)). */
  maxTokens?: number;
  /** Multiplies every coefficient (1/gradAccum); not in the reported loss. */
  lossScale?: number;
}

export interface NativePolicyStepOptions extends NativePolicyOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Max global gradient norm (0 = no clipping). */
  clip?: number;
  /** false: only accumulate gradients. */
  update?: boolean;
  /** false: add to the gradients of the previous call. */
  zeroGrad?: boolean;
}

export interface NativePolicyStats {
  /** Σ c·(clipped surrogate + klCoef·kl) over completion tokens, c the normalisation. */
  loss: number;
  /** The clipped-surrogate part of loss. */
  policyLoss: number;
  /** Mean over completion tokens of the k3 estimate (0 without refLogprobs). */
  kl: number;
  /** Fraction of completion tokens where the clipped branch is active (no policy gradient). */
  clipFraction: number;
  /** Mean over completion tokens of e^(lp − old) (1 without oldLogprobs). */
  ratioMean: number;
  /** Mean over completion tokens of the entropy of the token's distribution (at the temperature). */
  entropy: number;
  tokens: number;
  completionTokens: number;
  samples: number;
  /** Only from policyStep: before clipping. */
  gradNorm?: number;
  /** log-prob of each completion token under the weights before the update (at the temperature). */
  logprobs: Float32Array;
  profile?: NativeTrainProfile;
}

/** Step, evaluate, save and load are async and exclusive: a second call while one runs throws. */
export type NativeTrainer = Brand<
  {
    step(batch: NativeTrainBatch, options?: NativeStepOptions): Promise<NativeStepStats>;
    evaluate(batch: NativeTrainBatch, options?: { alpha?: number; beta?: number }): Promise<NativeStepStats>;
    info(): NativeTrainerInfo;
    paramNames(): string[];
    getParam(name: string): Float32Array;
    /** Refuses non-finite values. */
    setParam(name: string, values: Float32Array): void;
    /** The saves refuse to write non-finite parameters (or moments), and the base model's own file. */
    saveAdapter(path: string): Promise<void>;
    saveModel(path: string): Promise<void>;
    saveCheckpoint(path: string, state?: string): Promise<void>;
    /**
     * The checkpoint must match the trainer (mode, LoRA rank, alpha and parameters) and hold finite
     * values; loading zeroes the accumulated gradients.
     */
    loadCheckpoint(path: string): Promise<string>;
    dispose(): void;
    /** One policy-gradient update (or, update: false, gradients only); see train_policy.h. */
    policyStep(
      batch: NativeTrainBatch,
      policy: NativePolicyInputs,
      options?: NativePolicyStepOptions,
    ): Promise<NativePolicyStats>;
    /** The policy loss, statistics and log-probs without gradients. */
    evaluatePolicy(
      batch: NativeTrainBatch,
      policy?: NativePolicyInputs,
      options?: NativePolicyOptions,
    ): Promise<NativePolicyStats>;
    /**
     * LoRA mode: an adapter for scorers and generation holding the current weights, updated by
     * every later step, policyStep and loadCheckpoint while the handle is kept (live_lora.h). Its
     * path is "". Each call makes a new one.
     */
    liveAdapter(): Promise<NativeLoraAdapter>;
    /** Copies the current weights into the live adapters now (after setParam, which does not). */
    syncLiveAdapter(): Promise<void>;
  },
  "Trainer"
>;

/** A training session built by buildTrainSession, waiting to be adopted by `new Trainer`. */
export type NativeTrainSession = Brand<object, "TrainSession">;

export interface NativeTrainability {
  architecture: string;
  lora: string | null;
  full: string | null;
  /** Full mode with dequantize: true (F32 copies of a quantized model's weights). */
  fullWithDequantize: string | null;
}

export interface NativeAddon {
  systemInfo(): string;
  setLogLevel(level: 0 | 1 | 2 | 3): void;
  /** Native bytes this JS environment has reported to V8 (weights, KV caches, adapters, trainers). */
  reportedExternalMemory(): number;
  /**
   * repack: false keeps quantized weights as stored (no CPU repacking): a trainer then needs no copy
   * of them. mmap: false reads the weights into memory instead of mapping the file (see
   * LoadModelOptions.mmap in model.ts). threads 0 or absent: the CPUs this process may use.
   */
  loadModel(
    path: string,
    options?: { threads?: number; gpuLayers?: number; vocabOnly?: boolean; repack?: boolean; mmap?: boolean },
  ): Promise<NativeModel>;
  /**
   * llama.cpp's llama_model_quantize (what `llama-quantize src dst TYPE` writes; K types are the _M
   * mixes). dst may not be src; it is written beside itself and renamed into place.
   */
  quantizeModel(src: string, dst: string, type: string, options?: { threads?: number }): Promise<void>;
  Scorer: new (
    model: NativeModel,
    options?: {
      contextSize?: number;
      sequences?: number;
      batchSize?: number;
      waveTokens?: number;
      kvLayout?: NativeKvLayout;
      numerics?: NativeNumerics;
    },
  ) => NativeScorer;
  /** `session`: what buildTrainSession made for this model and these options (adopted, not rebuilt). */
  Trainer: new (model: NativeModel, options?: NativeTrainerOptions, session?: NativeTrainSession) => NativeTrainer;
  /** Builds a trainer's session (parameters, weight copies, transposes) off the JS thread. */
  buildTrainSession(model: NativeModel, options?: NativeTrainerOptions): Promise<NativeTrainSession>;
  /** Whether the model at `path` can be trained; each mode is null when it can, else the reason (train_arch.cpp). */
  trainability(path: string): Promise<NativeTrainability>;
  /** @internal Present when the addon was built with its development hooks (a repository checkout). */
  dev?: NativeDevAddon;
}

// ---- Development hooks (native/dev/dev.h) ----

/** @internal */
export interface NativeFusedCeResult {
  loss: number;
  logprobs: Float32Array;
  grad?: Float32Array;
}

/**
 * @internal Entry points for tests and benchmarks, never used by the product: naive references,
 * kernel checks and baselines, and the internals of a scorer or trainer. Each takes the native
 * object a product method would have been called on.
 */
export interface NativeDevAddon {
  /** The fused CE kernel (or its naive reference) on host logits [rows × vocab]. */
  fusedCrossEntropy(
    logits: Float32Array,
    rows: number,
    vocab: number,
    targets: Int32Array,
    weights: Float32Array | null,
    options?: { reference?: boolean; threads?: number; grad?: boolean; gradOut?: Float32Array },
  ): NativeFusedCeResult;
  /**
   * The training backward's CPU out_prod (out = a·bᵀ with a read as stored, train_out_prod.h) on
   * random operands: its error against float64 sums and ggml's F32 path's (the weight dequantized,
   * transposed and multiplied with mul_mat), each as max |err| / Σ|terms| and / max |exact|.
   * layout "dy": b = transpose of a contiguous (k, n) dy; "act": b contiguous (n, k). isa: run that
   * kernel directly (isaErr*, 2-D only), besides the graph's (which runs the best this CPU has).
   * Weight types ggml quantizes only with an importance matrix (IQ2_XXS, IQ1_S, ...) are refused.
   */
  outProdCheck(options: {
    type: string;
    m: number;
    k: number;
    n: number;
    threads?: number;
    layout?: "dy" | "act";
    isa?: "avx512" | "avx2" | "generic";
    seed?: number;
    runs?: number;
    /** b's and out's dim 2 (attention heads), and a's (a broadcast over batches / groups of them). */
    batches?: number;
    groups?: number;
  }): {
    isa: string;
    errTerms: number;
    errMax: number;
    ggmlErrTerms: number;
    ggmlErrMax: number;
    ms: number;
    ggmlMs: number;
    isaErrTerms?: number;
    isaErrMax?: number;
    isaMs?: number;
  };
  /**
   * The policy-gradient form of the kernel (fused_policy_cpu, or its naive reference) on host
   * logits: row r's loss is coefs[r]·(−min(r·A, clip(r)·A) + klCoef·k3), gradient
   * w·(softmax − onehot)/temperature with a per-row weight of either sign.
   */
  fusedPolicyLoss(
    logits: Float32Array,
    rows: number,
    vocab: number,
    targets: Int32Array,
    rowsIn: {
      advantages: Float32Array;
      coefs: Float32Array;
      refLogprobs?: Float32Array;
      oldLogprobs?: Float32Array;
    },
    options?: {
      klCoef?: number;
      epsilonLow?: number;
      epsilonHigh?: number;
      temperature?: number;
      reference?: boolean;
      threads?: number;
      grad?: boolean;
    },
  ): { loss: number; logprobs: Float32Array; entropy: Float32Array; grad?: Float32Array };
  /** Benchmark baseline: ggml_cross_entropy_loss with a dense one-hot label matrix. */
  denseCrossEntropyGgml(
    logits: Float32Array,
    rows: number,
    vocab: number,
    targets: Int32Array,
    options?: { threads?: number; backward?: boolean; runs?: number },
  ): { loss: number; ms: number; extraBytes: number };
  /** The scorer's batching with logits at every position and no log-prob work: the benchmark ceiling. */
  scorerDecodeOnly(
    scorer: NativeScorer,
    requests: NativeScoreRequest[],
    options?: { lora?: NativeLoraChoice[] },
  ): Promise<void>;
  /**
   * One generator token sampler drawing a token from each [vocab] row of `logits` in turn (each
   * accepted into its grammar): its fast top-k path, or with `wholeVocabulary` llama.cpp's own
   * chain over the whole vocabulary, the reference the fast path is tested against.
   */
  sampleRows(
    model: NativeModel,
    logits: Float32Array,
    options: {
      temperature: number;
      topK?: number;
      topP?: number;
      minP?: number;
      seed?: number;
      grammar?: string;
      wholeVocabulary?: boolean;
    },
  ): Int32Array;
  /** Full [tokens × vocab] logits of one sequence: the naive path the scorer's reduction is tested against. */
  scorerLogits(
    scorer: NativeScorer,
    tokens: TokenArray,
    options?: { lora?: NativeLoraChoice[] },
  ): Promise<Float32Array>;
  /** [tokens × vocab] logits of the training graph (never for long inputs). */
  trainerLogits(trainer: NativeTrainer, tokens: TokenArray): Promise<Float32Array>;
  /** [tokens × vocab] logits of llama_decode with the trainer's current adapter. */
  trainerReferenceLogits(trainer: NativeTrainer, tokens: TokenArray): Promise<Float32Array>;
  /** The gradient accumulated for one parameter by the last step (all of it when that step did not update). */
  trainerGrad(trainer: NativeTrainer, name: string): Float32Array;
  /** buildTrainSession with development settings; `new Trainer(model, options, session)` adopts it. */
  buildTrainSession(
    model: NativeModel,
    options: NativeTrainerOptions,
    settings: NativeTrainDevSettings,
  ): Promise<NativeTrainSession>;
}

/** @internal TrainDevSettings (native/src/train_graph.h). */
export interface NativeTrainDevSettings {
  /** CPU: the GPU's backward (mul_mats with F32 transposes of the frozen weights) instead of out_prod_cpu. */
  transposedBackward?: boolean;
  /** MiB of F32 per slice of a weight transposed inside the graph (default 32). */
  sliceMb?: number;
  /** Run the graph node by node and report each kind of node's time in the pass profiles. */
  profileNodes?: boolean;
}

/** Where the addon is: $MSR_REC_ADDON, else the CUDA build if present, else the CPU build. */
export function addonPath(): string {
  const candidates = [
    process.env.MSR_REC_ADDON,
    join(packageRoot, "build-cuda", "Release", "msr_rec.node"),
    join(packageRoot, "build", "Release", "msr_rec.node"),
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    // Installed as a dependency, the build is npm's install step; a script policy may have skipped it.
    throw new Error(
      `the msr-rec native addon is not built (looked in ${candidates.join(", ")}); ` +
        "run `npx msr-rec build-native` (or `npm rebuild msr-rec`; inside the msr-rec repository, `npm run build:native`)",
    );
  }
  return found;
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!addon) addon = createRequire(import.meta.url)(addonPath()) as NativeAddon;
  return addon;
}

/** @internal The development hooks of the loaded addon (tests and benchmarks only). */
export function devAddon(): NativeDevAddon {
  const dev = native().dev;
  if (!dev) {
    throw new Error(
      `the addon at ${addonPath()} was built without its development hooks (native/dev, only in a repository checkout); ` +
        "build it there with `npm run build:native`",
    );
  }
  return dev;
}
