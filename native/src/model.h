// Model: the JS-visible wrapper of a loaded llama_model (see common.h for ModelState).
#pragma once
#include "common.h"

namespace msr {

class Model : public Wrap<Model, ModelState> {
 public:
  static constexpr const char* kName = "model";
  static constexpr napi_type_tag kTypeTag = {0x6d73722d72656331ull, 0x6d6f64656c000001ull};
  // Defines the class for this environment and returns its constructor (registered by addon.cpp).
  static Napi::Function Init(Napi::Env env);
  static Napi::Value Load(const Napi::CallbackInfo& info);  // loadModel(path, opts) -> Promise<Model>
  explicit Model(const Napi::CallbackInfo& info);
  void Finalize(Napi::Env env) override;

 private:
  Napi::Value Info(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin);
  Napi::Value Tokenize(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin);
  Napi::Value Detokenize(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin);
  Napi::Value TokenPieces(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin);
  Napi::Value LoadLora(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin);
  Napi::Value Generate(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin);
  Napi::Value Embed(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  void release(Napi::Env env);
  int64_t reported_bytes_ = 0;  // weights size told to V8, so its GC sees what a Model holds
};

// The model behind a JS Model handle, pinned for the call `what` (a TypeError for anything else, an
// Error for a disposed model or one loaded with vocabOnly).
Pinned<ModelState> model_from_js(const Napi::Value& v, const std::string& what);
// Refuses a model loaded with vocabOnly (tokenizer only) for `what`.
void require_weights(const ModelState& m, const std::string& what);

}  // namespace msr
