// The trainer's development hooks (see dev.h): the training graph's logits and llama_decode's for
// the same tokens (the forward-equality tests), a parameter's accumulated gradient (the
// finite-difference tests), and sessions built with development settings.
#include <cmath>
#include <cstring>

#include "dev.h"
#include "trainer.h"

namespace msr::dev {

namespace {

Napi::Float32Array to_f32(Napi::Env env, const float* p, size_t n) {
  auto a = Napi::Float32Array::New(env, n);
  if (n) std::memcpy(a.Data(), p, n * sizeof(float));
  return a;
}

// Logits of every position of one sample ([len][n_vocab]) from the training graph's forward.
std::vector<float> training_logits(TrainSession& s, const std::vector<int32_t>& tokens) {
  TrainGraph& g = s.graph();
  if (tokens.empty()) throw UserError("logits: pass at least one token");
  if (static_cast<int>(tokens.size()) > g.n_ctx()) throw UserError("logits: more tokens than the training context");
  PackedBatch b;
  b.tokens = tokens;
  for (size_t j = 0; j < tokens.size(); j++) {
    if (tokens[j] < 0 || tokens[j] >= g.n_vocab()) throw UserError("logits: token id out of the vocabulary");
    b.positions.push_back(static_cast<int32_t>(j));
    b.sample_of.push_back(0);
  }
  std::vector<float> out = g.logits(b);
  check_finite_logits(out, static_cast<size_t>(g.n_vocab()), "trainer.logits", false);
  return out;
}

}  // namespace

Napi::Value TrainerLogits(const Napi::CallbackInfo& info) {
  require_args(info, 2, "trainerLogits(trainer, tokens)");
  const Pinned<TrainerState> pin = trainer_from_js(info[0], "trainer.logits");
  auto tokens = get_tokens(info[1], "tokens");
  TrainerStatePtr st = claim(pin);
  auto out = std::make_shared<std::vector<float>>();
  return PromiseWorker::Run(
      info.Env(),
      [st, tokens, out]() {
        BusyRelease release{st->busy};
        std::lock_guard<std::mutex> lock(st->session->graph().model()->mutex);
        *out = training_logits(*st->session, tokens);
      },
      [out](Napi::Env env) -> Napi::Value { return to_f32(env, out->data(), out->size()); });
}

Napi::Value TrainerReferenceLogits(const Napi::CallbackInfo& info) {
  require_args(info, 2, "trainerReferenceLogits(trainer, tokens)");
  const Pinned<TrainerState> pin = trainer_from_js(info[0], "trainer.referenceLogits");
  auto tokens = get_tokens(info[1], "tokens");
  TrainerStatePtr st = claim(pin);
  auto out = std::make_shared<std::vector<float>>();
  return PromiseWorker::Run(
      info.Env(),
      [st, tokens, out]() {
        BusyRelease release{st->busy};
        *out = reference_logits(*st->session, tokens);  // takes the model's lock itself
        check_finite_logits(*out, static_cast<size_t>(st->session->graph().n_vocab()), "trainer.referenceLogits", false);
      },
      [out](Napi::Env env) -> Napi::Value { return to_f32(env, out->data(), out->size()); });
}

Napi::Value TrainerGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 2, "trainerGrad(trainer, name)");
  const Pinned<TrainerState> pin = trainer_from_js(info[0], "trainer.getGrad");
  const std::string name = get_string(info[1], "name");
  TrainerStatePtr st = claim(pin);
  BusyRelease release{st->busy};
  const TrainParam* p = st->session->graph().find(name);
  if (!p) throw Napi::Error::New(env, "no trainable parameter named '" + name + "'; see trainer.paramNames()");
  return to_f32(env, p->grad_data(), static_cast<size_t>(p->numel()));
}

Napi::Value BuildTrainSession(const Napi::CallbackInfo& info) {
  const char* signature = "buildTrainSession(model, options, settings: {transposedBackward?, sliceMb?, profileNodes?})";
  require_args(info, 3, signature);
  TrainerArgs args = parse_trainer_args(info, signature);
  if (!info[2].IsObject()) throw Napi::TypeError::New(info.Env(), std::string("expected ") + signature);
  Napi::Object d = info[2].As<Napi::Object>();
  TrainDevSettings& dev = args.cfg.dev;
  dev.transposed_backward = get_bool(d, "transposedBackward", false);
  dev.slice_mb = get_number(d, "sliceMb", dev.slice_mb);
  if (!(dev.slice_mb > 0 && std::isfinite(dev.slice_mb))) throw Napi::RangeError::New(info.Env(), "sliceMb must be a finite number > 0");
  dev.profile_nodes = get_bool(d, "profileNodes", false);
  if (dev.profile_nodes) args.cfg.profile = true;  // the node times travel in the pass profiles
  return build_session_async(info.Env(), args);
}

}  // namespace msr::dev
