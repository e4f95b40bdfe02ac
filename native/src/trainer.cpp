// Trainer N-API class: JS arguments are copied into plain C++ structs on the main thread, the
// work runs in a PromiseWorker holding the model's mutex, results are built back on the main thread.
#include "trainer.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <functional>

#include "gguf.h"
#include "llama-model.h"
#include "model.h"
#include "path_check.h"
#include "train_arch.h"
#include "train_io.h"

namespace msr {

namespace {

// AdamW settings that would turn parameters into NaN or inf (then saved as if trained) are refused.
// The update runs in float: a learning rate past FLT_MAX is inf there.
void check_adamw(Napi::Env env, const AdamW& o, const char* call) {
  auto bad = [&](const char* what) { throw Napi::RangeError::New(env, std::string(call) + ": " + what); };
  if (!(o.lr >= 0 && o.lr <= FLT_MAX)) bad("lr must be a number between 0 and 3.4e38 (a float)");
  if (!(o.beta1 >= 0 && o.beta1 < 1)) bad("beta1 must be in [0, 1) (e.g. 0.9)");
  if (!(o.beta2 >= 0 && o.beta2 < 1)) bad("beta2 must be in [0, 1) (e.g. 0.999)");
  if (!(std::isfinite(o.eps) && o.eps > 0)) bad("eps must be a finite number > 0 (e.g. 1e-8)");
  if (!std::isfinite(o.weight_decay) || o.weight_decay < 0) bad("weightDecay must be a finite number >= 0");
  if (!std::isfinite(o.clip) || o.clip < 0) bad("clip must be a finite number >= 0 (0 = off)");
}

std::vector<std::string> get_string_list(const Napi::Object& o, const char* key, std::vector<std::string> fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  const JsArray a = get_array(v, key, 1024, (std::string(key) + " must be an array of strings").c_str());
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.n; i++) out.push_back(get_string(a[i], key));
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

const TrainParam& param_by_name(Napi::Env env, TrainSession& s, const std::string& name) {
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
  const Pinned<ModelState> pin = model_from_js(info[0], "createTrainer");
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  TrainerArgs a;
  TrainConfig& cfg = a.cfg;
  Napi::Value mode = o.Get("mode");
  std::string mode_s = mode.IsUndefined() ? "lora" : get_string(mode, "mode");
  if (mode_s != "lora" && mode_s != "full") throw Napi::TypeError::New(env, "mode must be 'lora' or 'full'");
  cfg.mode = mode_s == "lora" ? TrainMode::Lora : TrainMode::Full;
  cfg.rank = static_cast<int>(get_int(o, "rank", 8, 1, 1 << 16));
  // llama.cpp applies an adapter with scale · alpha / rank, but reads alpha 0 as "no alpha" (scale
  // as is): the trainer's alpha / rank would then differ from what a saved adapter scores with.
  const double alpha = get_number(o, "loraAlpha", 32);
  if (!(alpha > 0 && alpha <= FLT_MAX)) throw Napi::RangeError::New(env, "loraAlpha must be a number > 0 (e.g. 32; llama.cpp reads 0 as no alpha)");
  cfg.lora_alpha = static_cast<float>(alpha);
  cfg.targets = get_string_list(o, "targets", cfg.targets);
  cfg.seed = static_cast<uint64_t>(get_int(o, "seed", 0, 0, (1ll << 53)));
  cfg.n_ctx = static_cast<int>(get_int(o, "contextSize", 0, 0, INT32_MAX));
  cfg.n_threads = static_cast<int>(get_int(o, "threads", pin.peek().n_threads, 1, kMaxThreads));
  a.micro = static_cast<int>(get_int(o, "microBatchTokens", 0, 0, INT32_MAX));
  cfg.dequantize = get_bool(o, "dequantize", false);
  const double budget = get_number(o, "transposeBudgetMb", -1);
  if (!(budget == -1 || (budget >= 0 && std::isfinite(budget)))) throw Napi::RangeError::New(env, "transposeBudgetMb must be a finite number >= 0");
  cfg.transpose_budget_mb = budget;
  cfg.profile = get_bool(o, "profile", false);
  Napi::Value device = o.Get("device");
  const std::string device_s = device.IsUndefined() ? "auto" : get_string(device, "device");
  if (device_s != "auto" && device_s != "cpu" && device_s != "gpu") throw Napi::TypeError::New(env, "device must be 'auto', 'cpu' or 'gpu'");
  a.model = pin.ready();  // the options are read: nothing below runs the caller's code
  const ModelPtr& model = a.model;
  // Refused architectures and modes fail here, before anything below reads the model's layers.
  check_trainable(*model->model, cfg.mode, cfg.dequantize);
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
                                        Plain<&Trainer::Dispose>("dispose"),
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
Trainer::Trainer(const Napi::CallbackInfo& info) : Wrap<Trainer, TrainerState>(info) {
  guard(info.Env(), [&] { init(info); });
}

void Trainer::init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TrainerArgs a = parse_trainer_args(info, "new Trainer(model, options?, session?)");
  auto state = std::make_shared<TrainerState>();
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsExternal() || !info[2].As<Napi::External<PrebuiltSession>>().CheckTypeTag(&kPrebuiltSessionTag)) {
      throw Napi::TypeError::New(env, "new Trainer: the third argument must be a session from buildTrainSession");
    }
    auto* pre = info[2].As<Napi::External<PrebuiltSession>>().Data();
    if (!pre || !pre->session) throw Napi::Error::New(env, "new Trainer: this prebuilt session was already used; build another with buildTrainSession");
    if (pre->model != a.model) throw Napi::Error::New(env, "new Trainer: the prebuilt session belongs to another model");
    a.model->check_alive("createTrainer");
    state->session = std::move(pre->session);
  } else {
    std::lock_guard<std::mutex> lock(a.model->mutex);
    a.model->check_alive("createTrainer");
    state->session = std::make_unique<TrainSession>(a.model, a.cfg, a.micro);
  }
  for (const auto& p : state->session->graph().params()) reported_bytes_ += 4 * p.numel() * static_cast<int64_t>(sizeof(float));
  hold(state);
  Napi::MemoryManagement::AdjustExternalMemory(env, reported_bytes_);
}

