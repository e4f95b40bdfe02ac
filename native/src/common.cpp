#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

namespace msr {

ModelState::~ModelState() {
  if (model) llama_model_free(model);
}

int64_t kv_cache_bytes(const ModelState& m, uint32_t n_ctx) {
  const int64_t head_dim = llama_model_n_embd(m.model) / std::max(1, llama_model_n_head(m.model));
  return static_cast<int64_t>(n_ctx) * llama_model_n_layer(m.model) * 2 * head_dim * llama_model_n_head_kv(m.model) * 2;
}

void free_under_model_lock(const ModelPtr& model, std::function<void()> free_fn) noexcept {
  if (model->mutex.try_lock()) {
    std::lock_guard<std::mutex> lock(model->mutex, std::adopt_lock);
    free_fn();
    return;
  }
  auto fn = std::make_shared<std::function<void()>>(std::move(free_fn));
  try {
    std::thread([model, fn] {
      std::lock_guard<std::mutex> lock(model->mutex);
      (*fn)();
    }).detach();
  } catch (...) {
    // No thread to hand it to (thread limit): wait after all rather than leak or crash.
    std::lock_guard<std::mutex> lock(model->mutex);
    (*fn)();
  }
}

void ModelState::check_alive(const std::string& what) const {
  if (disposed.load()) throw disposed_error(what);
}

UserError ModelState::disposed_error(const std::string& what) { return UserError(what + ": the model was disposed; load it again with loadModel()"); }

int allowed_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::clamp(CPU_COUNT(&set), 1, kMaxThreads);
#endif
  return std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, kMaxThreads);
}

// ---- llama.cpp log capture ---------------------------------------------------------------
static std::atomic<int> g_log_level{0};
static thread_local std::string t_errors;

static void log_callback(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) {
    if (t_errors.size() < 4096) t_errors += text;
  }
  int verbosity = g_log_level.load();
  bool show = (level == GGML_LOG_LEVEL_ERROR && verbosity >= 1) || (level == GGML_LOG_LEVEL_WARN && verbosity >= 1) ||
              (verbosity >= 2 && level != GGML_LOG_LEVEL_DEBUG) || verbosity >= 3;
  if (show) fputs(text, stderr);
}

void install_llama_log(int level) {
  g_log_level.store(level);
  llama_log_set(log_callback, nullptr);
}

std::string take_llama_errors() {
  std::string s;
  s.swap(t_errors);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

AddonData& addon_data(Napi::Env env) {
  AddonData* d = env.GetInstanceData<AddonData>();
  if (!d) {
    d = new AddonData();
    env.SetInstanceData(d);  // deleted with the environment
  }
  return *d;
}

// ---- PromiseWorker ------------------------------------------------------------------------
Napi::Promise PromiseWorker::Run(Napi::Env env, Work work, Done done, int64_t call_bytes) {
  auto* w = new PromiseWorker(env, std::move(work), std::move(done), call_bytes);
  Napi::Promise p = w->deferred_.Promise();
  w->Queue();
  return p;
}

PromiseWorker::PromiseWorker(Napi::Env env, Work work, Done done, int64_t call_bytes)
    : Napi::AsyncWorker(env, "msr-rec"), call_bytes_(call_bytes), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), done_(std::move(done)) {
  adjust_external_memory(env, call_bytes_);
}

// Deleted on the JS thread once the promise is settled (or dropped with a terminating worker).
PromiseWorker::~PromiseWorker() { adjust_external_memory(Env(), -call_bytes_); }

void PromiseWorker::Execute() {
  try {
    work_();
  } catch (const std::exception& e) {
    SetError(e.what());
  } catch (...) {
    SetError("msr-rec: unknown native error");
  }
}

// When a worker thread is terminated while a call is in flight, the completion runs on an
// environment that can no longer run JS: settling the promise throws again. Nobody is left to
// receive the result then, so it is dropped instead of letting the exception abort the process.
void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  try {
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(env, e.what()).Value());
    } catch (...) {
      deferred_.Reject(Napi::Error::New(env, "msr-rec: unknown native error").Value());
    }
  } catch (...) {
  }
}

void PromiseWorker::OnError(const Napi::Error& e) {
  try {
    deferred_.Reject(e.Value());
  } catch (...) {
  }
}

// ---- exceptions on the JS thread -----------------------------------------------------------
void rethrow_as_js(Napi::Env env) {
  try {
    throw;
  } catch (const Napi::Error&) {
    throw;
  } catch (const UserError& e) {
    throw Napi::Error::New(env, e.what());
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "msr-rec: out of memory; use smaller inputs, a smaller contextSize or batch, or free other models");
  } catch (const std::system_error& e) {
    throw Napi::Error::New(env, std::string("msr-rec: the system refused a resource (") + e.what() + "); lower `threads` or free resources");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("msr-rec: ") + e.what());
  } catch (...) {
    throw Napi::Error::New(env, "msr-rec: unknown native error");
  }
}

void adjust_external_memory(Napi::Env env, int64_t delta) noexcept {
  int64_t total = 0;
  if (delta != 0) napi_adjust_external_memory(env, delta, &total);  // a failure only skews GC heuristics
}

// ---- arguments ----------------------------------------------------------------------------
void require_args(const Napi::CallbackInfo& info, size_t n, const char* signature) {
  if (info.Length() < n) throw Napi::TypeError::New(info.Env(), std::string("expected ") + signature);
}

std::string get_string(const Napi::Value& v, const char* name) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

