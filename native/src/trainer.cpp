// Trainer N-API class: JS arguments are copied into plain C++ structs on the main thread, the
// work runs in a PromiseWorker holding the model's mutex, results are built back on the main thread.
#include "trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gguf.h"
#include "llama-model.h"
#include "model.h"
#include "train_arch.h"
#include "train_io.h"

namespace msr {

namespace {

// AdamW settings that would turn parameters into NaN or inf (then saved as if trained) are refused.
void check_adamw(Napi::Env env, const AdamW& o, const char* call) {
  auto bad = [&](const char* what) { throw Napi::RangeError::New(env, std::string(call) + ": " + what); };
  if (!std::isfinite(o.lr) || o.lr < 0) bad("lr must be a finite number >= 0");
  if (!(o.beta1 >= 0 && o.beta1 < 1)) bad("beta1 must be in [0, 1) (e.g. 0.9)");
  if (!(o.beta2 >= 0 && o.beta2 < 1)) bad("beta2 must be in [0, 1) (e.g. 0.999)");
  if (!(std::isfinite(o.eps) && o.eps > 0)) bad("eps must be a finite number > 0 (e.g. 1e-8)");
  if (!std::isfinite(o.weight_decay) || o.weight_decay < 0) bad("weightDecay must be a finite number >= 0");
  if (!std::isfinite(o.clip) || o.clip < 0) bad("clip must be a finite number >= 0 (0 = off)");
}

std::vector<std::string> get_string_list(const Napi::Object& o, const char* key, std::vector<std::string> fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array of strings");
  auto a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(get_string(a.Get(i), key));
  return out;
}

SampleBatch get_batch(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) throw Napi::TypeError::New(env, "batch must be {tokens: Int32Array, lengths: Int32Array, segments: Uint8Array}");
  Napi::Object o = v.As<Napi::Object>();
  SampleBatch b;
  b.tokens = get_tokens(o.Get("tokens"), "batch.tokens");
  b.lengths = get_tokens(o.Get("lengths"), "batch.lengths");
  Napi::Value s = o.Get("segments");
  if (!s.IsTypedArray() || s.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "batch.segments must be a Uint8Array");
  }
  auto sa = s.As<Napi::Uint8Array>();
  b.segments.assign(sa.Data(), sa.Data() + sa.ElementLength());
  return b;
}

Napi::Array node_kinds_to_js(Napi::Env env, const std::vector<PassProfile::NodeKind>& kinds) {
  Napi::Array a = Napi::Array::New(env, kinds.size());
  for (uint32_t i = 0; i < kinds.size(); i++) {
    Napi::Object k = Napi::Object::New(env);
    k.Set("kind", kinds[i].kind);
    k.Set("ms", kinds[i].ms);
    k.Set("count", kinds[i].count);
    a.Set(i, k);
  }
  return a;
}

