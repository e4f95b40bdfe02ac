// The Trainer's reinforcement-learning entry points: policy-gradient steps (train_policy.h) and
// live adapters (live_lora.h). Same shape as trainer.cpp: JS arguments copied into plain C++ on
// the main thread, the work in a PromiseWorker holding the model's mutex, results built back on
// the main thread.
#include <cstring>

#include "live_lora.h"
#include "train_policy.h"
#include "trainer.h"

namespace msr {

namespace {

// A Float32Array argument copied out (empty when absent and `optional`).
std::vector<float> get_f32(const Napi::Object& o, const char* key, bool optional) {
  Napi::Value v = o.Get(key);
  if (optional && (v.IsUndefined() || v.IsNull())) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(o.Env(), std::string("policy.") + key + " must be a Float32Array with one entry per completion token");
  }
  auto a = v.As<Napi::Float32Array>();
  if (a.ElementLength() > kMaxTokenArray) throw Napi::RangeError::New(o.Env(), std::string("policy.") + key + " is too long");
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

PolicyInputs get_policy_inputs(const Napi::Value& v, bool need_advantages) {
  if (!v.IsObject()) {
    throw Napi::TypeError::New(v.Env(), "policy must be {advantages: Float32Array, refLogprobs?: Float32Array, oldLogprobs?: Float32Array}");
  }
  Napi::Object o = v.As<Napi::Object>();
  PolicyInputs in;
  in.advantages = get_f32(o, "advantages", !need_advantages);
  in.ref_logprobs = get_f32(o, "refLogprobs", true);
  in.old_logprobs = get_f32(o, "oldLogprobs", true);
  return in;
}

// {klCoef, epsilonLow, epsilonHigh, temperature, lossType, maxTokens, lossScale}; the values are
// checked with the batch in the worker (train_policy.cpp), so every refusal reads the same.
PolicyConfig get_policy_config(const Napi::Object& o) {
  PolicyConfig c;
  c.params.kl_coef = static_cast<float>(get_number(o, "klCoef", 0));
  c.params.eps_low = static_cast<float>(get_number(o, "epsilonLow", 0.2));
  c.params.eps_high = static_cast<float>(get_number(o, "epsilonHigh", c.params.eps_low));
  c.params.temperature = static_cast<float>(get_number(o, "temperature", 1));
  Napi::Value t = o.Get("lossType");
  const std::string type = t.IsUndefined() ? "sequence" : get_string(t, "lossType");
  if (type == "sequence") c.loss_type = PolicyLossType::Sequence;
  else if (type == "token") c.loss_type = PolicyLossType::Token;
  else if (type == "constant") c.loss_type = PolicyLossType::Constant;
  else throw Napi::TypeError::New(o.Env(), "lossType must be 'sequence' (GRPO), 'token' (DAPO) or 'constant' (Dr. GRPO)");
  c.max_tokens = static_cast<int>(get_int(o, "maxTokens", 0, 0, 1 << 24));
  c.scale = static_cast<float>(get_number(o, "lossScale", 1));
  return c;
}

Napi::Object options_arg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsObject() ? info[i].As<Napi::Object>() : Napi::Object::New(info.Env());
}

Napi::Object policy_stats_to_js(Napi::Env env, const PolicyStats& st, bool with_grad) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", st.loss);
  o.Set("policyLoss", st.policy_loss);
  o.Set("kl", st.kl);
  o.Set("clipFraction", st.clip_fraction);
  o.Set("ratioMean", st.ratio_mean);
  o.Set("entropy", st.entropy);
  o.Set("tokens", static_cast<double>(st.tokens));
  o.Set("completionTokens", static_cast<double>(st.completion_tokens));
  o.Set("samples", st.samples);
  if (with_grad) o.Set("gradNorm", st.grad_norm);
  auto lp = Napi::Float32Array::New(env, st.logprobs.size());
  if (!st.logprobs.empty()) std::memcpy(lp.Data(), st.logprobs.data(), st.logprobs.size() * sizeof(float));
  o.Set("logprobs", lp);
  if (!st.passes.empty()) o.Set("profile", train_profile_to_js(env, st.passes));
  return o;
}

}  // namespace

void sync_live_loras(TrainerState& st) {
  auto& live = st.live;
  for (auto it = live.begin(); it != live.end();) {
    if (LoraPtr l = it->lock()) {
      copy_to_live_lora(*st.session, *l);
      ++it;
    } else {
      it = live.erase(it);
    }
  }
}

