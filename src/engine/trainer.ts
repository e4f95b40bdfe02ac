// Trainer: LoRA or full fine-tuning of a loaded LLaMA-family, Qwen2 or Qwen3 model on SFT samples, with the
// reasoning/recommendation-weighted loss of METHOD.md §3 (see native/src/train_graph.cpp for the
// training graph and native/src/train_session.cpp for the loss weighting).
//
//   const trainer = createTrainer(model, { mode: "lora", lora: { rank: 8, alpha: 32 } });
//   const r = await trainer.step(samples, { alpha: 0.7, beta: 0.3 });   // one AdamW update
//   await trainer.saveAdapter("adapter.gguf");
//
// Samples are tokens with a loss segment per token ({tokens, segments}, src/engine/train-batch.ts);
// the method turns its {prompt, reasoning, recommendation} text into them (src/train/samples.ts).
// One step() is one optimizer update over all its samples; they are packed natively into
// micro-batches of `microBatchTokens`. Each update's learning rate comes from the schedule in
// src/engine/schedule.ts at the trainer's own step count, so a restored checkpoint continues it.
// With gradAccum = n, gradients of n consecutive step() calls add up and the update happens on
// the n-th (each call's loss counts 1/n).
//
// Reinforcement refinement (GRPO and its relatives) uses the same trainer: policyStep() takes
// sampled completions with advantages (src/engine/policy.ts) and the same optimizer, schedule and
// gradAccum; liveAdapter() is the trainer's LoRA as an adapter that scorers and generation use
// without a file, following every update. See docs/training.md ("Policy-gradient steps") for a GRPO loop.
import {
  native,
  type NativeModel,
  type NativePolicyInputs,
  type NativePolicyStats,
  type NativeTrainer,
  type NativeTrainerInfo,
  type NativeTrainerOptions,
  type NativeStepStats,
  type NativeTrainProfile,
  type NativeTrainSession,
  type TrainDevice,
} from "./bindings.js";
import { LoraAdapter } from "./lora.js";
import {
  splitPerSample,
  toNativePolicy,
  type PolicyEvalSample,
  type PolicyOptions,
  type PolicySample,
} from "./policy.js";
import { learningRate, type ScheduleKind } from "./schedule.js";
import { toNativeBatch, type NativeBatch, type TokenizedSample } from "./train-batch.js";
import { inputFile, outputFile } from "../util/file-args.js";
import { issuesOf, rule, throwIssues, type OptionIssue } from "../util/options.js";

export type LoraTarget = "q" | "k" | "v" | "o" | "gate" | "up" | "down";
export const DEFAULT_LORA_TARGETS: readonly LoraTarget[] = ["q", "k", "v", "o", "gate", "up", "down"];

export interface TrainerOptions {
  mode?: "lora" | "full";
  lora?: { rank?: number; alpha?: number; targets?: readonly LoraTarget[]; seed?: number };
  optimizer?: {
    lr?: number;
    beta1?: number;
    beta2?: number;
    eps?: number;
    weightDecay?: number;
    warmupSteps?: number;
    schedule?: ScheduleKind;
    /** Total optimizer steps, for the linear/cosine decay. */
    totalSteps?: number;
    minLrRatio?: number;
    /** Clip the global gradient norm to this value (0 = off). */
    clipGradNorm?: number;
  };
  /** Token budget of one packed micro-batch (default 512; a longer sample gets its own). */
  microBatchTokens?: number;
  /** step() calls whose gradients are summed before one update (default 1). */
  gradAccum?: number;
  /** Longest sample allowed (default: the model's training context). */
  contextSize?: number;
  threads?: number;
  /**
   * Where the graph runs (default "auto": the GPU when the model was loaded with gpuLayers and the
   * addon was built with CUDA, else the CPU). Results agree across devices to float rounding.
   */
  device?: TrainDevice;
  /**
   * Full mode on a quantized model (Q8_0, Q4_K, ...): train F32 copies of every weight, 4 bytes
   * per parameter (saveModel writes F32). Without it full mode refuses such models; LoRA mode
   * always uses the quantized weights as they are.
   */
  dequantize?: boolean;
  /** LoRA on a GPU: MiB of cached F32 weight transposes for the backward (see NativeTrainerOptions.transposeBudgetMb). */
  transposeBudgetMb?: number;
  /** Every step() and evaluate() result carries `profile`: each micro-batch's phase times and graph sizes. */
  profile?: boolean;
}