// {passes: [...]}: one entry per micro-batch (see NativeTrainProfile in src/engine/bindings.ts).
Napi::Object profile_to_js(Napi::Env env, const std::vector<PassProfile>& passes) {
  Napi::Array a = Napi::Array::New(env, passes.size());
  for (uint32_t i = 0; i < passes.size(); i++) {
    const PassProfile& p = passes[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("tokens", static_cast<double>(p.tokens));
    o.Set("lossRows", static_cast<double>(p.rows));
    o.Set("forwardMs", p.forward_ms);
    o.Set("crossEntropyMs", p.cross_entropy_ms);
    o.Set("backwardMs", p.backward_ms);
    o.Set("graphNodes", p.graph_nodes);
    o.Set("graphLeafs", p.graph_leafs);
    o.Set("graphMetadataBytes", p.graph_metadata_bytes);
    o.Set("computeBytes", p.compute_bytes);
    Napi::Object op = Napi::Object::New(env);
    op.Set("total", p.out_prods);
    op.Set("asStored", p.as_stored);
    op.Set("transposedWeights", p.transposed_weights);
    op.Set("transposedInGraph", p.transposed_in_graph);
    op.Set("asMulMats", p.as_mul_mats);
    o.Set("outProds", op);
    if (!p.forward_nodes.empty() || !p.backward_nodes.empty()) {
      o.Set("forwardNodes", node_kinds_to_js(env, p.forward_nodes));
      o.Set("backwardNodes", node_kinds_to_js(env, p.backward_nodes));
    }
    a.Set(i, o);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("passes", a);
  return out;
}

Napi::Object stats_to_js(Napi::Env env, const StepStats& st, bool with_grad) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", st.loss);
  o.Set("lossReasoning", st.loss_reasoning);
  o.Set("lossRecommendation", st.loss_recommendation);
  o.Set("tokens", static_cast<double>(st.tokens));
  o.Set("lossTokens", static_cast<double>(st.loss_tokens));
  o.Set("reasoningSamples", st.reasoning_samples);
  o.Set("recommendationSamples", st.recommendation_samples);
  if (with_grad) o.Set("gradNorm", st.grad_norm);
  if (!st.passes.empty()) o.Set("profile", profile_to_js(env, st.passes));
  return o;
}

Napi::Float32Array to_f32(Napi::Env env, const float* p, size_t n) {
  auto a = Napi::Float32Array::New(env, n);
  if (n) std::memcpy(a.Data(), p, n * sizeof(float));
  return a;
}

const TrainParam& param_by_name(Napi::Env env, TrainSession& s, const Napi::Value& v) {
  std::string name = get_string(v, "name");
  const TrainParam* p = s.graph().find(name);
  if (!p) throw Napi::Error::New(env, "no trainable parameter named '" + name + "'; see trainer.paramNames()");
  return *p;
}

// A session built off the JS thread by buildTrainSession, handed to `new Trainer(model, options,
// session)` as an External. It remembers its model so it cannot be adopted by another one.
struct PrebuiltSession {
  ModelPtr model;
  std::unique_ptr<TrainSession> session;
};
// Marks the Externals buildTrainSession makes: any other External (another addon's, say) passed
// as the session would otherwise be read as one.
const napi_type_tag kPrebuiltSessionTag = {0x6d73722d72656331ull, 0x7472736573736e31ull};

}  // namespace

SampleBatch batch_from_js(const Napi::Value& v) { return get_batch(v); }

AdamW adamw_from_js(Napi::Env env, const Napi::Object& o, const char* what) {
  AdamW opt;
  opt.lr = get_number(o, "lr", 1e-4);
  opt.beta1 = get_number(o, "beta1", 0.9);
  opt.beta2 = get_number(o, "beta2", 0.999);
  opt.eps = get_number(o, "eps", 1e-8);
  opt.weight_decay = get_number(o, "weightDecay", 0);
  opt.clip = get_number(o, "clip", 0);
  check_adamw(env, opt, what);
  return opt;
}

Napi::Object train_profile_to_js(Napi::Env env, const std::vector<PassProfile>& passes) { return profile_to_js(env, passes); }

// Parses (model, {mode, rank, loraAlpha, targets, seed, contextSize, microBatchTokens, threads,
// device, dequantize, transposeBudgetMb, profile}) and refuses unsupported models and modes before
// anything is allocated. device: 'cpu', 'gpu', or 'auto' (the default): the GPU when the model was
// loaded with gpuLayers (its layer weights are in device memory) and the build has a GPU backend,
// else the CPU.
TrainerArgs parse_trainer_args(const Napi::CallbackInfo& info, const char* signature) {
  Napi::Env env = info.Env();
  require_args(info, 1, signature);
  TrainerArgs a;
  a.model = model_from_js(info[0]);
  const ModelPtr& model = a.model;
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  TrainConfig& cfg = a.cfg;
  Napi::Value mode = o.Get("mode");
  std::string mode_s = mode.IsUndefined() ? "lora" : get_string(mode, "mode");
  if (mode_s != "lora" && mode_s != "full") throw Napi::TypeError::New(env, "mode must be 'lora' or 'full'");
  cfg.mode = mode_s == "lora" ? TrainMode::Lora : TrainMode::Full;
  cfg.rank = static_cast<int>(get_number(o, "rank", 8));
  cfg.lora_alpha = static_cast<float>(get_number(o, "loraAlpha", 32));
  cfg.targets = get_string_list(o, "targets", cfg.targets);
  cfg.seed = static_cast<uint64_t>(get_number(o, "seed", 0));
  cfg.n_ctx = static_cast<int>(get_number(o, "contextSize", 0));
  cfg.n_threads = static_cast<int>(get_int(o, "threads", model->n_threads, 1, kMaxThreads));
  a.micro = static_cast<int>(get_number(o, "microBatchTokens", 0));
  cfg.dequantize = get_bool(o, "dequantize", false);
  const double budget = get_number(o, "transposeBudgetMb", -1);
  if (!(budget == -1 || (budget >= 0 && std::isfinite(budget)))) throw Napi::RangeError::New(env, "transposeBudgetMb must be a finite number >= 0");
  cfg.transpose_budget_mb = budget;
  cfg.profile = get_bool(o, "profile", false);
  // Refused architectures and modes fail here, before anything below reads the model's layers.
  try {
    check_trainable(*model->model, cfg.mode, cfg.dequantize);
  } catch (const UserError& e) {
    throw Napi::Error::New(env, e.what());
  }
  Napi::Value device = o.Get("device");
  const std::string device_s = device.IsUndefined() ? "auto" : get_string(device, "device");
  if (device_s != "auto" && device_s != "cpu" && device_s != "gpu") throw Napi::TypeError::New(env, "device must be 'auto', 'cpu' or 'gpu'");
  if (device_s == "auto") {
    // The GPU when the first layer's weights live on one (not merely outside host memory: weights
    // llama.cpp repacked for the CPU are not in a host buffer either).
    const ggml_backend_buffer_t buf = model->model->layers[0].wq->buffer;
    ggml_backend_dev_t dev = buf ? ggml_backend_buft_get_device(ggml_backend_buffer_get_type(buf)) : nullptr;
    cfg.gpu = dev && ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_GPU;
  } else {
    cfg.gpu = device_s == "gpu";
  }
  return a;
}

