#include "lora.h"

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "gguf_check.h"
#include "path_check.h"

namespace msr {

LoraState::~LoraState() {
  if (adapter && model) {
    llama_adapter_lora* a = adapter;
    free_under_model_lock(model, [a] { llama_adapter_lora_free(a); });
  }
}

void LoraState::check_alive(const std::string& what) const {
  if (disposed) throw disposed_error(what);
  model->check_alive(what);
}

UserError LoraState::disposed_error(const std::string& what) {
  return UserError(what + ": the LoRA adapter was disposed; load it again with model.loadLora()");
}

Napi::Function LoraAdapter::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "LoraAdapter",
                                    {
                                        Plain<&LoraAdapter::Dispose>("dispose"),
                                        Getter<&LoraAdapter::GetPath>("path"),
                                        Getter<&LoraAdapter::GetAlpha>("alpha"),
                                    });
  addon_data(env).lora = Napi::Persistent(ctor);
  return ctor;
}

LoraAdapter::LoraAdapter(const Napi::CallbackInfo& info) : Wrap<LoraAdapter, LoraState>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "LoraAdapter cannot be constructed directly: use model.loadLora(path)");
  }
  hold(*info[0].As<Napi::External<LoraPtr>>().Data());
  reported_bytes_ = held()->bytes;
  adjust_external_memory(info.Env(), reported_bytes_);
}

void LoraAdapter::Finalize(Napi::Env env) { release(env); }

void LoraAdapter::release(Napi::Env env) {
  adjust_external_memory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

Napi::Value LoraAdapter::Load(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "loadLora(path: string)");
  std::string path = get_path(info[0], "path");
  ModelPtr model = pin.ready();
  auto result = std::make_shared<LoraPtr>();
  return PromiseWorker::Run(
      env,
      [model, path, result]() {
        check_input_file(path, "loadLora", "adapter file");
        auto st = std::make_shared<LoraState>();
        const AdapterFacts facts = check_adapter_file(path);
        st->alpha = facts.alpha;
        st->min_rank = facts.min_rank;
        st->bytes = facts.bytes;
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
  if (LoraPtr st = let_go()) st->disposed = true;  // freed now unless a running call still holds it
  release(info.Env());
  return info.Env().Undefined();
}

Napi::Value LoraAdapter::GetPath(const Napi::CallbackInfo& info) {
  return held() ? Napi::String::New(info.Env(), held()->path) : info.Env().Null();
}

Napi::Value LoraAdapter::GetAlpha(const Napi::CallbackInfo& info) {
  if (!held()) return info.Env().Null();
  char buf[64];
  if (llama_adapter_meta_val_str(held()->adapter, "adapter.lora.alpha", buf, sizeof(buf)) < 0) return info.Env().Null();
  return Napi::Number::New(info.Env(), std::atof(buf));
}

std::vector<LoraChoice> parse_lora_option(const Napi::Object& opts, const ModelState& model) {
  Napi::Env env = opts.Env();
  std::vector<LoraChoice> out;
  Napi::Value v = opts.Get("lora");
  if (v.IsUndefined() || v.IsNull()) return out;
  const JsArray arr = get_array(v, "lora", 1024, "lora must be an array of {adapter, scale}");
  std::vector<std::pair<Pinned<LoraState>, float>> read;  // checked for liveness once all are read
  for (uint32_t i = 0; i < arr.n; i++) {
    const std::string where = "lora[" + std::to_string(i) + "]";
    Napi::Value e = arr[i];
    if (!e.IsObject()) throw Napi::TypeError::New(env, where + " must be {adapter, scale}");
    Napi::Object o = e.As<Napi::Object>();
    const Pinned<LoraState> pin = LoraAdapter::pin_js(o.Get("adapter"), where + ".adapter", (where + ".adapter must be a LoraAdapter from model.loadLora()").c_str());
    const LoraState& st = pin.peek();
    if (st.model.get() != &model) throw Napi::Error::New(env, where + ".adapter was loaded for another model; load it on this model");
    double scale = get_number(o, "scale", 1.0);
    if (!std::isfinite(scale)) throw Napi::RangeError::New(env, where + ".scale must be a finite number, got " + std::to_string(scale));
    // llama.cpp applies scale · alpha / rank in float: that product must be a finite float too.
    const double applied = st.alpha != 0.f ? scale * st.alpha / static_cast<double>(st.min_rank) : scale;
    if (std::fabs(scale) > FLT_MAX || std::fabs(applied) > FLT_MAX) {
      char msg[256];
      std::snprintf(msg, sizeof(msg), "lora[%u].scale %g overflows a float once multiplied by the adapter's alpha/rank (%g/%lld); use a scale of at most %g", i,
                    scale, st.alpha, static_cast<long long>(st.min_rank), FLT_MAX / std::max(1.0, std::fabs(applied / scale)));
      throw Napi::RangeError::New(env, msg);
    }
    read.emplace_back(pin, static_cast<float>(scale));
  }
  for (const auto& [pin, scale] : read) out.push_back({pin.ready(), scale});
  return out;
}

void apply_loras(llama_context* ctx, const std::vector<LoraChoice>& loras) {
  std::vector<llama_adapter_lora*> adapters;
  std::vector<float> scales;
  for (size_t i = 0; i < loras.size(); i++) {
    const LoraChoice& c = loras[i];
    c.lora->check_alive("lora[" + std::to_string(i) + "].adapter");
    adapters.push_back(c.lora->adapter);
    scales.push_back(c.scale);
  }
  if (llama_set_adapters_lora(ctx, adapters.data(), adapters.size(), scales.data()) != 0) {
    throw UserError("could not apply the LoRA adapters to the context: " + take_llama_errors());
  }
}

}  // namespace msr