/** Where a step's or evaluation's time went (TrainerOptions.profile). */
export type TrainProfile = NativeTrainProfile;

export interface StepOptions {
  /** Weight of the reasoning loss (default 0.7). */
  alpha?: number;
  /** Weight of the recommendation loss (default 0.3). */
  beta?: number;
}

export interface EvalResult {
  /** alpha·lossReasoning + beta·lossRecommendation. */
  loss: number;
  /** Mean over samples with reasoning of their mean reasoning-token NLL (0 when none has any). */
  lossReasoning: number;
  /** Mean over samples of their mean recommendation-token NLL. */
  lossRecommendation: number;
  /** Tokens in the batch (prompt included). */
  tokens: number;
  /** Tokens that carry a loss. */
  lossTokens: number;
  /** Only with TrainerOptions.profile. */
  profile?: TrainProfile;
}

export interface StepResult extends EvalResult {
  /** Global L2 norm of the gradient before clipping (NaN on an accumulate-only call). */
  gradNorm: number;
  /** Learning rate used by this update (NaN on an accumulate-only call). */
  lr: number;
  /** Optimizer updates done so far. */
  step: number;
}

/** evaluatePolicy's statistics (NativePolicyStats), with the log-probs split per sample. */
export interface PolicyEvalResult extends Omit<NativePolicyStats, "gradNorm" | "logprobs" | "profile"> {
  /** Per sample, the log-prob of each completion token under the weights before any update (at the temperature). */
  logprobs: Float32Array[];
  /** Only with TrainerOptions.profile. */
  profile?: TrainProfile;
}

export interface PolicyStepResult extends PolicyEvalResult {
  /** Global L2 norm of the gradient before clipping (NaN on an accumulate-only call). */
  gradNorm: number;
  /** Learning rate used by this update (NaN on an accumulate-only call). */
  lr: number;
  /** Optimizer updates done so far. */
  step: number;
}

/** A live adapter's `path`: it has no file. */
export const LIVE_ADAPTER_PATH = "(live trainer adapter)";

interface ResolvedOptimizer {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  warmupSteps: number;
  schedule: ScheduleKind;
  totalSteps?: number;
  minLrRatio: number;
  clipGradNorm: number;
}

export class Trainer {
  readonly mode: "lora" | "full";
  private readonly optimizer: ResolvedOptimizer;
  private readonly gradAccum: number;
  private pendingCalls = 0;
  private live: LoraAdapter | undefined;
  /**
   * Set when a step reported a non-finite loss or gradient: the update before it left the
   * parameters non-finite, so saving them is refused until a checkpoint is loaded.
   */
  private diverged: string | undefined;

  /**
   * @internal use createTrainer. `enqueue` is the model's call queue (Model.enqueue): a call that
   * waits for the model then holds a promise instead of a thread-pool thread blocked on its lock.
   */
  constructor(
    private readonly native: NativeTrainer,
    opts: TrainerOptions,
    private readonly enqueue: <T>(op: () => Promise<T>) => Promise<T> = (op) => op(),
  ) {
    this.mode = opts.mode ?? "lora";
    const o = opts.optimizer ?? {};
    this.optimizer = {
      lr: o.lr ?? 2e-4,
      beta1: o.beta1 ?? 0.9,
      beta2: o.beta2 ?? 0.999,
      eps: o.eps ?? 1e-8,
      weightDecay: o.weightDecay ?? 0,
      warmupSteps: o.warmupSteps ?? 0,
      schedule: o.schedule ?? "constant",
      totalSteps: o.totalSteps,
      minLrRatio: o.minLrRatio ?? 0.1,
      clipGradNorm: o.clipGradNorm ?? 0,
    };
    this.gradAccum = opts.gradAccum ?? 1;
  }

  /** Optimizer updates done so far (restored by loadCheckpoint). */
  get steps(): number {
    return this.native.info().steps;
  }

  get info(): NativeTrainerInfo {
    return this.native.info();
  }

  /** Learning rate the next update will use. */
  currentLr(): number {
    return learningRate(this.steps, { ...this.optimizer });
  }