void Trainer::release_memory(Napi::Env env) {
  adjust_external_memory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

void Trainer::Finalize(Napi::Env env) { release_memory(env); }

void TrainerState::check_alive(const std::string& what) const {
  if (!session) throw disposed_error(what);
  session->graph().model()->check_alive(what);
}

UserError TrainerState::disposed_error(const std::string& what) { return UserError(what + ": the trainer was disposed; create a new one"); }

TrainerStatePtr claim(const Pinned<TrainerState>& pin) {
  const TrainerStatePtr& st = pin.ready();
  bool expected = false;
  if (!st->busy.compare_exchange_strong(expected, true)) throw UserError(pin.what() + ": another call on this trainer is still running; await it first");
  return st;
}

Pinned<TrainerState> trainer_from_js(const Napi::Value& v, const std::string& what) {
  return Trainer::pin_js(v, what, "expected a Trainer (from createTrainer)");
}

Napi::Value Trainer::Step(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.step(batch, options?)");
  SampleBatch batch = get_batch(info[0]);
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  LossWeights lw{static_cast<float>(get_number(o, "alpha", 0.7)), static_cast<float>(get_number(o, "beta", 0.3))};
  const AdamW opt = adamw_from_js(env, o, "trainer.step");
  const bool update = get_bool(o, "update", true);
  const bool zero = get_bool(o, "zeroGrad", true);
  lw.scale = static_cast<float>(get_number(o, "lossScale", 1));
  auto st = claim(pin);
  auto out = std::make_shared<StepStats>();
  return PromiseWorker::Run(
      env,
      [st, batch = std::move(batch), lw, opt, update, zero, out]() {
        BusyRelease release{st->busy};
        std::lock_guard<std::mutex> lock(st->session->graph().model()->mutex);
        st->check_alive("trainer.step");
        *out = st->session->step(batch, lw, update ? &opt : nullptr, zero);
        if (update) sync_live_loras(*st);
      },
      [out](Napi::Env env) -> Napi::Value { return stats_to_js(env, *out, true); });
}

Napi::Value Trainer::Evaluate(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.evaluate(batch, options?)");
  SampleBatch batch = get_batch(info[0]);
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  LossWeights lw{static_cast<float>(get_number(o, "alpha", 0.7)), static_cast<float>(get_number(o, "beta", 0.3))};
  auto st = claim(pin);
  auto out = std::make_shared<StepStats>();
  return PromiseWorker::Run(
      env,
      [st, batch = std::move(batch), lw, out]() {
        BusyRelease release{st->busy};
        std::lock_guard<std::mutex> lock(st->session->graph().model()->mutex);
        st->check_alive("trainer.evaluate");
        *out = st->session->evaluate(batch, lw);
      },
      [out](Napi::Env env) -> Napi::Value { return stats_to_js(env, *out, false); });
}

Napi::Value Trainer::Info(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  Napi::Env env = info.Env();
  // Not the model's liveness: a trainer still describes itself after its model was disposed.
  const TrainerState& state = pin.peek();
  if (!state.session) throw TrainerState::disposed_error(pin.what());
  TrainSession& s = *state.session;
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

Napi::Value Trainer::ParamNames(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  Napi::Env env = info.Env();
  const TrainerState& state = pin.peek();
  if (!state.session) throw TrainerState::disposed_error(pin.what());
  auto& ps = state.session->graph().params();
  Napi::Array a = Napi::Array::New(env, ps.size());
  for (uint32_t i = 0; i < ps.size(); i++) a.Set(i, ps[i].name);
  return a;
}

Napi::Value Trainer::GetParam(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.getParam(name)");
  const std::string name = get_string(info[0], "name");
  auto st = claim(pin);
  BusyRelease release{st->busy};
  const TrainParam& p = param_by_name(env, *st->session, name);
  return to_f32(env, p.data(), static_cast<size_t>(p.numel()));
}

// Parameters are finite whatever a caller passes: a NaN or inf here would be trained on and saved.
Napi::Value Trainer::SetParam(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 2, "trainer.setParam(name, values: Float32Array)");
  const std::string name = get_string(info[0], "name");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(env, "setParam: values must be a Float32Array");
  }
  auto st = claim(pin);
  BusyRelease release{st->busy};
  const TrainParam& p = param_by_name(env, *st->session, name);
  Napi::Float32Array values = info[1].As<Napi::Float32Array>();
  if (static_cast<int64_t>(values.ElementLength()) != p.numel()) {
    throw Napi::TypeError::New(env, "setParam: values must be a Float32Array of " + std::to_string(p.numel()) + " numbers");
  }
  const float* v = values.Data();
  for (int64_t j = 0; j < p.numel(); j++) {
    if (!std::isfinite(v[j])) {
      throw Napi::RangeError::New(env, "setParam: values[" + std::to_string(j) + "] is " + std::to_string(v[j]) + "; parameters must be finite numbers");
    }
  }
  std::memcpy(p.data(), v, static_cast<size_t>(p.numel()) * sizeof(float));
  return env.Undefined();
}

