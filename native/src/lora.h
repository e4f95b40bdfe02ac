// LoraAdapter: a GGUF LoRA adapter loaded once per model and chosen per call by scorers and
// generation ({adapter, scale} lists). dispose() frees it while the model stays loaded.
#pragma once
#include "common.h"

namespace msr {

struct LoraState {
  ModelPtr model;
  llama_adapter_lora* adapter = nullptr;
  std::string path;
  float alpha = 0.f;     // adapter.lora.alpha (0 = absent: llama.cpp then applies the scale as is)
  int64_t min_rank = 1;  // smallest lora_a rank: llama.cpp multiplies the scale by alpha / rank
  int64_t bytes = 0;     // tensor data held in memory
  std::atomic<bool> disposed{false};  // set by dispose(); a call that has not started refuses the adapter
  ~LoraState();
  void check_alive(const std::string& what) const;
  static UserError disposed_error(const std::string& what);
};
using LoraPtr = std::shared_ptr<LoraState>;

// One adapter with its scale, as resolved from a JS `lora: [{adapter, scale}]` option.
struct LoraChoice {
  LoraPtr lora;
  float scale;
};
// Parses `opts.lora` (adapters pinned as they are read, checked alive once the list is read);
// checks each adapter belongs to `model` and has a scale that stays a finite float. Later getters
// of the caller's options may still dispose one: apply_loras checks them again, under the lock.
std::vector<LoraChoice> parse_lora_option(const Napi::Object& opts, const ModelState& model);
// Applies the choice to a context (an empty list clears all adapters), refusing an adapter
// disposed since the call read it. Caller holds model->mutex.
void apply_loras(llama_context* ctx, const std::vector<LoraChoice>& loras);

// Applies adapters for the length of one call and clears them after, so that no context keeps a
// pointer to an adapter between calls: an adapter can then be freed at any time, and a new one
// that happens to reuse the freed address is never mistaken for the old one.
class ScopedLoras {
 public:
  ScopedLoras(llama_context* ctx, const std::vector<LoraChoice>& loras) : ctx_(ctx), active_(!loras.empty()) {
    if (active_) apply_loras(ctx_, loras);
  }
  ~ScopedLoras() {
    if (active_) llama_set_adapters_lora(ctx_, nullptr, 0, nullptr);
  }
  ScopedLoras(const ScopedLoras&) = delete;
  ScopedLoras& operator=(const ScopedLoras&) = delete;

 private:
  llama_context* ctx_;
  bool active_;
};

class LoraAdapter : public Wrap<LoraAdapter, LoraState> {
 public:
  static constexpr const char* kName = "adapter";
  static constexpr napi_type_tag kTypeTag = {0x6d73722d72656331ull, 0x6c6f726100000002ull};
  static Napi::Function Init(Napi::Env env);  // the constructor, registered by addon.cpp
  // model.loadLora(path) -> Promise<LoraAdapter>, on the model its call pinned.
  static Napi::Value Load(const Napi::CallbackInfo& info, const Pinned<ModelState>& model);
  explicit LoraAdapter(const Napi::CallbackInfo& info);
  void Finalize(Napi::Env env) override;

 private:
  void release(Napi::Env env);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetPath(const Napi::CallbackInfo& info);
  Napi::Value GetAlpha(const Napi::CallbackInfo& info);
  int64_t reported_bytes_ = 0;  // adapter tensors told to V8
};

}  // namespace msr