  /** Gradients over `samples` and (every gradAccum-th call) one AdamW update. */
  async step(samples: readonly TokenizedSample[], opts: StepOptions = {}): Promise<StepResult> {
    const batch = toNativeBatch(samples);
    return this.enqueue(() => this.stepNow(batch, opts));
  }

  private async stepNow(batch: NativeBatch, opts: StepOptions): Promise<StepResult> {
    const { r, lr, last } = await this.update((u) =>
      this.native.step(batch, { alpha: opts.alpha ?? 0.7, beta: opts.beta ?? 0.3, ...u }),
    );
    return { ...pickEval(r), gradNorm: last ? (r.gradNorm ?? NaN) : NaN, lr: last ? lr : NaN, step: this.steps };
  }

  /**
   * One native call of an optimizer step (SFT or policy) with the optimizer's settings, this
   * update's learning rate and the gradAccum bookkeeping; a non-finite loss or gradient marks the
   * trainer diverged.
   */
  private async update<R>(
    call: (u: {
      lr: number;
      beta1: number;
      beta2: number;
      eps: number;
      weightDecay: number;
      clip: number;
      update: boolean;
      zeroGrad: boolean;
      lossScale: number;
    }) => Promise<R>,
  ): Promise<{ r: R; lr: number; last: boolean }> {
    const first = this.pendingCalls === 0;
    const last = this.pendingCalls + 1 >= this.gradAccum;
    const lr = this.currentLr();
    const o = this.optimizer;
    const r = await call({
      lr,
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      weightDecay: o.weightDecay,
      clip: o.clipGradNorm,
      update: last,
      zeroGrad: first,
      lossScale: 1 / this.gradAccum,
    }).catch((e: Error) => {
      if (/is not finite/.test(e.message)) this.diverged = e.message;
      throw e;
    });
    this.pendingCalls = last ? 0 : this.pendingCalls + 1;
    return { r, lr, last };
  }

  /**
   * One policy-gradient update (GRPO, DAPO, Dr. GRPO: see PolicyOptions) over sampled completions,
   * with this trainer's optimizer, schedule and gradAccum. Each sample carries its advantage and,
   * optionally, reference and old log-probs per completion token (src/engine/policy.ts).
   */
  async policyStep(samples: readonly PolicySample[], opts: PolicyOptions = {}): Promise<PolicyStepResult> {
    const batch = toNativeBatch(samples);
    const { inputs, counts } = toNativePolicy(samples, true);
    const popts = nativePolicyOptions(opts, inputs);
    return this.enqueue(async () => {
      const { r, lr, last } = await this.update((u) => this.native.policyStep(batch, inputs, { ...popts, ...u }));
      return {
        ...pickPolicy(r, counts),
        gradNorm: last ? (r.gradNorm ?? NaN) : NaN,
        lr: last ? lr : NaN,
        step: this.steps,
      };
    });
  }

  /**
   * The policy loss and statistics without an update, and each completion token's log-prob under
   * the current weights at the temperature (the old log-probs of a batch that serves several
   * updates). Advantages may be left out (counted as 0).
   */
  async evaluatePolicy(samples: readonly PolicyEvalSample[], opts: PolicyOptions = {}): Promise<PolicyEvalResult> {
    const batch = toNativeBatch(samples);
    const { inputs, counts } = toNativePolicy(samples, false);
    const r = await this.enqueue(() => this.native.evaluatePolicy(batch, inputs, nativePolicyOptions(opts, inputs)));
    return pickPolicy(r, counts);
  }

  /**
   * LoRA mode: this trainer's adapter as a LoraAdapter for scorers and generation (a call's `lora`
   * option), held in memory and updated by every step(), policyStep() and loadCheckpoint(), so
   * sampling from the current policy needs no saveAdapter/loadLora. It equals the adapter
   * saveAdapter would write (the same tensors in the same buffers: scores and generations agree
   * exactly). The same object is returned until it is disposed; calling again also copies the
   * current weights into it (needed only after setParam). It outlives the trainer with the last
   * weights it had.
   */
  async liveAdapter(): Promise<LoraAdapter> {
    if (this.live && !this.live.disposed) {
      await this.enqueue(() => this.native.syncLiveAdapter());
      return this.live;
    }
    const handle = await this.enqueue(() => this.native.liveAdapter());
    this.live = new LoraAdapter(handle, LIVE_ADAPTER_PATH);
    return this.live;
  }

