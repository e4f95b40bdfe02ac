// The scorer's development hooks (see dev.h): its batching without the log-prob reduction (the
// benchmark's ceiling), and the full logits of one sequence (the naive reference of the tests).
#include <algorithm>
#include <cmath>

#include "dev.h"
#include "lora.h"
#include "scorer.h"

namespace msr::dev {

namespace {

Napi::Object options_at(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsObject() ? info[i].As<Napi::Object>() : Napi::Object::New(info.Env());
}

// Every position's logits of one sequence in the scorer's (unified) context, batch by batch.
std::vector<float> sequence_logits(ScorerState& s, const std::vector<llama_token>& tokens, const std::vector<LoraChoice>& loras) {
  const size_t nv = static_cast<size_t>(s.model->n_vocab);
  std::vector<float> out(tokens.size() * nv);
  std::lock_guard<std::mutex> lock(s.model->mutex);
  s.check_alive("scorer.logits");
  s.ensure_context("scorer.logits");
  if (tokens.size() > s.n_ctx) throw UserError("scorer.logits: more tokens than the scorer's context of " + std::to_string(s.n_ctx) + " cells");
  ScopedLoras scoped_loras(s.ctx, loras);
  llama_memory_clear(llama_get_memory(s.ctx), true);
  ScopedBatch scoped(static_cast<int32_t>(s.n_batch) + 1, 1);  // + decode_batch's pad token
  llama_batch& batch = scoped.batch;
  for (size_t start = 0; start < tokens.size(); start += s.n_batch) {
    size_t end = std::min(tokens.size(), start + s.n_batch);
    batch.n_tokens = 0;
    for (size_t i = start; i < end; i++) {
      int32_t b = batch.n_tokens++;
      batch.token[b] = tokens[i];
      batch.pos[b] = static_cast<llama_pos>(i);
      batch.n_seq_id[b] = 1;
      batch.seq_id[b][0] = 0;
      batch.logits[b] = true;
    }
    if (decode_batch(s.ctx, batch, s.numerics) != 0) throw UserError("scorer.logits: llama_decode failed: " + take_llama_errors());
    std::copy(llama_get_logits(s.ctx), llama_get_logits(s.ctx) + (end - start) * nv, out.begin() + start * nv);
  }
  check_finite_logits(out, nv, "scorer.logits", !loras.empty());
  return out;
}

}  // namespace

Napi::Value ScorerDecodeOnly(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 2, "scorerDecodeOnly(scorer, requests, options?: {lora?})");
  const Pinned<ScorerState> pin = scorer_from_js(info[0], "scorer.score");
  auto reqs = std::make_shared<std::vector<ScoreRequest>>(get_score_requests(info[1], pin.peek()));
  auto loras = parse_lora_option(options_at(info, 2), *pin.peek().model);
  ScorerPtr st = pin.ready();
  return PromiseWorker::Run(
      env, [st, reqs, loras]() { score_requests(*st, *reqs, loras, false); }, [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value ScorerLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 2, "scorerLogits(scorer, tokens, options?: {lora?})");
  const Pinned<ScorerState> pin = scorer_from_js(info[0], "scorer.logits");
  auto tokens = std::make_shared<std::vector<llama_token>>(get_tokens(info[1], "tokens"));
  const ScorerState& s = pin.peek();
  if (tokens->empty() || tokens->size() > s.n_ctx) throw Napi::RangeError::New(env, "scorer.logits: need 1..contextSize tokens");
  if (tokens->size() > static_cast<size_t>(s.model->n_ctx_train)) {
    throw Napi::RangeError::New(env, "scorer.logits: more tokens than the model's training context (" + std::to_string(s.model->n_ctx_train) + ")");
  }
  try {
    check_token_range(*s.model, *tokens, "scorer.logits");
  } catch (const UserError& e) {
    throw Napi::RangeError::New(env, e.what());
  }
  auto loras = parse_lora_option(options_at(info, 2), *s.model);
  ScorerPtr st = pin.ready();
  auto out = std::make_shared<std::vector<float>>();
  return PromiseWorker::Run(
      env, [st, tokens, loras, out]() { *out = sequence_logits(*st, *tokens, loras); },
      [out](Napi::Env env) -> Napi::Value {
        auto a = Napi::Float32Array::New(env, out->size());
        std::copy(out->begin(), out->end(), a.Data());
        return a;
      });
}

}  // namespace msr::dev
