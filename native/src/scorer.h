// Scorer: batched log-prob scoring of {prompt, continuation} token requests on one llama_context.
//
// A call is planned first (score_plan.h: which layout, which prompts are shared, which tokens go
// into which wave and batch), then run: each wave from an empty KV cache, batch by batch. The
// scorer holds one context at a time, unified or per-sequence (kv_unified = false: one KV stream
// per sequence, so a token attends over its own request's cells only), and remakes it when a call
// needs the other layout. Logits are requested only where a continuation token is predicted, and
// reduced natively by fused_ce_cpu (max, log-sum-exp in double, target logit) — JS never receives
// a vocabulary-sized array.
#pragma once
#include "common.h"
#include "kv_layout.h"
#include "lora.h"
#include "numerics.h"
#include "score_plan.h"

namespace msr {

struct ScoreResult {
  std::vector<float> token_logprobs;
  double logprob = 0.0;
  double ppl = 0.0;
};

struct ScorerState {
  ModelPtr model;
  llama_context* ctx = nullptr;  // made by the first call (ensure_context / ensure_per_sequence_context)
  llama_context_params cparams{};  // the unified context's parameters
  KvLayout layout = KvLayout::Auto;
  Numerics numerics = Numerics::Invariant;  // see numerics.h; set at construction
  // What `ctx` is now: unified, or per-sequence with `streams` streams of `stream_cells` cells each.
  bool ctx_per_seq = false;
  uint32_t streams = 0, stream_cells = 0;
  // Atomic: the first call's worker sets the real values while the JS thread may read `config`.
  std::atomic<uint32_t> n_ctx{0}, n_seq{0}, n_batch{0};
  std::atomic<uint32_t> n_wave{0};  // cells one wave may fill (<= n_ctx)
  std::atomic<bool> disposed{false};
  int64_t native_bytes = 0;  // KV cache, compute and logits buffers (reported to V8 by the Scorer)
  ~ScorerState();
  void check_alive(const std::string& what) const;
  static UserError disposed_error(const std::string& what);
  // Cells a request needs beyond its own: invariant numerics may add a pad token after its last one.
  uint32_t spare_cells() const { return numerics == Numerics::Invariant ? 1 : 0; }
  // Both make `ctx` of their layout if it is not already (freeing the other). Caller holds model->mutex.
  void ensure_context(const char* what);
  // Streams of at least `cells` cells each (a multiple of 256), as many as the unified context's
  // cells hold (at least one, at most `n_seq`): the same KV memory as the unified context.
  void ensure_per_sequence_context(const char* what, uint32_t cells);
};
using ScorerPtr = std::shared_ptr<ScorerState>;

// Where one call's time went (score's `profile` option).
struct ScoreProfile {
  bool per_sequence = false;  // the KV layout the call ran in
  size_t waves = 0, decodes = 0;
  double decode_ms = 0, reduce_ms = 0, other_ms = 0;  // llama_decode, the log-prob reduction, the rest
};

// Scores the requests; with `reduce` false it instead decodes the same tokens with logits at every
// position and no log-prob work (the throughput ceiling the benchmark compares against). `profile`
// (when given) receives the call's timings.
std::vector<ScoreResult> score_requests(ScorerState& s, const std::vector<ScoreRequest>& reqs, const std::vector<LoraChoice>& loras,
                                        bool reduce, ScoreProfile* profile = nullptr);

// A JS request list as ScoreRequests, each checked against the scorer and the model (throws a JS
// Error naming the request and the fix). Reads only the scorer's plain fields.
std::vector<ScoreRequest> get_score_requests(const Napi::Value& v, const ScorerState& s);

class Scorer : public Wrap<Scorer, ScorerState> {
 public:
  static constexpr const char* kName = "scorer";
  static constexpr napi_type_tag kTypeTag = {0x6d73722d72656331ull, 0x73636f7265720003ull};
  static Napi::Function Init(Napi::Env env);  // the constructor, registered by addon.cpp
  explicit Scorer(const Napi::CallbackInfo& info);  // new Scorer(model, {contextSize, sequences, batchSize, waveTokens, kvLayout, numerics})
  void Finalize(Napi::Env env) override;

 private:
  void init(const Napi::CallbackInfo& info);
  void release(Napi::Env env);
  Napi::Value Score(const Napi::CallbackInfo& info, const Pinned<ScorerState>& pin);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetConfig(const Napi::CallbackInfo& info);
  int64_t reported_bytes_ = 0;
};

// The scorer behind a JS value, pinned for the call `what` (a TypeError for anything else).
Pinned<ScorerState> scorer_from_js(const Napi::Value& v, const std::string& what);

}  // namespace msr
