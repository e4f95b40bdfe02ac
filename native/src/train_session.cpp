// Loss weighting, packing, gradient accumulation and AdamW for TrainSession.
//
// Loss (METHOD.md §3): loss = α·L_rea + β·L_rec with L_rea = mean over the samples that have
// reasoning tokens of (mean NLL over that sample's reasoning tokens), L_rec likewise. Hence the
// per-token weight for predicting token p of sample i is
//     w = α / (|rea_i| · N_rea)   for a reasoning token,
//     w = β / (|rec_i| · N_rec)   for a recommendation token,   0 for a prompt token,
// normalised over the whole step's batch, so micro-batch gradients simply add up to the
// gradient of the batch loss, and packed and unpacked runs give the same numbers.
#include "train_session.h"

#include <cmath>
#include <string>

namespace msr {

namespace {

struct Plan {
  std::vector<PackedBatch> micro;
  std::vector<std::vector<std::pair<int, uint8_t>>> row_owner;  // per micro-batch: (sample, segment) of each row
  std::vector<int> n_rea, n_rec;
  int N_rea = 0, N_rec = 0;
  int64_t tokens = 0, loss_tokens = 0;
};

Plan plan_batch(const SampleBatch& b, const LossWeights& lw, int n_vocab, int n_ctx, int budget) {
  const size_t n = b.lengths.size();
  if (!std::isfinite(lw.alpha) || !std::isfinite(lw.beta) || lw.alpha < 0 || lw.beta < 0) {
    throw UserError("alpha and beta must be finite and >= 0");
  }
  const std::vector<size_t> start = check_batch(b, n_vocab, n_ctx);
  Plan p;
  p.n_rea.assign(n, 0);
  p.n_rec.assign(n, 0);
  for (size_t i = 0; i < n; i++) {
    for (int j = 1; j < b.lengths[i]; j++) {  // the first token is never predicted
      const uint8_t s = b.segments[start[i] + j];
      if (s == kReasoning) p.n_rea[i]++;
      if (s == kRecommendation) p.n_rec[i]++;
    }
    p.N_rea += p.n_rea[i] > 0;
    p.N_rec += p.n_rec[i] > 0;
  }
  if (p.N_rea + p.N_rec == 0) throw UserError("no sample has reasoning or recommendation tokens, so there is nothing to learn");
  p.tokens = static_cast<int64_t>(b.tokens.size());

  PackedBatch* cur = nullptr;
  for (size_t i = 0; i < n; i++) {
    const int L = b.lengths[i];
    if (!cur || static_cast<int>(cur->tokens.size()) + L > budget) {
      p.micro.emplace_back();
      p.row_owner.emplace_back();
      cur = &p.micro.back();
    }
    auto& owner = p.row_owner.back();
    const int base = static_cast<int>(cur->tokens.size());
    for (int j = 0; j < L; j++) {
      cur->tokens.push_back(b.tokens[start[i] + j]);
      cur->positions.push_back(j);
      cur->sample_of.push_back(static_cast<int32_t>(i));
      const uint8_t s = b.segments[start[i] + j];
      if (j == 0 || s == kPrompt) continue;
      const float w = lw.scale * (s == kReasoning ? lw.alpha / (static_cast<float>(p.n_rea[i]) * p.N_rea)
                                                  : lw.beta / (static_cast<float>(p.n_rec[i]) * p.N_rec));
      cur->rows.push_back(base + j - 1);
      cur->targets.push_back(b.tokens[start[i] + j]);
      cur->weights.push_back(w);
      owner.push_back({static_cast<int>(i), s});
      p.loss_tokens++;
    }
  }
  return p;
}

}  // namespace

std::vector<size_t> check_batch(const SampleBatch& b, int n_vocab, int n_ctx) {
  const size_t n = b.lengths.size();
  if (n == 0) throw UserError("the batch is empty: pass at least one sample");
  if (b.segments.size() != b.tokens.size()) throw UserError("segments must have one entry per token");
  std::vector<size_t> start(n);
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    const int L = b.lengths[i];
    if (L < 1) throw UserError("sample " + std::to_string(i) + " has no tokens");
    if (off + L > b.tokens.size()) throw UserError("the sample lengths add up to more tokens than were given");
    if (L > n_ctx) {
      throw UserError("sample " + std::to_string(i) + " has " + std::to_string(L) + " tokens, more than the training context (" +
                      std::to_string(n_ctx) + "); shorten it or create the trainer with a larger contextSize");
    }
    start[i] = off;
    for (int j = 0; j < L; j++) {
      const int32_t t = b.tokens[off + j];
      if (t < 0 || t >= n_vocab) {
        throw UserError("sample " + std::to_string(i) + " has token id " + std::to_string(t) + " at position " + std::to_string(j) +
                        ", outside the model's vocabulary [0, " + std::to_string(n_vocab) + "); tokenize with this model");
      }
      if (b.segments[off + j] > kRecommendation) throw UserError("segment codes must be 0 (prompt), 1 (reasoning) or 2 (recommendation)");
    }
    off += L;
  }
  if (off != b.tokens.size()) throw UserError("the sample lengths add up to fewer tokens than were given");
  return start;
}

TrainSession::TrainSession(ModelPtr model, const TrainConfig& cfg, int micro_batch_tokens)
    : graph_(std::make_unique<TrainGraph>(std::move(model), cfg)), micro_batch_tokens_(micro_batch_tokens) {
  if (micro_batch_tokens_ <= 0) micro_batch_tokens_ = graph_->n_ctx();
  for (const auto& p : graph_->params()) {
    m_.emplace_back(p.numel(), 0.f);
    v_.emplace_back(p.numel(), 0.f);
  }
}