// policyStep(batch, {advantages, refLogprobs?, oldLogprobs?}, {klCoef, epsilonLow, epsilonHigh,
// temperature, lossType, maxTokens, lr, beta1, beta2, eps, weightDecay, clip, update, zeroGrad,
// lossScale}) -> Promise<stats>
Napi::Value Trainer::PolicyStep(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 2, "trainer.policyStep(batch, policy: {advantages, refLogprobs?, oldLogprobs?}, options?)");
  SampleBatch batch = batch_from_js(info[0]);
  PolicyInputs in = get_policy_inputs(info[1], true);
  Napi::Object o = options_arg(info, 2);
  const PolicyConfig cfg = get_policy_config(o);
  const AdamW opt = adamw_from_js(env, o, "trainer.policyStep");
  const bool update = get_bool(o, "update", true);
  const bool zero = get_bool(o, "zeroGrad", true);
  auto st = claim(pin);
  auto out = std::make_shared<PolicyStats>();
  return PromiseWorker::Run(
      env,
      [st, batch = std::move(batch), in = std::move(in), cfg, opt, update, zero, out]() {
        BusyRelease release{st->busy};
        std::lock_guard<std::mutex> lock(st->session->graph().model()->mutex);
        st->check_alive("trainer.policyStep");
        *out = policy_step(*st->session, batch, in, cfg, update ? &opt : nullptr, zero);
        if (update) sync_live_loras(*st);
      },
      [out](Napi::Env env) -> Napi::Value { return policy_stats_to_js(env, *out, true); });
}

// evaluatePolicy(batch, {advantages?, refLogprobs?, oldLogprobs?}, {klCoef, epsilonLow,
// epsilonHigh, temperature, lossType, maxTokens}) -> Promise<stats>: no gradients; missing
// advantages count as 0 (for the log-probs alone).
Napi::Value Trainer::EvaluatePolicy(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.evaluatePolicy(batch, policy?: {advantages?, refLogprobs?, oldLogprobs?}, options?)");
  SampleBatch batch = batch_from_js(info[0]);
  PolicyInputs in = info.Length() > 1 && !info[1].IsUndefined() ? get_policy_inputs(info[1], false) : PolicyInputs{};
  const PolicyConfig cfg = get_policy_config(options_arg(info, 2));
  auto st = claim(pin);
  auto out = std::make_shared<PolicyStats>();
  return PromiseWorker::Run(
      env,
      [st, batch = std::move(batch), in = std::move(in), cfg, out]() {
        BusyRelease release{st->busy};
        std::lock_guard<std::mutex> lock(st->session->graph().model()->mutex);
        st->check_alive("trainer.evaluatePolicy");
        *out = policy_evaluate(*st->session, batch, in, cfg);
      },
      [out](Napi::Env env) -> Napi::Value { return policy_stats_to_js(env, *out, false); });
}

// liveAdapter() -> Promise<LoraAdapter>: a new adapter holding the current weights and following
// every later update of this trainer while its handle is kept.
Napi::Value Trainer::LiveAdapter(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  Napi::Env env = info.Env();
  auto st = claim(pin);
  auto result = std::make_shared<LoraPtr>();
  return PromiseWorker::Run(
      env,
      [st, result]() {
        BusyRelease release{st->busy};
        std::lock_guard<std::mutex> lock(st->session->graph().model()->mutex);
        st->check_alive("trainer.liveAdapter");
        *result = make_live_lora(*st->session);
        st->live.push_back(*result);
      },
      [result](Napi::Env env) -> Napi::Value { return addon_data(env).lora.New({Napi::External<LoraPtr>::New(env, result.get())}); });
}

// syncLiveAdapter() -> Promise<void>: copies the current weights into the live adapters now (steps
// and loadCheckpoint do it themselves; setParam does not).
Napi::Value Trainer::SyncLiveAdapter(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  Napi::Env env = info.Env();
  auto st = claim(pin);
  return PromiseWorker::Run(
      env,
      [st]() {
        BusyRelease release{st->busy};
        std::lock_guard<std::mutex> lock(st->session->graph().model()->mutex);
        st->check_alive("trainer.syncLiveAdapter");
        sync_live_loras(*st);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace msr
