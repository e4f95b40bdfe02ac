// Policy-gradient steps on a TrainSession: GRPO and its relatives (DAPO, Dr. GRPO) over sampled
// completions, with per-token advantages of either sign, an optional KL penalty to a reference
// policy (k3) and PPO-style ratio clipping against the policy that sampled the batch. The loss
// of one token is policy_term (native/kernels/policy_loss.h); this file decides which tokens are
// completion tokens, how their losses are normalised, and reports the step's statistics.
//
// Completion tokens: every predicted position (position >= 1) whose segment is not the prompt,
// in batch order; the per-token inputs (advantages, reference and old log-probs) have one entry
// per completion token, in that order (what Scorer.score returns as a continuation's
// tokenLogprobs, sample after sample).
//
// Normalisation of Σ_t loss_t over a batch of N samples with n_i completion tokens each:
//   Sequence  (GRPO):      mean over samples of (mean over the sample's tokens): c = 1 / (N · n_i)
//   Token     (DAPO):      mean over all completion tokens of the batch:          c = 1 / Σ n_i
//   Constant  (Dr. GRPO):  sum over tokens / (N · L), L the generation budget:    c = 1 / (N · L)
// Samples without completion tokens count in N and contribute nothing.
#pragma once
#include <cstdint>
#include <vector>

#include "fused_ce.h"
#include "train_session.h"

namespace msr {

enum class PolicyLossType { Sequence, Token, Constant };

struct PolicyConfig {
  PolicyParams params;
  PolicyLossType loss_type = PolicyLossType::Sequence;
  int max_tokens = 0;  // Constant: L, the completion budget the samples were generated with
  float scale = 1.f;   // multiplies every coefficient (1/gradAccum); not in the reported loss
};

// One entry per completion token of the batch, in batch order; ref and old empty = absent.
struct PolicyInputs {
  std::vector<float> advantages, ref_logprobs, old_logprobs;
};

struct PolicyStats {
  double loss = 0;           // Σ c·loss_t (clipped surrogate + β·kl)
  double policy_loss = 0;    // Σ c·(clipped surrogate)
  double kl = 0;             // mean over completion tokens of the k3 estimate (0 without reference log-probs)
  double clip_fraction = 0;  // fraction of completion tokens on the clipped branch (no policy gradient)
  double ratio_mean = 0;     // mean over completion tokens of e^(lp − lp_old) (1 without old log-probs)
  double entropy = 0;        // mean over completion tokens of the softmax's entropy (at the temperature)
  double grad_norm = 0;      // policy_step only: before clipping
  int64_t tokens = 0, completion_tokens = 0;
  int samples = 0;
  std::vector<float> logprobs;      // per completion token: log-prob under the weights the pass ran with
  std::vector<PassProfile> passes;  // one per micro-batch when the trainer profiles
};

// Gradients of the policy loss over the batch (micro-batched like TrainSession::step) added to the
// accumulators (zeroed first when `zero_grads`), then, when `opt` is given, one AdamW update.
// Throws UserError on bad input or a non-finite loss or gradient (then nothing is updated).
PolicyStats policy_step(TrainSession& s, const SampleBatch& batch, const PolicyInputs& in, const PolicyConfig& cfg, const AdamW* opt,
                        bool zero_grads);
// The same loss, statistics and log-probs without gradients.
PolicyStats policy_evaluate(TrainSession& s, const SampleBatch& batch, const PolicyInputs& in, const PolicyConfig& cfg);

}  // namespace msr