namespace {

// saveAdapter, saveModel and saveCheckpoint: the path checked and the write done in a worker that
// holds the trainer (and, against a step, the model's lock is not needed: busy excludes one).
Napi::Value save_async(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin, const char* signature,
                       std::function<void(TrainSession&, const std::string&, const std::string&)> write) {
  Napi::Env env = info.Env();
  require_args(info, 1, signature);
  const std::string path = get_path(info[0], "path");
  const std::string state = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  auto st = claim(pin);
  const std::string what = pin.what();
  return PromiseWorker::Run(
      env,
      [st, path, state, what, write]() {
        BusyRelease release{st->busy};
        check_output_file(path, what);
        // The base model's own file stays as it is: it is mapped, and saveModel re-reads it.
        check_not_same_file(st->session->graph().model()->path, path, what);
        write(*st->session, path, state);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace

Napi::Value Trainer::SaveAdapter(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  return save_async(info, pin, "trainer.saveAdapter(path)", [](TrainSession& s, const std::string& path, const std::string&) { save_adapter(s, path); });
}

Napi::Value Trainer::SaveModel(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  return save_async(info, pin, "trainer.saveModel(path)", [](TrainSession& s, const std::string& path, const std::string&) { save_model(s, path); });
}

Napi::Value Trainer::SaveCheckpoint(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  return save_async(info, pin, "trainer.saveCheckpoint(path, state?: string)",
                    [](TrainSession& s, const std::string& path, const std::string& state) { save_checkpoint(s, path, state); });
}

Napi::Value Trainer::LoadCheckpoint(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainer.loadCheckpoint(path)");
  const std::string path = get_path(info[0], "path");
  auto st = claim(pin);
  auto out = std::make_shared<std::string>();
  return PromiseWorker::Run(
      env,
      [st, path, out]() {
        BusyRelease release{st->busy};
        check_input_file(path, "loadCheckpoint", "checkpoint file");
        *out = load_checkpoint(*st->session, path);  // checks the file before it reads it
        std::lock_guard<std::mutex> lock(st->session->graph().model()->mutex);
        sync_live_loras(*st);
      },
      [out](Napi::Env env) -> Napi::Value { return Napi::String::New(env, *out); });
}

Napi::Value Trainer::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const TrainerStatePtr& st = held();
  if (st && st->session) {
    if (st->busy) throw Napi::Error::New(env, "trainer.dispose: a call is still running; await it first");
    st->session.reset();
    release_memory(env);
  }
  return env.Undefined();
}

}  // namespace msr
