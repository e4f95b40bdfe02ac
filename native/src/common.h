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
  // The tokens a grammar can accept in the middle of a UTF-8 character, found once on first use
  // (samplers.cpp: mid_char_tokens).
  mutable std::once_flag mid_char_once;
  mutable std::vector<llama_token> mid_char;

  ~ModelState();
  // Throws UserError naming `what` when the model was disposed (see Pinned).
  void check_alive(const std::string& what) const;
  static UserError disposed_error(const std::string& what);
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

// ---- re-entrancy: pin the state, read the arguments, check again ----------------------------
// Reading a JS argument can run the caller's code (a getter, a Proxy trap, an array element's
// accessor), and that code can dispose the very object the call is on, or grow the array being
// read. So every entry point
//   1. pins the state it works on before it reads any argument: Pinned<S> holds its own strong
//      reference, so dispose() (which drops the wrapper's reference and marks the state) cannot
//      free memory under the call;
//   2. reads its arguments; while it does, it may look at the pinned state's plain fields (peek)
//      but calls nothing in llama.cpp; arrays are read by a length taken once (get_array);
//   3. calls ready(), which throws when the state or its model was disposed meanwhile, and only
//      then touches llama.cpp. Workers check again under the model's lock before they run.
// Wrap<T, S>::Method hands every method the Pinned its call made, and pin_js does the same for
// module functions given a handle, so no entry point reads a wrapper's member after an argument.
// S provides check_alive(what) and a static disposed_error(what).
template <typename S>
class Pinned {
 public:
  Pinned(std::shared_ptr<S> state, std::string what) : state_(std::move(state)), what_(std::move(what)) {}
  // The state, checked: call once the arguments are read, before anything touches llama.cpp.
  const std::shared_ptr<S>& ready() const {
    state_->check_alive(what_);
    return state_;
  }
  // The state's plain fields while arguments are read (limits, sizes): nothing that calls llama.cpp.
  const S& peek() const { return *state_; }
  const std::string& what() const { return what_; }

 private:
  std::shared_ptr<S> state_;
  std::string what_;
};

// The JS-visible wrapper of a state S. T names itself (kName: "model", "scorer", ...) and tags its
// objects (kTypeTag) so that handles are recognised without running user code: a Proxy or an
// object made with the class's prototype is not a handle.
template <typename T, typename S>
class Wrap : public Napi::ObjectWrap<T> {
 public:
  explicit Wrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<T>(info) { info.This().As<Napi::Object>().TypeTag(&T::kTypeTag); }
  using PinnedMethod = Napi::Value (T::*)(const Napi::CallbackInfo&, const Pinned<S>&);
  using PlainMethod = Napi::Value (T::*)(const Napi::CallbackInfo&);

  // A method that works on the object's state: it receives the call's Pinned ("<kName>.<name>").
  template <PinnedMethod M>
  static Napi::ClassPropertyDescriptor<T> Method(const char* name) {
    return Napi::ObjectWrap<T>::InstanceMethod(name, &Wrap::template CallPinned<M>, napi_default, const_cast<char*>(name));
  }
  // dispose() and getters that answer for a disposed object too: no pin.
  template <PlainMethod M>
  static Napi::ClassPropertyDescriptor<T> Plain(const char* name) {
    return Napi::ObjectWrap<T>::InstanceMethod(name, &Wrap::template CallPlain<M>);
  }
  template <PlainMethod M>
  static Napi::ClassPropertyDescriptor<T> Getter(const char* name) {
    return Napi::ObjectWrap<T>::InstanceAccessor(name, &Wrap::template CallPlain<M>, nullptr);
  }

  // This object's state for one call named `what`; throws when it was disposed.
  Pinned<S> pin(const std::string& what) const {
    if (!state_) throw S::disposed_error(what);
    return Pinned<S>(state_, what);
  }
  // The state behind a JS value that must be a T (a TypeError saying `expected` otherwise), pinned.
  static Pinned<S> pin_js(const Napi::Value& v, const std::string& what, const char* expected) {
    if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&T::kTypeTag)) throw Napi::TypeError::New(v.Env(), expected);
    return T::Unwrap(v.As<Napi::Object>())->pin(what);
  }

 protected:
  void hold(std::shared_ptr<S> state) { state_ = std::move(state); }
  // dispose(): the wrapper lets go of its state and returns it (null when already disposed).
  std::shared_ptr<S> let_go() { return std::move(state_); }
  // For getters that answer null once disposed (they read plain fields only).
  const std::shared_ptr<S>& held() const { return state_; }

 private:
  std::shared_ptr<S> state_;
  template <PinnedMethod M>
  Napi::Value CallPinned(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] {
      const Pinned<S> pinned = pin(std::string(T::kName) + "." + static_cast<const char*>(info.Data()));
      return (static_cast<T*>(this)->*M)(info, pinned);
    });
  }
  template <PlainMethod M>
  Napi::Value CallPlain(const Napi::CallbackInfo& info) {
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
// A JS array with its length read once: reading an element may run the caller's code, which may
// grow or shrink the array; loops go to `n`, never to a length read again. More than `max`
// elements is a RangeError naming `name`.
struct JsArray {
  Napi::Array array;
  uint32_t n = 0;
  Napi::Value operator[](uint32_t i) const { return array.Get(i); }
};
JsArray get_array(const Napi::Value& v, const std::string& name, uint32_t max, const char* expected);
std::string get_string(const Napi::Value& v, const char* name);
double get_number(const Napi::Object& o, const char* key, double fallback);
// An integer option in [lo, hi] (RangeError otherwise, naming the key and the range).
int64_t get_int(const Napi::Object& o, const char* key, int64_t fallback, int64_t lo, int64_t hi);
bool get_bool(const Napi::Object& o, const char* key, bool fallback);
// Token arrays (JS arrays and Int32Arrays) longer than this are refused before anything is
// allocated for them.
constexpr uint32_t kMaxTokenArray = 1u << 26;
std::vector<llama_token> get_tokens(const Napi::Value& v, const std::string& name);
// CPU threads for llama.cpp and the kernels: ggml refuses (or crashes on) more than it supports.
constexpr int kMaxThreads = 512;
// The CPUs this process may run on (its affinity mask, as `taskset` or a scheduler's allocation
// sets it), at least 1 and at most kMaxThreads: the thread count when a call gives none. In JS,
// src/util/cpus.ts owns the same rule for the TS API (which passes an explicit count).
int allowed_cpus();
Napi::Int32Array to_int32_array(Napi::Env env, const std::vector<llama_token>& v);

// Bytes of an f16 KV cache of n_ctx cells on this model (what a context holds besides its buffers).
int64_t kv_cache_bytes(const ModelState& m, uint32_t n_ctx);

// Tokenize / detokenize with the model's vocabulary (used by Model and by the generator).
std::vector<llama_token> tokenize(const ModelState& m, const std::string& text, bool add_bos, bool special);
// Refuses (UserError) token lists whose text could outgrow llama.cpp's int32 sizes.
std::string detokenize(const ModelState& m, const std::vector<llama_token>& tokens, bool special);
// The token's text piece, however long (llama.cpp reports the size a piece needs); `special`
// renders control tokens' text instead of nothing.
std::string token_piece(const ModelState& m, llama_token t, bool special = false);
void check_token_range(const ModelState& m, const std::vector<llama_token>& tokens, const char* where);

// Logits handed to a caller follow score()'s rule: a NaN or infinite value is an error naming
// where it is and its likely cause, never a number returned. `n_vocab` values a row.
void check_finite_logits(const std::vector<float>& logits, size_t n_vocab, const std::string& what, bool with_loras);

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