// The slow part of creating a trainer (parameters, dequantized copies, transposes) in a worker,
// so the JS thread neither blocks on it nor waits for the model's lock while another call runs.
Napi::Value build_session_async(Napi::Env env, const TrainerArgs& parsed) {
  auto args = std::make_shared<TrainerArgs>(parsed);
  auto built = std::make_shared<std::unique_ptr<TrainSession>>();
  return PromiseWorker::Run(
      env,
      [args, built] {
        std::lock_guard<std::mutex> lock(args->model->mutex);
        args->model->check_alive("createTrainer");
        *built = std::make_unique<TrainSession>(args->model, args->cfg, args->micro);
      },
      [args, built](Napi::Env env) -> Napi::Value {
        auto* p = new PrebuiltSession{args->model, std::move(*built)};
        // Never adopted (the caller dropped it): the garbage collector frees the session.
        auto ext = Napi::External<PrebuiltSession>::New(env, p, [](Napi::Env, PrebuiltSession* q) { delete q; });
        ext.TypeTag(&kPrebuiltSessionTag);
        return ext;
      });
}

Napi::Value BuildTrainSession(const Napi::CallbackInfo& info) {
  return build_session_async(info.Env(), parse_trainer_args(info, "buildTrainSession(model, options?)"));
}

Napi::Function Trainer::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Trainer",
                                    {
                                        Method<&Trainer::Step>("step"),
                                        Method<&Trainer::Evaluate>("evaluate"),
                                        Method<&Trainer::Info>("info"),
                                        Method<&Trainer::ParamNames>("paramNames"),
                                        Method<&Trainer::GetParam>("getParam"),
                                        Method<&Trainer::SetParam>("setParam"),
                                        Method<&Trainer::SaveAdapter>("saveAdapter"),
                                        Method<&Trainer::SaveModel>("saveModel"),
                                        Method<&Trainer::SaveCheckpoint>("saveCheckpoint"),
                                        Method<&Trainer::LoadCheckpoint>("loadCheckpoint"),
                                        Method<&Trainer::Dispose>("dispose"),
                                        Method<&Trainer::PolicyStep>("policyStep"),
                                        Method<&Trainer::EvaluatePolicy>("evaluatePolicy"),
                                        Method<&Trainer::LiveAdapter>("liveAdapter"),
                                        Method<&Trainer::SyncLiveAdapter>("syncLiveAdapter"),
                                    });
  addon_data(env).trainer = Napi::Persistent(ctor);
  return ctor;
}

// new Trainer(model, options, session?): see parse_trainer_args; `session` (from
// buildTrainSession) is adopted instead of building one here, on the JS thread.
Trainer::Trainer(const Napi::CallbackInfo& info) : Wrap<Trainer>(info) {
  guard(info.Env(), [&] { init(info); });
}

