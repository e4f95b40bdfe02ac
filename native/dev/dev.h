// Development hooks: entry points that tests and benchmarks call and the product never does
// (naive references, kernel checks, baselines, a trainer's or scorer's internals). They are built
// into the addon from a repository checkout only (CMakeLists.txt: MSR_REC_DEV; installed packages
// do not ship native/dev) and registered by addon.cpp under one object, `dev`; they are typed in
// src/engine/bindings.ts (NativeDevAddon, reached through devAddon()). Every hook checks its
// arguments as strictly as a product call: a bad one is an Error, never an abort.
#pragma once
#include <napi.h>

#include <vector>

namespace msr {

class TrainSession;

namespace dev {

// ---- cross_entropy.cpp ----
// fusedCrossEntropy(logits: Float32Array, rows, vocab, targets: Int32Array, weights: Float32Array | null,
//   {reference?, threads?, grad?, gradOut?}) -> {loss, logprobs, grad?}: the fused CE kernel (or its
//   naive reference) on host logits, synchronously.
Napi::Value FusedCrossEntropy(const Napi::CallbackInfo& info);
// fusedPolicyLoss(logits, rows, vocab, targets, {advantages, coefs, refLogprobs?, oldLogprobs?},
//   {klCoef?, epsilonLow?, epsilonHigh?, temperature?, reference?, threads?, grad?}) -> {loss, logprobs,
//   entropy, grad?}: the policy-gradient form of the kernel (fused_policy_cpu, or its reference).
Napi::Value FusedPolicyLoss(const Napi::CallbackInfo& info);
// denseCrossEntropyGgml(logits, rows, vocab, targets, {threads?, backward?, runs?}) -> {loss, ms, extraBytes}:
//   ggml's dense ggml_cross_entropy_loss (one-hot label matrix) on the same logits, timed: the baseline
//   bench/ce.ts compares the fused kernel with.
Napi::Value DenseCrossEntropyGgml(const Napi::CallbackInfo& info);

// ---- out_prod_check.cpp ----
// outProdCheck({type, m, k, n, threads?, layout?, isa?, seed?, runs?, batches?, groups?}) -> errors and
//   times of the training backward's CPU out_prod against float64 sums and ggml's F32 path.
Napi::Value OutProdCheck(const Napi::CallbackInfo& info);

// ---- scorer_hooks.cpp ----
// scorerDecodeOnly(scorer, requests, {lora?}) -> Promise<void>: the scorer's batching with logits at
//   every position and no log-prob work (the throughput ceiling bench/scoring.ts compares with).
Napi::Value ScorerDecodeOnly(const Napi::CallbackInfo& info);
// scorerLogits(scorer, tokens, {lora?}) -> Promise<Float32Array>: [tokens × vocab] logits of one
//   sequence, the naive path the fused reduction is tested against.
Napi::Value ScorerLogits(const Napi::CallbackInfo& info);

// ---- sampler_hooks.cpp ----
// sampleRows(model, logits: Float32Array (rows × vocab), {temperature, topK?, topP?, minP?, seed?, grammar?,
//   wholeVocabulary?}) -> Int32Array: one generator TokenSampler sampling a token from each row in turn
//   (accepting it into its grammar), by its fast path or (wholeVocabulary) llama.cpp's chain over the
//   whole vocabulary: the reference the fast path is tested against.
Napi::Value SampleRows(const Napi::CallbackInfo& info);

// ---- trainer_hooks.cpp ----
// trainerLogits(trainer, tokens) -> Promise<Float32Array>: the training graph's [tokens × vocab] logits.
Napi::Value TrainerLogits(const Napi::CallbackInfo& info);
// trainerReferenceLogits(trainer, tokens) -> Promise<Float32Array>: llama_decode's logits with the
//   trainer's current adapter (train_reference.cpp), what the training forward is tested against.
Napi::Value TrainerReferenceLogits(const Napi::CallbackInfo& info);
// trainerGrad(trainer, name) -> Float32Array: the gradient accumulated for one parameter.
Napi::Value TrainerGrad(const Napi::CallbackInfo& info);
// buildTrainSession(model, options, {transposedBackward?, sliceMb?, profileNodes?}) -> Promise<session>:
//   product buildTrainSession with TrainDevSettings (train_graph.h); `new Trainer(model, options,
//   session)` adopts the session as it adopts a product one.
Napi::Value BuildTrainSession(const Napi::CallbackInfo& info);

// ---- train_reference.cpp ----
// Logits of every position ([tokens.size()][n_vocab]) from llama.cpp's own graph (llama_decode, no
// flash attention, F32 K/V cache) with the session's current adapter loaded through llama.cpp's
// LoRA loader. Takes the model's lock itself.
std::vector<float> reference_logits(TrainSession& s, const std::vector<int32_t>& tokens);

}  // namespace dev
}  // namespace msr