  /** The same loss terms without any update. */
  async evaluate(samples: readonly TokenizedSample[], opts: StepOptions = {}): Promise<EvalResult> {
    const batch = toNativeBatch(samples);
    const r = await this.enqueue(() =>
      this.native.evaluate(batch, { alpha: opts.alpha ?? 0.7, beta: opts.beta ?? 0.3 }),
    );
    return pickEval(r);
  }

  /** Writes the LoRA adapter as GGUF (atomic), loadable by loadLora, node-llama-cpp and llama.cpp. */
  saveAdapter(path: string): Promise<void> {
    if (this.diverged) return Promise.reject(this.divergedError("saveAdapter"));
    const bad = failure(() => outputFile(path, "saveAdapter"));
    return bad ? Promise.reject(bad) : this.enqueue(() => this.native.saveAdapter(path));
  }

  /** Full mode: writes the trained model as GGUF with the base's metadata and tokenizer (atomic). */
  saveModel(path: string): Promise<void> {
    if (this.diverged) return Promise.reject(this.divergedError("saveModel"));
    const bad = failure(() => outputFile(path, "saveModel"));
    return bad ? Promise.reject(bad) : this.enqueue(() => this.native.saveModel(path));
  }

  /** Parameters, AdamW moments, step count and an opaque caller state (atomic). */
  saveCheckpoint(path: string, state = ""): Promise<void> {
    if (this.pendingCalls !== 0)
      return Promise.reject(
        new Error(
          "saveCheckpoint: gradients of an unfinished accumulation group would be lost; checkpoint after the update",
        ),
      );
    if (this.diverged) return Promise.reject(this.divergedError("saveCheckpoint"));
    const bad = failure(() => outputFile(path, "saveCheckpoint"));
    return bad ? Promise.reject(bad) : this.enqueue(() => this.native.saveCheckpoint(path, state));
  }

  /**
   * Restores a checkpoint written by saveCheckpoint and returns its caller state. The checkpoint
   * must be of this trainer's kind (mode, LoRA rank, alpha and targets, the same model): create
   * the trainer with the options it was written with. Loading inside a gradient-accumulation
   * group (gradAccum > 1) drops the group's gradients: the next step starts a new group.
   */
  async loadCheckpoint(path: string): Promise<string> {
    inputFile(path, "loadCheckpoint", "checkpoint file");
    const state = await this.enqueue(() => this.native.loadCheckpoint(path));
    this.diverged = undefined;
    this.pendingCalls = 0;
    return state;
  }

  private divergedError(what: string): Error {
    return new Error(
      `${what}: the parameters are not finite since training diverged (${this.diverged}); load the last checkpoint (loadCheckpoint) and lower optimizer.lr`,
    );
  }

  // ---- lower level: for tests, gradient checks and debugging ----
  paramNames(): string[] {
    return this.native.paramNames();
  }
  getParam(name: string): Float32Array {
    return this.native.getParam(name);
  }
  setParam(name: string, values: Float32Array): void {
    this.native.setParam(name, values);
  }
  /** Gradients of `samples` without an update (accumulators are overwritten). */
  async gradients(
    samples: readonly TokenizedSample[],
    opts: StepOptions = {},
  ): Promise<EvalResult & { gradNorm: number }> {
    const batch = toNativeBatch(samples);
    const r = await this.enqueue(() =>
      this.native.step(batch, { alpha: opts.alpha ?? 0.7, beta: opts.beta ?? 0.3, update: false, zeroGrad: true }),
    );
    return { ...pickEval(r), gradNorm: r.gradNorm ?? NaN };
  }

  /**
   * Sets parameters by name (e.g. every LoRA tensor of an SFT adapter a policy-gradient run starts
   * from: loadAdapterWeights in src/train/adapter-weights.ts) and then updates the live adapters,
   * in one queued call. The optimizer's moments and step count stay as they are.
   */
  async setParams(values: ReadonlyMap<string, Float32Array>): Promise<void> {
    await this.enqueue(async () => {
      for (const [n, v] of values) this.native.setParam(n, v);
      await this.native.syncLiveAdapter();
    });
  }

