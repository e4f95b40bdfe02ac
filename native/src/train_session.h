// TrainSession: one training run on a TrainGraph: turns samples into loss-weighted packed
// micro-batches (METHOD.md §3), accumulates gradients over them, reports the loss terms, and
// applies AdamW. Plain C++ (no JS): the N-API class in trainer.cpp copies arguments in and out.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "train_graph.h"

namespace msr {

// Token roles inside a sample; a token's role decides the weight of the loss for predicting it.
enum Segment : uint8_t { kPrompt = 0, kReasoning = 1, kRecommendation = 2 };

struct SampleBatch {
  std::vector<int32_t> tokens;    // all samples end to end
  std::vector<int32_t> lengths;   // tokens per sample
  std::vector<uint8_t> segments;  // one Segment per token
};

// Checks a batch against the model: token ids inside the vocabulary, segment codes, lengths that
// add up, no sample longer than the training context. Returns each sample's offset in `tokens`;
// throws UserError naming the sample and the fix.
std::vector<size_t> check_batch(const SampleBatch& b, int n_vocab, int n_ctx);

struct LossWeights {
  float alpha = 0.7f, beta = 0.3f;
  float scale = 1.f;  // multiplies every token weight (1/gradAccum when steps accumulate); not in the reported loss
};

struct AdamW {
  double lr = 1e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0, clip = 0.0;
};

struct StepStats {
  double loss = 0, loss_reasoning = 0, loss_recommendation = 0, grad_norm = 0;
  int64_t tokens = 0, loss_tokens = 0;
  int reasoning_samples = 0, recommendation_samples = 0;
  std::vector<PassProfile> passes;  // one per micro-batch when the trainer profiles (TrainConfig::profile)
};

class TrainSession {
 public:
  TrainSession(ModelPtr model, const TrainConfig& cfg, int micro_batch_tokens);

  // Gradients of the weighted loss over the whole batch (micro-batched) added to the accumulators
  // (zeroed first when `zero_grads`), then, when `opt` is given, one AdamW update. Throws
  // UserError on bad input or a non-finite loss/gradient (then nothing is updated).
  StepStats step(const SampleBatch& batch, const LossWeights& lw, const AdamW* opt, bool zero_grads = true);
  StepStats evaluate(const SampleBatch& batch, const LossWeights& lw);
  // The global norm of the accumulated gradients (throws UserError when it is not finite) and,
  // when `opt` is given, clipping and one AdamW update: the end of step(), also used by steps
  // whose passes run elsewhere (train_policy.h).
  double apply_gradients(const AdamW* opt);

  TrainGraph& graph() { return *graph_; }
  int micro_batch_tokens() const { return micro_batch_tokens_; }
  int64_t steps_done() const { return steps_; }
  void set_steps_done(int64_t s) { steps_ = s; }
  std::vector<std::vector<float>>& adam_m() { return m_; }
  std::vector<std::vector<float>>& adam_v() { return v_; }

 private:
  StepStats run(const SampleBatch& batch, const LossWeights& lw, bool backward, bool zero_grads);
  void adamw_update(const AdamW& opt);

  std::unique_ptr<TrainGraph> graph_;
  int micro_batch_tokens_;
  int64_t steps_ = 0;
  std::vector<std::vector<float>> m_, v_;  // AdamW moments, one per param
};

}  // namespace msr
