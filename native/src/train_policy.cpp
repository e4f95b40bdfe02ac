// Policy-gradient steps (see train_policy.h): checks the per-token inputs, turns samples into
// packed micro-batches whose rows carry the policy inputs and normalisation coefficients, runs
// them through the training graph (whose fused kernel computes each row's loss and gradient from
// its log-prob, TrainGraph::fused_policy below), and reports the step's statistics from the rows'
// log-probs with the same policy_term the kernels use.
#include "train_policy.h"

#include <cmath>
#include <string>

#include "ggml-backend.h"
#ifdef MSR_REC_CUDA
#include "ggml-cuda.h"
#endif

namespace msr {

namespace {

struct PolicyPlan {
  std::vector<PackedBatch> micro;
  std::vector<std::vector<int64_t>> row_token;  // per micro-batch: the completion-token index of each row
  std::vector<float> coefs;                     // per completion token, without cfg.scale
  int64_t tokens = 0, completion_tokens = 0;
};

const char* loss_type_name(PolicyLossType t) {
  return t == PolicyLossType::Sequence ? "sequence" : t == PolicyLossType::Token ? "token" : "constant";
}

void check_inputs(const PolicyInputs& in, int64_t n, bool need_advantages) {
  auto check = [n](const std::vector<float>& v, const char* what, bool logprobs) {
    if (static_cast<int64_t>(v.size()) != n) {
      throw UserError(std::string(what) + " has " + std::to_string(v.size()) + " entries but the batch has " + std::to_string(n) +
                      " completion tokens (tokens after the first whose segment is not the prompt); pass one per completion token, "
                      "sample after sample");
    }
    for (size_t k = 0; k < v.size(); k++) {
      if (!std::isfinite(v[k])) throw UserError(std::string(what) + "[" + std::to_string(k) + "] is not a finite number");
      // A log-prob is <= 0 (float rounding may leave it a hair above).
      if (logprobs && v[k] > 1e-3f) {
        throw UserError(std::string(what) + "[" + std::to_string(k) + "] is " + std::to_string(v[k]) +
                        ", but log-probabilities are <= 0: pass log-probs (e.g. a scorer's tokenLogprobs), not probabilities");
      }
    }
  };
  if (need_advantages || !in.advantages.empty()) check(in.advantages, "advantages", false);
  if (!in.ref_logprobs.empty()) check(in.ref_logprobs, "refLogprobs", true);
  if (!in.old_logprobs.empty()) check(in.old_logprobs, "oldLogprobs", true);
}

void check_config(const PolicyConfig& c) {
  const PolicyParams& p = c.params;
  if (!(std::isfinite(p.kl_coef) && p.kl_coef >= 0)) throw UserError("the KL coefficient (beta) must be a finite number >= 0");
  if (!(p.eps_low >= 0 && p.eps_low < 1)) throw UserError("epsilon (the lower clip range) must be in [0, 1), e.g. 0.2");
  if (!(std::isfinite(p.eps_high) && p.eps_high >= 0)) throw UserError("epsilonHigh must be a finite number >= 0 (e.g. 0.28 for DAPO)");
  if (!(std::isfinite(p.temperature) && p.temperature > 0)) throw UserError("temperature must be a finite number > 0");
  if (c.loss_type == PolicyLossType::Constant && c.max_tokens < 1) {
    throw UserError("lossType 'constant' divides by samples x maxTokens: pass maxTokens, the completion budget the samples were generated with");
  }
  if (!(std::isfinite(c.scale) && c.scale > 0)) throw UserError("lossScale must be a finite number > 0");
}

PolicyPlan plan_policy(const SampleBatch& b, const PolicyInputs& in, const PolicyConfig& cfg, int n_vocab, int n_ctx, int budget,
                       bool need_advantages) {
  check_config(cfg);
  const std::vector<size_t> start = check_batch(b, n_vocab, n_ctx);
  const size_t n = b.lengths.size();
  std::vector<int64_t> n_completion(n, 0);
  PolicyPlan p;
  for (size_t i = 0; i < n; i++) {
    for (int j = 1; j < b.lengths[i]; j++) n_completion[i] += b.segments[start[i] + j] != kPrompt;
    p.completion_tokens += n_completion[i];
    if (cfg.loss_type == PolicyLossType::Constant && n_completion[i] > cfg.max_tokens) {
      throw UserError("sample " + std::to_string(i) + " has " + std::to_string(n_completion[i]) + " completion tokens, more than maxTokens (" +
                      std::to_string(cfg.max_tokens) + "); pass the budget the samples were generated with");
    }
  }
  if (p.completion_tokens == 0) {
    throw UserError("no sample has completion tokens (segments other than the prompt), so there is nothing to learn");
  }
  check_inputs(in, p.completion_tokens, need_advantages);
  p.tokens = static_cast<int64_t>(b.tokens.size());

  PackedBatch* cur = nullptr;
  int64_t k = 0;  // completion-token index
  for (size_t i = 0; i < n; i++) {
    const int L = b.lengths[i];
    if (!cur || static_cast<int>(cur->tokens.size()) + L > budget) {
      p.micro.emplace_back();
      p.row_token.emplace_back();
      cur = &p.micro.back();
      cur->policy = &cfg.params;
    }
    const int base = static_cast<int>(cur->tokens.size());
    const double N = static_cast<double>(n);
    const double c = cfg.loss_type == PolicyLossType::Sequence ? 1.0 / (N * static_cast<double>(std::max<int64_t>(1, n_completion[i])))
                     : cfg.loss_type == PolicyLossType::Token  ? 1.0 / static_cast<double>(p.completion_tokens)
                                                               : 1.0 / (N * cfg.max_tokens);
    for (int j = 0; j < L; j++) {
      cur->tokens.push_back(b.tokens[start[i] + j]);
      cur->positions.push_back(j);
      cur->sample_of.push_back(static_cast<int32_t>(i));
      if (j == 0 || b.segments[start[i] + j] == kPrompt) continue;
      cur->rows.push_back(base + j - 1);
      cur->targets.push_back(b.tokens[start[i] + j]);
      cur->weights.push_back(static_cast<float>(c * cfg.scale));
      cur->advantages.push_back(in.advantages.empty() ? 0.f : in.advantages[k]);
      if (!in.ref_logprobs.empty()) cur->ref_logprobs.push_back(in.ref_logprobs[k]);
      if (!in.old_logprobs.empty()) cur->old_logprobs.push_back(in.old_logprobs[k]);
      p.row_token.back().push_back(k);
      p.coefs.push_back(static_cast<float>(c));
      k++;
    }
  }
  return p;
}

PolicyStats run_policy(TrainSession& s, const SampleBatch& b, const PolicyInputs& in, const PolicyConfig& cfg, bool backward, bool zero_grads) {
  TrainGraph& g = s.graph();
  const PolicyPlan plan = plan_policy(b, in, cfg, g.n_vocab(), g.n_ctx(), s.micro_batch_tokens(), backward);
  PolicyStats st;
  st.tokens = plan.tokens;
  st.completion_tokens = plan.completion_tokens;
  st.samples = static_cast<int>(b.lengths.size());
  st.logprobs.assign(static_cast<size_t>(plan.completion_tokens), 0.f);
  std::vector<float> entropy(st.logprobs.size(), 0.f);
  if (backward && zero_grads) g.zero_grads();
  for (size_t mb = 0; mb < plan.micro.size(); mb++) {
    PassResult r = g.run(plan.micro[mb], backward);
    for (size_t row = 0; row < r.row_logprobs.size(); row++) {
      st.logprobs[plan.row_token[mb][row]] = r.row_logprobs[row];
      entropy[plan.row_token[mb][row]] = r.row_entropy[row];
    }
    if (g.config().profile) st.passes.push_back(std::move(r.profile));
  }
  // The reported numbers, from each token's log-prob with the kernels' own formula (in double).
  int64_t clipped = 0;
  for (int64_t k = 0; k < plan.completion_tokens; k++) {
    const double ref = in.ref_logprobs.empty() ? 0.0 : in.ref_logprobs[k];
    const double old = in.old_logprobs.empty() ? 0.0 : in.old_logprobs[k];
    const PolicyTerm t = policy_term(st.logprobs[k], in.advantages.empty() ? 0.0 : in.advantages[k], in.ref_logprobs.empty() ? nullptr : &ref,
                                     in.old_logprobs.empty() ? nullptr : &old, cfg.params);
    st.loss += plan.coefs[k] * t.loss;
    st.policy_loss += plan.coefs[k] * (t.loss - cfg.params.kl_coef * t.kl);
    st.kl += t.kl;
    st.ratio_mean += t.ratio;
    st.entropy += entropy[k];
    clipped += t.clipped;
  }
  const double n = static_cast<double>(plan.completion_tokens);
  st.kl /= n;
  st.ratio_mean /= n;
  st.entropy /= n;
  st.clip_fraction = static_cast<double>(clipped) / n;
  if (!std::isfinite(st.loss)) {
    throw UserError("the policy loss is not finite (" + std::to_string(st.loss) + ", lossType '" + loss_type_name(cfg.loss_type) + "') after " +
                    std::to_string(s.steps_done()) +
                    " steps: old or reference log-probs far from the current ones overflow the ratio or the KL term (recompute them), or the "
                    "learning rate is too high (lower it and resume from the last checkpoint)");
  }
  return st;
}

}  // namespace

PolicyStats policy_step(TrainSession& s, const SampleBatch& batch, const PolicyInputs& in, const PolicyConfig& cfg, const AdamW* opt,
                        bool zero_grads) {
  PolicyStats st = run_policy(s, batch, in, cfg, true, zero_grads);
  st.grad_norm = s.apply_gradients(opt);
  return st;
}

PolicyStats policy_evaluate(TrainSession& s, const SampleBatch& batch, const PolicyInputs& in, const PolicyConfig& cfg) {
  return run_policy(s, batch, in, cfg, false, false);
}

// The policy form of TrainGraph::fused_ce (train_graph.cpp): the same three devices, the policy
// kernels instead of the cross-entropy ones, and each row's entropy besides its log-prob.
double TrainGraph::fused_policy(const ggml_tensor* logits, const PackedBatch& b, ggml_tensor* G, PassResult& res) const {
  const int64_t R = static_cast<int64_t>(b.rows.size());
  res.row_logprobs.resize(R);
  res.row_entropy.resize(R);
  PolicyRows in;
  in.advantages = b.advantages.data();
  in.coefs = b.weights.data();
  in.ref_logprobs = b.ref_logprobs.empty() ? nullptr : b.ref_logprobs.data();
  in.old_logprobs = b.old_logprobs.empty() ? nullptr : b.old_logprobs.data();
  const PolicyParams& p = *b.policy;
  if (!on_gpu()) {
    float* grad = G ? static_cast<float*>(G->data) : nullptr;
    return fused_policy_cpu(static_cast<const float*>(logits->data), R, n_vocab_, n_vocab_, b.targets.data(), in, p, res.row_logprobs.data(),
                            res.row_entropy.data(), grad, n_vocab_, std::max(1, cfg_.n_threads));
  }
#ifdef MSR_REC_CUDA
  if (ggml_backend_is_cuda(backend_.get())) {
    return fused_policy_cuda_rows(static_cast<const float*>(logits->data), R, n_vocab_, n_vocab_, b.targets.data(), in, p, res.row_logprobs.data(),
                                  res.row_entropy.data(), G ? static_cast<float*>(G->data) : nullptr, n_vocab_);
  }
#endif
  // Another GPU backend: the logits make a round trip through host memory.
  std::vector<float> host(static_cast<size_t>(R * n_vocab_));
  ggml_backend_tensor_get(logits, host.data(), 0, host.size() * sizeof(float));
  const double loss = fused_policy_cpu(host.data(), R, n_vocab_, n_vocab_, b.targets.data(), in, p, res.row_logprobs.data(), res.row_entropy.data(),
                                       G ? host.data() : nullptr, n_vocab_, std::max(1, cfg_.n_threads));
  if (G) ggml_backend_tensor_set(G, host.data(), 0, host.size() * sizeof(float));
  return loss;
}

}  // namespace msr
