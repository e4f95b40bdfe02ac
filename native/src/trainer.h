// Trainer: the JS-visible wrapper of a TrainSession (LoRA or full training of a LLaMA-family
// model), plus the module functions buildTrainSession (a session built off the JS thread, adopted
// by `new Trainer`) and fusedCrossEntropy (the CE kernel's test/bench entry point).
#pragma once
#include <atomic>
#include <memory>

#include "common.h"
#include "train_session.h"

namespace msr {

class Trainer : public Wrap<Trainer> {
 public:
  static Napi::Function Init(Napi::Env env);  // the constructor, registered by addon.cpp
  explicit Trainer(const Napi::CallbackInfo& info);
  void init(const Napi::CallbackInfo& info);
  void Finalize(Napi::Env env) override;

 private:
  // Shared with in-flight workers so a dispose() during a step cannot free the session under it.
  struct State {
    std::unique_ptr<TrainSession> session;
    std::atomic<bool> busy{false};
  };

  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value Logits(const Napi::CallbackInfo& info);
  Napi::Value ReferenceLogits(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value ParamNames(const Napi::CallbackInfo& info);
  Napi::Value GetParam(const Napi::CallbackInfo& info);
  Napi::Value SetParam(const Napi::CallbackInfo& info);
  Napi::Value GetGrad(const Napi::CallbackInfo& info);
  Napi::Value SaveAdapter(const Napi::CallbackInfo& info);
  Napi::Value SaveModel(const Napi::CallbackInfo& info);
  Napi::Value SaveCheckpoint(const Napi::CallbackInfo& info);
  Napi::Value LoadCheckpoint(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  // Marks the trainer busy (throws if it already is or was disposed) and returns the state for a worker.
  std::shared_ptr<State> acquire(Napi::Env env, const char* what);
  void release_memory(Napi::Env env);
  std::shared_ptr<State> state_;
  int64_t reported_bytes_ = 0;  // native memory reported to V8 (parameters, gradients, AdamW moments)
};

// buildTrainSession(model, options) -> Promise<External>, for `new Trainer(model, options, session)`.
Napi::Value BuildTrainSession(const Napi::CallbackInfo& info);
// fusedCrossEntropy(logits, rows, vocab, targets, weights|null, options?) -> {loss, logprobs, grad?}.
Napi::Value FusedCrossEntropy(const Napi::CallbackInfo& info);

}  // namespace msr