  /** Policy-gradient gradients of `samples` without an update (accumulators are overwritten). */
  async policyGradients(
    samples: readonly PolicySample[],
    opts: PolicyOptions = {},
  ): Promise<PolicyEvalResult & { gradNorm: number }> {
    const batch = toNativeBatch(samples);
    const { inputs, counts } = toNativePolicy(samples, true);
    const r = await this.enqueue(() =>
      this.native.policyStep(batch, inputs, { ...nativePolicyOptions(opts, inputs), update: false, zeroGrad: true }),
    );
    return { ...pickPolicy(r, counts), gradNorm: r.gradNorm ?? NaN };
  }

  dispose(): void {
    this.native.dispose();
  }

  /** @internal The native handle, for the development hooks (tests, benches). */
  handle(): NativeTrainer {
    return this.native;
  }
}

/** The error `check` throws, if any: the save methods reject with it instead of throwing. */
function failure(check: () => unknown): Error | undefined {
  try {
    check();
    return undefined;
  } catch (e) {
    return e as Error;
  }
}

function pickEval(r: NativeStepStats): EvalResult {
  return {
    loss: r.loss,
    lossReasoning: r.lossReasoning,
    lossRecommendation: r.lossRecommendation,
    tokens: r.tokens,
    lossTokens: r.lossTokens,
    ...(r.profile ? { profile: r.profile } : {}),
  };
}

function pickPolicy(r: NativePolicyStats, counts: readonly number[]): PolicyEvalResult {
  return {
    loss: r.loss,
    policyLoss: r.policyLoss,
    kl: r.kl,
    clipFraction: r.clipFraction,
    ratioMean: r.ratioMean,
    entropy: r.entropy,
    tokens: r.tokens,
    completionTokens: r.completionTokens,
    samples: r.samples,
    logprobs: splitPerSample(r.logprobs, counts),
    ...(r.profile ? { profile: r.profile } : {}),
  };
}

function nativePolicyOptions(opts: PolicyOptions, inputs: NativePolicyInputs) {
  if ((opts.beta ?? 0) !== 0 && !inputs.refLogprobs)
    throw new TypeError(
      "beta (the KL coefficient) needs refLogprobs on every sample; score the completions with the reference policy",
    );
  const epsilon = opts.epsilon ?? 0.2;
  return {
    klCoef: opts.beta ?? 0,
    epsilonLow: epsilon,
    epsilonHigh: opts.epsilonHigh ?? epsilon,
    temperature: opts.temperature ?? 1,
    lossType: opts.lossType ?? "sequence",
    ...(opts.maxTokens !== undefined ? { maxTokens: opts.maxTokens } : {}),
  };
}

/**
 * What is wrong with trainer options, keyed by option path ("lora.rank", "optimizer.lr"): the one
 * check of these options, which `msr-rec train` and the run config report under their own names.
 * The native trainer repeats the AdamW ones for callers of the raw addon.
 */
export function trainerOptionIssues(opts: TrainerOptions): OptionIssue[] {
  const o = opts.optimizer ?? {};
  const targets = opts.lora?.targets;
  const unknownTarget = targets?.find((t) => !DEFAULT_LORA_TARGETS.includes(t));
  return [
    ...issuesOf({
      mode: [opts.mode, rule.oneOf(["lora", "full"])],
      device: [opts.device, rule.oneOf(["auto", "cpu", "gpu"])],
      "lora.rank": [opts.lora?.rank, rule.positiveInteger],
      "lora.alpha": [opts.lora?.alpha, rule.positive],
      "lora.seed": [opts.lora?.seed, rule.integer],
      microBatchTokens: [opts.microBatchTokens, rule.positiveInteger],
      gradAccum: [opts.gradAccum, rule.positiveInteger],
      contextSize: [opts.contextSize, rule.positiveInteger],
      threads: [opts.threads, rule.positiveInteger],
      transposeBudgetMb: [opts.transposeBudgetMb, rule.nonNegative],
      "optimizer.lr": [o.lr, rule.positive],
      "optimizer.schedule": [o.schedule, rule.oneOf(["constant", "linear", "cosine"])],
      "optimizer.warmupSteps": [o.warmupSteps, rule.integerAtLeast(0)],
      "optimizer.weightDecay": [o.weightDecay, rule.nonNegative],
      "optimizer.clipGradNorm": [o.clipGradNorm, rule.nonNegative],
    }),
    ...(unknownTarget !== undefined
      ? [
          {
            key: "lora.targets",
            problem: `has an unknown LoRA target '${unknownTarget}' (use ${DEFAULT_LORA_TARGETS.join(",")})`,
          },
        ]
      : []),
  ];
}