void Trainer::init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TrainerArgs a = parse_trainer_args(info, "new Trainer(model, options?, session?)");
  state_ = std::make_shared<TrainerState>();
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsExternal() || !info[2].As<Napi::External<PrebuiltSession>>().CheckTypeTag(&kPrebuiltSessionTag)) {
      throw Napi::TypeError::New(env, "new Trainer: the third argument must be a session from buildTrainSession");
    }
    auto* pre = info[2].As<Napi::External<PrebuiltSession>>().Data();
    if (!pre || !pre->session) throw Napi::Error::New(env, "new Trainer: this prebuilt session was already used; build another with buildTrainSession");
    if (pre->model != a.model) throw Napi::Error::New(env, "new Trainer: the prebuilt session belongs to another model");
    a.model->check_alive("createTrainer");
    state_->session = std::move(pre->session);
  } else {
    std::lock_guard<std::mutex> lock(a.model->mutex);
    a.model->check_alive("createTrainer");
    state_->session = std::make_unique<TrainSession>(a.model, a.cfg, a.micro);
  }
  for (const auto& p : state_->session->graph().params()) reported_bytes_ += 4 * p.numel() * static_cast<int64_t>(sizeof(float));
  Napi::MemoryManagement::AdjustExternalMemory(env, reported_bytes_);
}

void Trainer::release_memory(Napi::Env env) {
  adjust_external_memory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

void Trainer::Finalize(Napi::Env env) { release_memory(env); }

TrainerStatePtr Trainer::acquire(Napi::Env env, const char* what) {
  if (!state_ || !state_->session) throw Napi::Error::New(env, std::string("trainer.") + what + ": the trainer was disposed");
  state_->session->graph().model()->check_alive(what);
  bool expected = false;
  if (!state_->busy.compare_exchange_strong(expected, true)) {
    throw Napi::Error::New(env, std::string("trainer.") + what + ": another call on this trainer is still running; await it first");
  }
  return state_;
}

TrainerStatePtr acquire_trainer(const Napi::Value& v, const char* what) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).trainer.Value())) {
    throw Napi::TypeError::New(v.Env(), "expected a Trainer (from createTrainer)");
  }
  return Trainer::Unwrap(v.As<Napi::Object>())->acquire(v.Env(), what);
}

Napi::Value Trainer::Step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.step(batch, options?)");
  SampleBatch batch = get_batch(info[0]);
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  LossWeights lw{static_cast<float>(get_number(o, "alpha", 0.7)), static_cast<float>(get_number(o, "beta", 0.3))};
  const AdamW opt = adamw_from_js(env, o, "trainer.step");
  const bool update = get_bool(o, "update", true);
  const bool zero = get_bool(o, "zeroGrad", true);
  lw.scale = static_cast<float>(get_number(o, "lossScale", 1));
  auto st = acquire(env, "step");
  auto out = std::make_shared<StepStats>();
  return PromiseWorker::Run(
      env,
      [st, batch = std::move(batch), lw, opt, update, zero, out]() {
        BusyRelease release{st->busy};
        std::lock_guard<std::mutex> lock(st->session->graph().model()->mutex);
        *out = st->session->step(batch, lw, update ? &opt : nullptr, zero);
        if (update) sync_live_loras(*st);
      },
      [out](Napi::Env env) -> Napi::Value { return stats_to_js(env, *out, true); });
}

Napi::Value Trainer::Evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.evaluate(batch, options?)");
  SampleBatch batch = get_batch(info[0]);
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  LossWeights lw{static_cast<float>(get_number(o, "alpha", 0.7)), static_cast<float>(get_number(o, "beta", 0.3))};
  auto st = acquire(env, "evaluate");
  auto out = std::make_shared<StepStats>();
  return PromiseWorker::Run(
      env,
      [st, batch = std::move(batch), lw, out]() {
        BusyRelease release{st->busy};
        std::lock_guard<std::mutex> lock(st->session->graph().model()->mutex);
        *out = st->session->evaluate(batch, lw);
      },
      [out](Napi::Env env) -> Napi::Value { return stats_to_js(env, *out, false); });
}

