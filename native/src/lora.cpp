#include "lora.h"

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "gguf.h"

namespace msr {

namespace {

struct GgufFree {
  void operator()(gguf_context* g) const { gguf_free(g); }
};
struct GgmlFree {
  void operator()(ggml_context* c) const { ggml_free(c); }
};

// Reads the adapter's header before llama.cpp does (see check_gguf_file: mistyped metadata and
// oversized tensors are errors, not aborts), then what the scale check and V8 need from it.
void inspect_adapter(const std::string& path, LoraState& out) {
  const bool readable = check_gguf_file(path,
                                        {{"general.type", GGUF_TYPE_STRING},
                                         {"general.architecture", GGUF_TYPE_STRING},
                                         {"adapter.type", GGUF_TYPE_STRING},
                                         {"adapter.lora.alpha", GGUF_TYPE_FLOAT32}},
                                        "loadLora");
  ggml_context* meta_raw = nullptr;
  gguf_init_params params{/*no_alloc*/ true, &meta_raw};
  std::unique_ptr<gguf_context, GgufFree> g(readable ? gguf_init_from_file(path.c_str(), params) : nullptr);
  std::unique_ptr<ggml_context, GgmlFree> meta(meta_raw);
  if (!g) {
    throw UserError("loadLora: " + path + " is not a LoRA adapter for this model (not a readable GGUF file); an adapter must be a GGUF LoRA trained for the same base model");
  }
  const int64_t alpha_id = gguf_find_key(g.get(), "adapter.lora.alpha");
  out.alpha = alpha_id >= 0 ? gguf_get_val_f32(g.get(), alpha_id) : 0.f;
  if (!std::isfinite(out.alpha)) throw UserError("loadLora: " + path + ": adapter.lora.alpha is not a finite number; the file is damaged");
  for (int64_t i = 0; i < gguf_get_n_tensors(g.get()); i++) out.bytes += static_cast<int64_t>(gguf_get_tensor_size(g.get(), i));
  out.min_rank = INT64_MAX;
  for (ggml_tensor* t = ggml_get_first_tensor(meta.get()); t; t = ggml_get_next_tensor(meta.get(), t)) {
    const std::string name = ggml_get_name(t);
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".lora_a") == 0) out.min_rank = std::min<int64_t>(out.min_rank, t->ne[1]);
  }
  if (out.min_rank == INT64_MAX || out.min_rank < 1) out.min_rank = 1;
}

}  // namespace

LoraState::~LoraState() {
  if (adapter && model) {
    llama_adapter_lora* a = adapter;
    free_under_model_lock(model, [a] { llama_adapter_lora_free(a); });
  }
}

Napi::Function LoraAdapter::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "LoraAdapter",
                                    {
                                        Method<&LoraAdapter::Dispose>("dispose"),
                                        Getter<&LoraAdapter::GetPath>("path"),
                                        Getter<&LoraAdapter::GetAlpha>("alpha"),
                                    });
  addon_data(env).lora = Napi::Persistent(ctor);
  return ctor;
}

LoraAdapter::LoraAdapter(const Napi::CallbackInfo& info) : Wrap<LoraAdapter>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "LoraAdapter cannot be constructed directly: use model.loadLora(path)");
  }
  state_ = *info[0].As<Napi::External<LoraPtr>>().Data();
  reported_bytes_ = state_->bytes;
  adjust_external_memory(info.Env(), reported_bytes_);
}

void LoraAdapter::Finalize(Napi::Env env) { release(env); }

void LoraAdapter::release(Napi::Env env) {
  adjust_external_memory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

Napi::Value LoraAdapter::Load(const Napi::CallbackInfo& info, const ModelPtr& model) {
  Napi::Env env = info.Env();
  require_args(info, 1, "loadLora(path: string)");
  std::string path = get_string(info[0], "path");
  auto result = std::make_shared<LoraPtr>();
  return PromiseWorker::Run(
      env,
      [model, path, result]() {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec)) throw UserError("loadLora: no adapter file at " + path + "; check the path");
        auto st = std::make_shared<LoraState>();
        inspect_adapter(path, *st);
        std::lock_guard<std::mutex> lock(model->mutex);
        model->check_alive("loadLora");
        take_llama_errors();
        llama_adapter_lora* a = llama_adapter_lora_init(model->model, path.c_str());
        if (!a) {
          std::string why = take_llama_errors();
          throw UserError("loadLora: " + path + " is not a LoRA adapter for this model (" + (why.empty() ? "llama.cpp rejected it" : why) +
                          "); an adapter must be a GGUF LoRA trained for the same base model");
        }
        st->model = model;
        st->adapter = a;
        st->path = path;
        *result = st;
      },
      [result](Napi::Env env) -> Napi::Value { return addon_data(env).lora.New({Napi::External<LoraPtr>::New(env, result.get())}); });
}