function checkOptions(opts: TrainerOptions): void {
  throwIssues(trainerOptionIssues(opts));
}

type TrainerHost = NativeModel | { handle(): NativeModel; enqueue?<T>(op: () => Promise<T>): Promise<T> };

function hostParts(modelOrHandle: TrainerHost) {
  const model =
    "handle" in modelOrHandle && typeof modelOrHandle.handle === "function"
      ? modelOrHandle.handle()
      : (modelOrHandle as NativeModel);
  const queue = "enqueue" in modelOrHandle && typeof modelOrHandle.enqueue === "function" ? modelOrHandle : undefined;
  return { model, enqueue: queue ? <T>(op: () => Promise<T>) => queue.enqueue!(op) : undefined };
}

function nativeTrainerOptions(opts: TrainerOptions): NativeTrainerOptions {
  return {
    mode: opts.mode ?? "lora",
    rank: opts.lora?.rank ?? 8,
    loraAlpha: opts.lora?.alpha ?? 32,
    targets: [...(opts.lora?.targets ?? DEFAULT_LORA_TARGETS)],
    seed: opts.lora?.seed ?? 0,
    contextSize: opts.contextSize ?? 0,
    microBatchTokens: opts.microBatchTokens ?? 512,
    ...(opts.threads ? { threads: opts.threads } : {}),
    ...(opts.device ? { device: opts.device } : {}),
    ...(opts.dequantize ? { dequantize: true } : {}),
    ...(opts.transposeBudgetMb !== undefined ? { transposeBudgetMb: opts.transposeBudgetMb } : {}),
    ...(opts.profile ? { profile: true } : {}),
  };
}

/**
 * Creates a trainer on a loaded model's native handle (Model.createTrainer passes its own), on the
 * calling thread: it waits for the model's running call and builds the parameters (and, for real
 * checkpoints, weight copies and transposes) before returning. `openTrainer` does the same work
 * off the JS thread. Defaults: LoRA rank 8, alpha 32 on q,k,v,o,gate,up,down, seed 0; AdamW lr
 * 2e-4; 512-token micro-batches; α/β 0.7/0.3 per step. Where a choice is open the engine is
 * neutral: a constant rate with no warmup, no clipping, no weight decay. A fine-tuning run states
 * its own choices on top (src/train/options.ts: cosine decay, warmup, clipping at 1).
 */
export function createTrainer(modelOrHandle: TrainerHost, opts: TrainerOptions = {}): Trainer {
  checkOptions(opts);
  const { model, enqueue } = hostParts(modelOrHandle);
  const handle = new (native().Trainer)(model, nativeTrainerOptions(opts));
  return new Trainer(handle, opts, enqueue);
}

/**
 * createTrainer without blocking the event loop: the session is built in a worker, after the
 * model's earlier calls (it joins the model's call queue), and the returned promise rejects with
 * the same errors createTrainer throws.
 */
export function openTrainer(modelOrHandle: TrainerHost, opts: TrainerOptions = {}): Promise<Trainer> {
  return openTrainerWith(modelOrHandle, opts, (model, nopts) => native().buildTrainSession(model, nopts));
}

/** @internal openTrainer with the session built by `buildSession` (the development hooks build one with their own settings). */
export async function openTrainerWith(
  modelOrHandle: TrainerHost,
  opts: TrainerOptions,
  buildSession: (model: NativeModel, options: NativeTrainerOptions) => Promise<NativeTrainSession>,
): Promise<Trainer> {
  checkOptions(opts);
  const { model, enqueue } = hostParts(modelOrHandle);
  const nopts = nativeTrainerOptions(opts);
  const build = () => buildSession(model, nopts);
  const session = await (enqueue ? enqueue(build) : build());
  const handle = new (native().Trainer)(model, nopts, session);
  return new Trainer(handle, opts, enqueue);
}