StepStats TrainSession::run(const SampleBatch& batch, const LossWeights& lw, bool backward, bool zero_grads) {
  Plan plan = plan_batch(batch, lw, graph_->n_vocab(), graph_->n_ctx(), micro_batch_tokens_);
  std::vector<double> rea(batch.lengths.size(), 0.0), rec(batch.lengths.size(), 0.0);
  if (backward && zero_grads) graph_->zero_grads();
  StepStats st;
  for (size_t mb = 0; mb < plan.micro.size(); mb++) {
    PassResult r = graph_->run(plan.micro[mb], backward);
    for (size_t k = 0; k < r.row_logprobs.size(); k++) {
      const auto [i, s] = plan.row_owner[mb][k];
      (s == kReasoning ? rea : rec)[i] -= r.row_logprobs[k];
    }
    if (graph_->config().profile) st.passes.push_back(std::move(r.profile));
  }
  for (size_t i = 0; i < rea.size(); i++) {
    if (plan.n_rea[i]) st.loss_reasoning += rea[i] / plan.n_rea[i] / plan.N_rea;
    if (plan.n_rec[i]) st.loss_recommendation += rec[i] / plan.n_rec[i] / plan.N_rec;
  }
  st.loss = lw.alpha * st.loss_reasoning + lw.beta * st.loss_recommendation;
  st.tokens = plan.tokens;
  st.loss_tokens = plan.loss_tokens;
  st.reasoning_samples = plan.N_rea;
  st.recommendation_samples = plan.N_rec;
  if (!std::isfinite(st.loss)) {
    throw UserError("the loss is not finite (" + std::to_string(st.loss) + ") after " + std::to_string(steps_) +
                    " steps: the learning rate is probably too high; lower it and resume from the last checkpoint");
  }
  return st;
}

StepStats TrainSession::step(const SampleBatch& batch, const LossWeights& lw, const AdamW* opt, bool zero_grads) {
  StepStats st = run(batch, lw, true, zero_grads);
  st.grad_norm = apply_gradients(opt);
  return st;
}

double TrainSession::apply_gradients(const AdamW* opt) {
  double sq = 0.0;
  for (const auto& p : graph_->params()) {
    const float* g = p.grad_data();
    for (int64_t j = 0; j < p.numel(); j++) sq += static_cast<double>(g[j]) * g[j];
  }
  const double grad_norm = std::sqrt(sq);
  if (!std::isfinite(grad_norm)) {
    throw UserError("the gradient is not finite after " + std::to_string(steps_) +
                    " steps: the learning rate is probably too high; lower it and resume from the last checkpoint");
  }
  if (opt) {
    if (opt->clip > 0 && grad_norm > opt->clip) {
      const float s = static_cast<float>(opt->clip / grad_norm);
      for (auto& p : graph_->params()) {
        float* g = p.grad_data();
        for (int64_t j = 0; j < p.numel(); j++) g[j] *= s;
      }
    }
    adamw_update(*opt);
  }
  return grad_norm;
}

StepStats TrainSession::evaluate(const SampleBatch& batch, const LossWeights& lw) { return run(batch, lw, false, false); }

// AdamW with decoupled weight decay (Loshchilov & Hutter; PyTorch's order: decay, then the Adam
// step with bias-corrected moments). An update that would leave a parameter or moment non-finite
// (a learning rate so high the step overflows a float) changes nothing: the first pass only
// checks what the second writes, so the trainer never holds, trains on or saves NaN or inf.
void TrainSession::adamw_update(const AdamW& o) {
  const int64_t t = steps_ + 1;
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(t));
  const float b1 = static_cast<float>(o.beta1), b2 = static_cast<float>(o.beta2);
  const float step_size = static_cast<float>(o.lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float decay = static_cast<float>(1.0 - o.lr * o.weight_decay);
  const float eps = static_cast<float>(o.eps);
  auto& params = graph_->params();
  struct Next {
    float m, v, w;
  };
  const auto next = [&](float w, float g, float m, float v) {
    Next n;
    n.m = b1 * m + (1.f - b1) * g;
    n.v = b2 * v + (1.f - b2) * g * g;
    n.w = w * decay - step_size * n.m / (std::sqrt(n.v) * inv_sqrt_bc2 + eps);
    return n;
  };
  for (size_t k = 0; k < params.size(); k++) {
    const float* w = params[k].data();
    const float* g = params[k].grad_data();
    for (int64_t j = 0; j < params[k].numel(); j++) {
      const Next n = next(w[j], g[j], m_[k][j], v_[k][j]);
      if (!std::isfinite(n.w) || !std::isfinite(n.m) || !std::isfinite(n.v)) {
        throw UserError("the AdamW update at step " + std::to_string(t) + " would overflow " + params[k].name + " to " + std::to_string(n.w) +
                        " (learning rate " + std::to_string(o.lr) + "); nothing was changed: lower the learning rate");
      }
    }
  }
  for (size_t k = 0; k < params.size(); k++) {
    float* w = params[k].data();
    const float* g = params[k].grad_data();
    float* m = m_[k].data();
    float* v = v_[k].data();
    for (int64_t j = 0; j < params[k].numel(); j++) {
      const Next n = next(w[j], g[j], m[j], v[j]);
      m[j] = n.m;
      v[j] = n.v;
      w[j] = n.w;
    }
  }
  steps_ = t;
}

}  // namespace msr