Napi::Value LoraAdapter::Dispose(const Napi::CallbackInfo& info) {
  state_.reset();  // freed now unless a running call still holds it
  release(info.Env());
  return info.Env().Undefined();
}

Napi::Value LoraAdapter::GetPath(const Napi::CallbackInfo& info) {
  return state_ ? Napi::String::New(info.Env(), state_->path) : info.Env().Null();
}

Napi::Value LoraAdapter::GetAlpha(const Napi::CallbackInfo& info) {
  if (!state_) return info.Env().Null();
  char buf[64];
  if (llama_adapter_meta_val_str(state_->adapter, "adapter.lora.alpha", buf, sizeof(buf)) < 0) return info.Env().Null();
  return Napi::Number::New(info.Env(), std::atof(buf));
}

std::vector<LoraChoice> parse_lora_option(const Napi::Object& opts, const ModelPtr& model) {
  Napi::Env env = opts.Env();
  std::vector<LoraChoice> out;
  Napi::Value v = opts.Get("lora");
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray()) throw Napi::TypeError::New(env, "lora must be an array of {adapter, scale}");
  Napi::Array arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e = arr.Get(i);
    if (!e.IsObject()) throw Napi::TypeError::New(env, "lora[" + std::to_string(i) + "] must be {adapter, scale}");
    Napi::Object o = e.As<Napi::Object>();
    Napi::Value a = o.Get("adapter");
    if (!a.IsObject() || !a.As<Napi::Object>().InstanceOf(addon_data(a.Env()).lora.Value())) {
      throw Napi::TypeError::New(env, "lora[" + std::to_string(i) + "].adapter must be a LoraAdapter from model.loadLora()");
    }
    LoraPtr st = LoraAdapter::Unwrap(a.As<Napi::Object>())->state();
    if (!st) throw Napi::Error::New(env, "lora[" + std::to_string(i) + "].adapter was disposed; load it again with model.loadLora()");
    if (st->model != model) throw Napi::Error::New(env, "lora[" + std::to_string(i) + "].adapter was loaded for another model; load it on this model");
    double scale = get_number(o, "scale", 1.0);
    if (!std::isfinite(scale)) throw Napi::RangeError::New(env, "lora[" + std::to_string(i) + "].scale must be a finite number, got " + std::to_string(scale));
    // llama.cpp applies scale · alpha / rank in float: that product must be a finite float too.
    const double applied = st->alpha != 0.f ? scale * st->alpha / static_cast<double>(st->min_rank) : scale;
    if (std::fabs(scale) > FLT_MAX || std::fabs(applied) > FLT_MAX) {
      char msg[256];
      std::snprintf(msg, sizeof(msg), "lora[%u].scale %g overflows a float once multiplied by the adapter's alpha/rank (%g/%lld); use a scale of at most %g", i,
                    scale, st->alpha, static_cast<long long>(st->min_rank), FLT_MAX / std::max(1.0, std::fabs(applied / scale)));
      throw Napi::RangeError::New(env, msg);
    }
    out.push_back({st, static_cast<float>(scale)});
  }
  return out;
}

void apply_loras(llama_context* ctx, const std::vector<LoraChoice>& loras) {
  std::vector<llama_adapter_lora*> adapters;
  std::vector<float> scales;
  for (const auto& c : loras) {
    adapters.push_back(c.lora->adapter);
    scales.push_back(c.scale);
  }
  if (llama_set_adapters_lora(ctx, adapters.data(), adapters.size(), scales.data()) != 0) {
    throw UserError("could not apply the LoRA adapters to the context: " + take_llama_errors());
  }
}

}  // namespace msr
