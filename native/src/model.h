// Model: the JS-visible wrapper of a loaded llama_model (see common.h for ModelState).
#pragma once
#include "common.h"

namespace msr {

class Model : public Wrap<Model> {
 public:
  // Defines the class for this environment and returns its constructor (registered by addon.cpp).
  static Napi::Function Init(Napi::Env env);
  static Napi::Value Load(const Napi::CallbackInfo& info);  // loadModel(path, opts) -> Promise<Model>
  explicit Model(const Napi::CallbackInfo& info);
  void Finalize(Napi::Env env) override;
  const ModelPtr& state() const { return state_; }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Tokenize(const Napi::CallbackInfo& info);
  Napi::Value Detokenize(const Napi::CallbackInfo& info);
  Napi::Value TokenPieces(const Napi::CallbackInfo& info);
  Napi::Value LoadLora(const Napi::CallbackInfo& info);
  Napi::Value Generate(const Napi::CallbackInfo& info);
  Napi::Value Embed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  const ModelPtr& alive(Napi::Env env, const char* what) const;
  void release(Napi::Env env);
  ModelPtr state_;
  int64_t reported_bytes_ = 0;  // weights size told to V8, so its GC sees what a Model holds
};

// The model behind a JS Model handle; throws a JS TypeError for anything else or a disposed model.
ModelPtr model_from_js(const Napi::Value& v);

}  // namespace msr