Napi::Value Trainer::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state_ || !state_->session) throw Napi::Error::New(env, "trainer.info: the trainer was disposed");
  TrainSession& s = *state_->session;
  const TrainConfig& c = s.graph().config();
  Napi::Object o = Napi::Object::New(env);
  o.Set("mode", c.mode == TrainMode::Lora ? "lora" : "full");
  o.Set("rank", c.rank);
  o.Set("loraAlpha", c.lora_alpha);
  Napi::Array t = Napi::Array::New(env, c.targets.size());
  for (uint32_t i = 0; i < c.targets.size(); i++) t.Set(i, c.targets[i]);
  o.Set("targets", t);
  o.Set("steps", static_cast<double>(s.steps_done()));
  double n = 0;
  for (const auto& p : s.graph().params()) n += static_cast<double>(p.numel());
  o.Set("parameterCount", n);
  o.Set("contextSize", s.graph().n_ctx());
  o.Set("vocabSize", s.graph().n_vocab());
  o.Set("device", s.graph().on_gpu() ? "gpu" : "cpu");
  o.Set("deviceName", s.graph().device_name());
  // Memory beyond the parameters: copies of weights ggml cannot read back (repacked), cached transposes.
  o.Set("weightCopyBytes", s.graph().weight_copy_bytes());
  o.Set("mappedWeightBytes", s.graph().mapped_weight_bytes());
  o.Set("computeBytes", s.graph().compute_bytes());
  o.Set("transposeBytes", s.graph().transpose_bytes());
  return o;
}

Napi::Value Trainer::ParamNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state_ || !state_->session) throw Napi::Error::New(env, "trainer.paramNames: the trainer was disposed");
  auto& ps = state_->session->graph().params();
  Napi::Array a = Napi::Array::New(env, ps.size());
  for (uint32_t i = 0; i < ps.size(); i++) a.Set(i, ps[i].name);
  return a;
}

Napi::Value Trainer::GetParam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.getParam(name)");
  auto st = acquire(env, "getParam");
  BusyRelease release{st->busy};
  const TrainParam& p = param_by_name(env, *st->session, info[0]);
  return to_f32(env, p.data(), static_cast<size_t>(p.numel()));
}

Napi::Value Trainer::SetParam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 2, "trainer.setParam(name, values: Float32Array)");
  auto st = acquire(env, "setParam");
  BusyRelease release{st->busy};
  const TrainParam& p = param_by_name(env, *st->session, info[0]);
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
      static_cast<int64_t>(info[1].As<Napi::Float32Array>().ElementLength()) != p.numel()) {
    throw Napi::TypeError::New(env, "setParam: values must be a Float32Array of " + std::to_string(p.numel()) + " numbers");
  }
  std::memcpy(p.data(), info[1].As<Napi::Float32Array>().Data(), static_cast<size_t>(p.numel()) * sizeof(float));
  return env.Undefined();
}

Napi::Value Trainer::SaveAdapter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.saveAdapter(path)");
  std::string path = get_string(info[0], "path");
  auto st = acquire(env, "saveAdapter");
  return PromiseWorker::Run(
      env,
      [st, path]() {
        BusyRelease release{st->busy};
        save_adapter(*st->session, path);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value Trainer::SaveModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.saveModel(path)");
  std::string path = get_string(info[0], "path");
  auto st = acquire(env, "saveModel");
  return PromiseWorker::Run(
      env,
      [st, path]() {
        BusyRelease release{st->busy};
        save_model(*st->session, path);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value Trainer::SaveCheckpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.saveCheckpoint(path, state?: string)");
  std::string path = get_string(info[0], "path");
  std::string state = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  auto st = acquire(env, "saveCheckpoint");
  return PromiseWorker::Run(
      env,
      [st, path, state]() {
        BusyRelease release{st->busy};
        save_checkpoint(*st->session, path, state);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value Trainer::LoadCheckpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.loadCheckpoint(path)");
  std::string path = get_string(info[0], "path");
  auto st = acquire(env, "loadCheckpoint");
  auto out = std::make_shared<std::string>();
  return PromiseWorker::Run(
      env,
      [st, path, out]() {
        BusyRelease release{st->busy};
        // Mistyped metadata would abort in gguf_get_val_*, oversized tensors in the allocation.
        check_gguf_file(path,
                        {{"msr.checkpoint.mode", GGUF_TYPE_STRING},
                         {"msr.checkpoint.lora_rank", GGUF_TYPE_UINT32},
                         {"msr.checkpoint.step", GGUF_TYPE_UINT64},
                         {"msr.checkpoint.state", GGUF_TYPE_STRING}},
                        "loadCheckpoint");
        *out = load_checkpoint(*st->session, path);
        std::lock_guard<std::mutex> lock(st->session->graph().model()->mutex);
        sync_live_loras(*st);
      },
      [out](Napi::Env env) -> Napi::Value { return Napi::String::New(env, *out); });
}

Napi::Value Trainer::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ && state_->session) {
    if (state_->busy) throw Napi::Error::New(env, "trainer.dispose: a call is still running; await it first");
    state_->session.reset();
    release_memory(env);
  }
  return env.Undefined();
}

}  // namespace msr
