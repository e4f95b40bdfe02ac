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
  std::unique_ptr<TrainSession> session;  // null once disposed
  std::atomic<bool> busy{false};
  void check_alive(const std::string& what) const;
  static UserError disposed_error(const std::string& what);
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

class Trainer : public Wrap<Trainer, TrainerState> {
 public:
  static constexpr const char* kName = "trainer";
  static constexpr napi_type_tag kTypeTag = {0x6d73722d72656331ull, 0x747261696e000004ull};
  static Napi::Function Init(Napi::Env env);  // the constructor, registered by addon.cpp
  explicit Trainer(const Napi::CallbackInfo& info);
  void init(const Napi::CallbackInfo& info);
  void Finalize(Napi::Env env) override;

 private:
  Napi::Value Step(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value Evaluate(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value Info(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value ParamNames(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value GetParam(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value SetParam(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value SaveAdapter(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value SaveModel(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value SaveCheckpoint(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value LoadCheckpoint(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  // trainer_policy.cpp: policy-gradient steps and live adapters.
  Napi::Value PolicyStep(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value EvaluatePolicy(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value LiveAdapter(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);
  Napi::Value SyncLiveAdapter(const Napi::CallbackInfo& info, const Pinned<TrainerState>& pin);

  void release_memory(Napi::Env env);
  int64_t reported_bytes_ = 0;  // native memory reported to V8 (parameters, gradients, AdamW moments)
};

// Once a call's arguments are read: checks the pinned trainer and its model are alive, marks the
// trainer busy (throws when another call runs) and returns its state; the caller releases it with
// BusyRelease.
TrainerStatePtr claim(const Pinned<TrainerState>& pin);

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

// The trainer behind a JS value, pinned for the call `what` (a TypeError for anything else).
Pinned<TrainerState> trainer_from_js(const Napi::Value& v, const std::string& what);

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

// buildTrainSession(model, options) -> Promise<External>, for `new Trainer(model, options, session)`.
Napi::Value BuildTrainSession(const Napi::CallbackInfo& info);

}  // namespace msr