double get_number(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

int64_t get_int(const Napi::Object& o, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  double d = get_number(o, key, static_cast<double>(fallback));
  if (!(d == std::floor(d) && d >= static_cast<double>(lo) && d <= static_cast<double>(hi))) {
    throw Napi::RangeError::New(o.Env(), std::string(key) + " must be an integer between " + std::to_string(lo) + " and " + std::to_string(hi) +
                                             ", got " + Napi::Number::New(o.Env(), d).ToString().Utf8Value());
  }
  return static_cast<int64_t>(d);
}

bool get_bool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

JsArray get_array(const Napi::Value& v, const std::string& name, uint32_t max, const char* expected) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), expected);
  JsArray a{v.As<Napi::Array>(), 0};
  a.n = a.array.Length();
  if (a.n > max) {
    throw Napi::RangeError::New(v.Env(), name + " has " + std::to_string(a.n) + " entries, more than the " + std::to_string(max) + " it may have");
  }
  return a;
}

std::vector<llama_token> get_tokens(const Napi::Value& v, const std::string& name) {
  const auto too_long = [&](size_t n) {
    return Napi::RangeError::New(v.Env(), name + " has " + std::to_string(n) + " token ids, more than any context holds (at most " +
                                              std::to_string(kMaxTokenArray) + ")");
  };
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    auto a = v.As<Napi::Int32Array>();
    if (a.ElementLength() > kMaxTokenArray) throw too_long(a.ElementLength());
    return std::vector<llama_token>(a.Data(), a.Data() + a.ElementLength());
  }
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), name + " must be an Int32Array or an array of token ids");
  auto a = v.As<Napi::Array>();
  const uint32_t n = a.Length();  // once: an element's getter may change the array
  if (n > kMaxTokenArray) throw too_long(n);
  std::vector<llama_token> out(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::HandleScope scope(v.Env());  // one handle per element otherwise, for arrays of millions
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) throw Napi::TypeError::New(v.Env(), name + " must hold integer token ids");
    double d = x.As<Napi::Number>().DoubleValue();
    if (d != std::floor(d) || d < INT32_MIN || d > INT32_MAX) throw Napi::TypeError::New(v.Env(), name + " must hold integer token ids");
    out[i] = static_cast<llama_token>(d);
  }
  return out;
}

Napi::Int32Array to_int32_array(Napi::Env env, const std::vector<llama_token>& v) {
  auto a = Napi::Int32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(llama_token));
  return a;
}

// ---- tokens -------------------------------------------------------------------------------
std::vector<llama_token> tokenize(const ModelState& m, const std::string& text, bool add_bos, bool special) {
  // llama_tokenize takes int32 sizes; a text is at most one token per byte plus BOS/EOS.
  if (text.size() > static_cast<size_t>(INT32_MAX) - 8) throw UserError("tokenize: the text is longer than 2 GiB; tokenize it in parts");
  int32_t cap = static_cast<int32_t>(text.size()) + 8;
  std::vector<llama_token> out(cap);
  int32_t n = llama_tokenize(m.vocab, text.data(), static_cast<int32_t>(text.size()), out.data(), cap, add_bos, special);
  if (n < 0) {
    out.resize(-n);
    n = llama_tokenize(m.vocab, text.data(), static_cast<int32_t>(text.size()), out.data(), -n, add_bos, special);
  }
  if (n < 0) throw UserError("tokenize failed: the text could not be tokenized");
  out.resize(n);
  return out;
}

std::string detokenize(const ModelState& m, const std::vector<llama_token>& tokens, bool special) {
  check_token_range(m, tokens, "detokenize");
  // llama_detokenize counts the text's bytes in int32: the pieces (their longest form, with
  // special tokens rendered) must add up to less than 2 GiB, or it would overflow and abort.
  int64_t bound = 16;
  for (llama_token t : tokens) {
    bound += static_cast<int64_t>(token_piece(m, t, true).size());
    if (bound > INT32_MAX) {
      throw UserError("detokenize: " + std::to_string(tokens.size()) + " tokens make more than 2 GiB of text; detokenize them in parts");
    }
  }
  std::string out(static_cast<size_t>(bound), '\0');
  int32_t n = llama_detokenize(m.vocab, tokens.data(), static_cast<int32_t>(tokens.size()), out.data(), static_cast<int32_t>(out.size()), false, special);
  if (n < 0) throw UserError("detokenize: llama.cpp needed " + std::to_string(-n) + " bytes, more than the pieces add up to");
  out.resize(n);
  return out;
}

std::string token_piece(const ModelState& m, llama_token t, bool special) {
  char buf[256];
  int32_t n = llama_token_to_piece(m.vocab, t, buf, sizeof(buf), 0, special);
  if (n >= 0) return std::string(buf, n);
  std::string piece(static_cast<size_t>(-n), '\0');  // longer than the buffer: llama.cpp said how long
  n = llama_token_to_piece(m.vocab, t, piece.data(), static_cast<int32_t>(piece.size()), 0, special);
  piece.resize(n > 0 ? n : 0);
  return piece;
}

void check_token_range(const ModelState& m, const std::vector<llama_token>& tokens, const char* where) {
  for (size_t i = 0; i < tokens.size(); i++) {
    if (tokens[i] < 0 || tokens[i] >= m.n_vocab) {
      throw UserError(std::string(where) + ": token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                      " is out of range; this model's vocabulary has ids 0.." + std::to_string(m.n_vocab - 1));
    }
  }
}

void check_finite_logits(const std::vector<float>& logits, size_t n_vocab, const std::string& what, bool with_loras) {
  for (size_t i = 0; i < logits.size(); i++) {
    if (!std::isfinite(logits[i])) {
      throw UserError(what + ": position " + std::to_string(i / n_vocab) + " got a non-finite logit (the model's logits overflowed to inf/NaN)" +
                      (with_loras ? "; lower the LoRA scale" : "; the model's weights may be damaged"));
    }
  }
}

}  // namespace msr
