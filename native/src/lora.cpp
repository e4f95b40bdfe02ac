#include "lora.h"

#include <cmath>
#include <filesystem>

namespace msr {

LoraState::~LoraState() {
  if (adapter && model) {
    std::lock_guard<std::mutex> lock(model->mutex);
    llama_adapter_lora_free(adapter);
  }
}

void LoraAdapter::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "LoraAdapter",
                                    {
                                        InstanceMethod("dispose", &LoraAdapter::Dispose),
                                        InstanceAccessor("path", &LoraAdapter::GetPath, nullptr),
                                        InstanceAccessor("alpha", &LoraAdapter::GetAlpha, nullptr),
                                    });
  addon_data(env).lora = Napi::Persistent(ctor);
  exports.Set("LoraAdapter", ctor);
}

LoraAdapter::LoraAdapter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LoraAdapter>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "LoraAdapter cannot be constructed directly: use model.loadLora(path)");
  }
  state_ = *info[0].As<Napi::External<LoraPtr>>().Data();
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
        std::lock_guard<std::mutex> lock(model->mutex);
        model->check_alive("loadLora");
        take_llama_errors();
        llama_adapter_lora* a = llama_adapter_lora_init(model->model, path.c_str());
        if (!a) {
          std::string why = take_llama_errors();
          throw UserError("loadLora: " + path + " is not a LoRA adapter for this model (" + (why.empty() ? "llama.cpp rejected it" : why) +
                          "); an adapter must be a GGUF LoRA trained for the same base model");
        }
        auto st = std::make_shared<LoraState>();
        st->model = model;
        st->adapter = a;
        st->path = path;
        *result = st;
      },
      [result](Napi::Env env) -> Napi::Value { return addon_data(env).lora.New({Napi::External<LoraPtr>::New(env, result.get())}); });
}

Napi::Value LoraAdapter::Dispose(const Napi::CallbackInfo& info) {
  state_.reset();  // freed now unless a running call still holds it
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
