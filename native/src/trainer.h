// Trainer: the JS-visible wrapper of a TrainSession (LoRA or full training of a LLaMA-family
// model), plus the module function buildTrainSession (a session built off the JS thread, adopted
// by `new Trainer`).
#pragma once
#include <atomic>
#include <memory>

#include "common.h"
#include "lora.h"
#include "train_session.h"

namespace msr {

// A trainer's session, shared with in-flight workers so a dispose() during a step cannot free it
// under them. `busy` makes calls exclusive: one at a time, a second one is refused.
struct TrainerState {
  std::unique_ptr<TrainSession> session;
  std::atomic<bool> busy{false};
  // Live adapters made by liveAdapter() (live_lora.h), updated after every change of the weights
  // while their JS handles keep them; only touched by calls that hold `busy`.
  std::vector<std::weak_ptr<LoraState>> live;
};
using TrainerStatePtr = std::shared_ptr<TrainerState>;

// Clears a trainer's busy flag when the call that set it ends.
struct BusyRelease {
  std::atomic<bool>& busy;
  ~BusyRelease() { busy = false; }
};

class Trainer : public Wrap<Trainer> {
 public:
  static Napi::Function Init(Napi::Env env);  // the constructor, registered by addon.cpp
  explicit Trainer(const Napi::CallbackInfo& info);
  void init(const Napi::CallbackInfo& info);
  void Finalize(Napi::Env env) override;
  // Marks the trainer busy (throws if it already is or was disposed) and returns its state for a
  // call; the caller releases it with BusyRelease.
  TrainerStatePtr acquire(Napi::Env env, const char* what);

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value ParamNames(const Napi::CallbackInfo& info);
  Napi::Value GetParam(const Napi::CallbackInfo& info);
  Napi::Value SetParam(const Napi::CallbackInfo& info);
  Napi::Value SaveAdapter(const Napi::CallbackInfo& info);
  Napi::Value SaveModel(const Napi::CallbackInfo& info);
  Napi::Value SaveCheckpoint(const Napi::CallbackInfo& info);
  Napi::Value LoadCheckpoint(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  // trainer_policy.cpp: policy-gradient steps and live adapters.
  Napi::Value PolicyStep(const Napi::CallbackInfo& info);
  Napi::Value EvaluatePolicy(const Napi::CallbackInfo& info);
  Napi::Value LiveAdapter(const Napi::CallbackInfo& info);
  Napi::Value SyncLiveAdapter(const Napi::CallbackInfo& info);

  void release_memory(Napi::Env env);
  TrainerStatePtr state_;
  int64_t reported_bytes_ = 0;  // native memory reported to V8 (parameters, gradients, AdamW moments)
};

// The trainer's arguments as plain C++: the model, the graph's config and the micro-batch size.
struct TrainerArgs {
  ModelPtr model;
  TrainConfig cfg;
  int micro = 0;
};
// (model, options) as `new Trainer` and buildTrainSession take them; throws a JS Error for bad
// options and for models or modes the training graph refuses, before anything is allocated.
TrainerArgs parse_trainer_args(const Napi::CallbackInfo& info, const char* signature);
// Builds the session in a worker; resolves with the External `new Trainer(model, options, session)` adopts.
Napi::Value build_session_async(Napi::Env env, const TrainerArgs& args);

// Argument parsers shared by trainer.cpp and trainer_policy.cpp: a {tokens, lengths, segments}
// batch, and AdamW's settings (lr, beta1, beta2, eps, weightDecay, clip; a RangeError prefixed
// with `what` for values that would make the parameters non-finite).
SampleBatch batch_from_js(const Napi::Value& v);
AdamW adamw_from_js(Napi::Env env, const Napi::Object& o, const char* what);
// A step's pass profiles as JS ({passes: [...]}, NativeTrainProfile in src/engine/bindings.ts).
Napi::Object train_profile_to_js(Napi::Env env, const std::vector<PassProfile>& passes);
// Copies the trainer's weights into every live adapter still held; prunes the released ones. The
// caller holds the model's mutex and the trainer's busy flag.
void sync_live_loras(TrainerState& st);

// acquire() on the Trainer behind a JS value (a TypeError for anything else).
TrainerStatePtr acquire_trainer(const Napi::Value& v, const char* what);

// buildTrainSession(model, options) -> Promise<External>, for `new Trainer(model, options, session)`.
Napi::Value BuildTrainSession(const Napi::CallbackInfo& info);

}  // namespace msr
