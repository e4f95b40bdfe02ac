// The per-token policy-gradient loss (GRPO / PPO with a k3 KL penalty) as a function of the
// token's log-probability, shared by the CPU and CUDA fused kernels and by the trainer's
// statistics, so all three compute the same numbers from the same formula.
//
// For a completion token with current log-prob lp (at the policy's temperature), advantage A,
// old log-prob lp_old (the policy that sampled it; absent: lp itself, detached) and reference
// log-prob lp_ref (absent: no KL term):
//
//   r     = e^(lp − lp_old)                                       the importance ratio
//   loss  = −min(r·A, clip(r, 1 − ε_low, 1 + ε_high)·A) + β·kl
//   kl    = e^(lp_ref − lp) − (lp_ref − lp) − 1                   k3 estimator of KL(π ‖ π_ref), ≥ 0
//
// d loss / d lp = −A·r where the unclipped branch is the minimum, 0 where the clipped one is
// (A > 0 and r > 1 + ε_high, or A < 0 and r < 1 − ε_low: the "clipped" tokens), plus
// β·(1 − e^(lp_ref − lp)). Without old log-probs r = 1 with derivative r, so the policy term is
// the plain REINFORCE gradient −A. ε_high > ε_low is DAPO's clip-higher.
//
// The fused kernels need d loss / d lp only after a row's log-sum-exp: with c the token's
// normalisation coefficient, d(c·loss)/d logit_j = −c·(d loss/d lp)·(onehot_j − softmax_j), which
// is the cross-entropy gradient's form w·(softmax − onehot) with w = −c·(d loss / d lp).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MSR_HOST_DEVICE __host__ __device__
#else
#define MSR_HOST_DEVICE
#endif

namespace msr {

// The loss's hyperparameters (the same for every token of a step).
struct PolicyParams {
  float kl_coef = 0.f;  // β
  float eps_low = 0.2f, eps_high = 0.2f;
  // Logits are divided by it before the softmax (the sampling temperature, so lp is the
  // log-prob of the distribution the tokens were drawn from); 1 = the model's own distribution.
  float temperature = 1.f;
};

// Per-row inputs; ref and old may be null (no KL term / on-policy ratio).
struct PolicyRows {
  const float* advantages = nullptr;  // A, either sign
  const float* coefs = nullptr;       // c: the loss normalisation (and gradient-accumulation scale)
  const float* ref_logprobs = nullptr;
  const float* old_logprobs = nullptr;
};

struct PolicyTerm {
  double loss;       // the token's loss (before c)
  double dloss_dlp;  // its derivative in lp
  double kl;         // k3 (0 without a reference)
  double ratio;      // r (1 without old log-probs)
  bool clipped;      // the clipped branch is active: no policy gradient from this token
};

MSR_HOST_DEVICE inline PolicyTerm policy_term(double lp, double adv, const double* ref, const double* old, const PolicyParams& p) {
  PolicyTerm t{0.0, 0.0, 0.0, 1.0, false};
  if (old) t.ratio = exp(lp - *old);
  if (adv > 0 && t.ratio > 1.0 + p.eps_high) {
    t.clipped = true;
    t.loss = -(1.0 + p.eps_high) * adv;
  } else if (adv < 0 && t.ratio < 1.0 - p.eps_low) {
    t.clipped = true;
    t.loss = -(1.0 - p.eps_low) * adv;
  } else {
    t.loss = -t.ratio * adv;
    t.dloss_dlp = -t.ratio * adv;
  }
  if (ref) {
    const double d = *ref - lp;
    const double e = exp(d);
    t.kl = e - d - 1.0;
    t.loss += p.kl_coef * t.kl;
    t.dloss_dlp += p.kl_coef * (1.0 - e);
  }
  return t;
}

// policy_term for row r of `in` (the kernels' per-row call).
MSR_HOST_DEVICE inline PolicyTerm policy_term_row(double lp, const PolicyRows& in, int64_t r, const PolicyParams& p) {
  double ref = 0.0, old = 0.0;
  if (in.ref_logprobs) ref = in.ref_logprobs[r];
  if (in.old_logprobs) old = in.old_logprobs[r];
  return policy_term(lp, in.advantages[r], in.ref_logprobs ? &ref : nullptr, in.old_logprobs ? &old : nullptr, p);
}

}  // namespace msr
