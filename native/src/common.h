// Shared pieces of the addon: the model state every JS-visible object keeps alive, the one
// AsyncWorker shape used for all slow calls, argument helpers, and llama.cpp log capture.
#pragma once
#include <napi.h>

#include <atomic>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "llama.h"

namespace msr {

// A user-facing error: thrown in Execute() or on the main thread, surfaced as a JS Error whose
// message says what to do.
struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The loaded llama_model plus what every object built on it needs. Owned through shared_ptr by
// the Model wrapper and by every adapter, scorer, generator and trainer made from it, so native
// memory outlives JS objects that still point at it; `disposed` turns later use into an error.
struct ModelState {
  llama_model* model = nullptr;
  const llama_vocab* vocab = nullptr;
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;
  int32_t n_threads = 1;
  // Loaded with vocabOnly: the tokenizer without the weights (for tokenizing worker threads).
  bool vocab_only = false;
  int32_t gpu_layers = 0;  // as loaded (0: every weight on the CPU)
  // check_repacked_weights (numerics.h), run once: the first repacked type whose rows disagree.
  bool repack_checked = false;
  std::string repack_mismatch;
  std::string path;
  std::atomic<bool> disposed{false};
  // llama.cpp keeps the set of loaded adapters in the model and reads it when contexts build
  // graphs, so adapter load/free and every decode on this model's contexts are serialised here.
  std::mutex mutex;

  ~ModelState();
  void check_alive(const char* what) const;
};
using ModelPtr = std::shared_ptr<ModelState>;

// Runs `free_fn` (a llama_free, an adapter free) under the model's mutex without making the calling
// thread wait for a running call: at once if the mutex is free, else on a short-lived thread that
// takes it when the call ends. Native state is destroyed where its last owner lets go, which may be
// the JS thread (dispose(), a GC finalizer, a finished call's completion), and the event loop must
// not stall there behind a decode.
void free_under_model_lock(const ModelPtr& model, std::function<void()> free_fn) noexcept;

// The last error lines llama.cpp logged on this thread, so our exceptions can include its reason.
std::string take_llama_errors();
void install_llama_log(int level);  // 0 = silent (errors still captured), 1 = warnings, 2 = info

// One AsyncWorker for every slow call: `work` runs on the thread pool and must not touch JS;
// `done` builds the JS result on the main thread. Exceptions from `work` reject the promise.
// `call_bytes`: native memory the call holds while it runs (a temporary context), reported to V8
// from the start of the call until it settles.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;
  static Napi::Promise Run(Napi::Env env, Work work, Done done, int64_t call_bytes = 0);

 private:
  PromiseWorker(Napi::Env env, Work work, Done done, int64_t call_bytes);
  ~PromiseWorker() override;
  int64_t call_bytes_;
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
};

// ---- every call from JS goes through guard() ------------------------------------------------
// node-addon-api turns only Napi::Error into a JS exception: any other C++ exception leaving a
// callback on the JS thread (a UserError, std::bad_alloc, a std::runtime_error from llama.cpp)
// reaches std::terminate and kills the process. guard() converts them all to JS Errors, and
// Wrap<T>::Method / Getter and guarded_fn register methods and functions through it, so no
// call site has to remember.
[[noreturn]] void rethrow_as_js(Napi::Env env);  // call inside a catch (...) block

template <typename F>
auto guard(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (...) {
    rethrow_as_js(env);
  }
}

template <typename T>
class Wrap : public Napi::ObjectWrap<T> {
 public:
  using Napi::ObjectWrap<T>::ObjectWrap;
  using Method_ = Napi::Value (T::*)(const Napi::CallbackInfo&);

  template <Method_ M>
  static Napi::ClassPropertyDescriptor<T> Method(const char* name) {
    return Napi::ObjectWrap<T>::InstanceMethod(name, &Wrap::template Call<M>);
  }
  template <Method_ M>
  static Napi::ClassPropertyDescriptor<T> Getter(const char* name) {
    return Napi::ObjectWrap<T>::InstanceAccessor(name, &Wrap::template Call<M>, nullptr);
  }

 private:
  template <Method_ M>
  Napi::Value Call(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { return (static_cast<T*>(this)->*M)(info); });
  }
};

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded_fn(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return F(info); });
}

// llama_batch_init's arrays, freed when the scope ends however it ends (a thrown error included).
class ScopedBatch {
 public:
  ScopedBatch(int32_t n_tokens, int32_t n_seq_max) : batch(llama_batch_init(n_tokens, 0, n_seq_max)) {}
  ~ScopedBatch() { llama_batch_free(batch); }
  ScopedBatch(const ScopedBatch&) = delete;
  ScopedBatch& operator=(const ScopedBatch&) = delete;
  llama_batch batch;
};

// Tells V8 about native memory held by a JS object (negative to release it). Never throws: it runs
// in finalizers, where an exception (e.g. while the environment shuts down) would terminate.
void adjust_external_memory(Napi::Env env, int64_t delta) noexcept;

// Argument helpers: each throws a JS TypeError naming the argument and what was expected.
void require_args(const Napi::CallbackInfo& info, size_t n, const char* signature);
std::string get_string(const Napi::Value& v, const char* name);
double get_number(const Napi::Object& o, const char* key, double fallback);
// An integer option in [lo, hi] (RangeError otherwise, naming the key and the range).
int64_t get_int(const Napi::Object& o, const char* key, int64_t fallback, int64_t lo, int64_t hi);
bool get_bool(const Napi::Object& o, const char* key, bool fallback);
// Token arrays longer than this are refused before anything is allocated for them.
constexpr uint32_t kMaxTokenArray = 1u << 26;
std::vector<llama_token> get_tokens(const Napi::Value& v, const char* name);
// CPU threads for llama.cpp and the kernels: ggml refuses (or crashes on) more than it supports.
constexpr int kMaxThreads = 512;
Napi::Int32Array to_int32_array(Napi::Env env, const std::vector<llama_token>& v);

// Checks a GGUF file's header before llama.cpp or our loaders read it: each listed key that is
// present has the listed type (the typed gguf_get_val_* getters abort on any other), and every
// tensor's data lies inside the file (loaders allocate what a header claims before reading).
// Throws UserError naming `what`, the path and the fix; returns false when the file is not a
// readable GGUF at all, so the caller can say that in its own words.
struct GgufKey {
  const char* key;
  int type;  // a gguf_type
};
bool check_gguf_file(const std::string& path, std::initializer_list<GgufKey> keys, const char* what);

// Bytes of an f16 KV cache of n_ctx cells on this model (what a context holds besides its buffers).
int64_t kv_cache_bytes(const ModelState& m, uint32_t n_ctx);

// Tokenize / detokenize with the model's vocabulary (used by Model and by the generator).
std::vector<llama_token> tokenize(const ModelState& m, const std::string& text, bool add_bos, bool special);
std::string detokenize(const ModelState& m, const std::vector<llama_token>& tokens, bool special);
std::string token_piece(const ModelState& m, llama_token t);
void check_token_range(const ModelState& m, const std::vector<llama_token>& tokens, const char* where);

// Per-environment class constructors. The addon may be loaded by the main thread and by worker
// threads at once, and each has its own JS environment: a constructor reference kept in a
// static would be overwritten by the last environment to load and be wrong for the others.
struct AddonData {
  Napi::FunctionReference model;
  Napi::FunctionReference lora;
  Napi::FunctionReference scorer;
  Napi::FunctionReference trainer;
};
AddonData& addon_data(Napi::Env env);

}  // namespace msr
