// The cross-entropy hooks (see dev.h): the fused kernel on host logits (the cross-entropy and the
// policy-gradient forms), and ggml's dense
// ggml_cross_entropy_loss as bench/ce.ts's baseline. ggml's labels are a dense one-hot
// [vocab, rows] tensor because that is what ggml_cross_entropy_loss takes; its loss is the mean
// over rows, so it is rescaled to a sum for comparison with the fused kernel.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "common.h"
#include "dev.h"
#include "fused_ce.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpp.h"
#include "ggml-cpu.h"
#include "ggml.h"

namespace msr::dev {

namespace {

// What both hooks take first: logits [rows × vocab], rows, vocab and one target id per row. The
// targets (a JS array may run the caller's code through its elements' getters) and the options
// are read before the typed arrays' lengths are checked and their memory is used: code that ran in
// between could have detached a buffer (structuredClone with transfer).
struct CeInput {
  Napi::Float32Array logits;
  int64_t rows = 0, vocab = 0;
  std::vector<int32_t> targets;
};

CeInput get_ce_input(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(env, "logits must be a Float32Array");
  }
  CeInput in;
  in.logits = info[0].As<Napi::Float32Array>();
  if (!info[1].IsNumber() || !info[2].IsNumber()) throw Napi::TypeError::New(env, "rows and vocab must be numbers");
  const double rows = info[1].As<Napi::Number>().DoubleValue(), vocab = info[2].As<Napi::Number>().DoubleValue();
  // Integers small enough that rows × vocab is exact (the logits' length bounds them anyway).
  if (!(rows >= 1 && vocab >= 1 && rows == std::floor(rows) && vocab == std::floor(vocab) && rows * vocab <= 9.0e15)) {
    throw Napi::RangeError::New(env, "logits must hold rows × vocab values (rows, vocab positive integers)");
  }
  in.rows = static_cast<int64_t>(rows);
  in.vocab = static_cast<int64_t>(vocab);
  in.targets = get_tokens(info[3], "targets");
  if (static_cast<int64_t>(in.targets.size()) != in.rows) throw Napi::RangeError::New(env, "targets must have one entry per row");
  for (int32_t t : in.targets) {
    if (t < 0 || t >= in.vocab) throw Napi::RangeError::New(env, "target id " + std::to_string(t) + " is outside [0, vocab)");
  }
  return in;
}

// A Float32Array's memory once no more of the caller's code will run: it must hold `n` values.
// The handle is read again (node-addon-api keeps the length and pointer it first saw, which a
// buffer transferred since then no longer has).
float* float_data(const Napi::Float32Array& a, int64_t n, const char* what) {
  Napi::Float32Array now(a.Env(), a);
  if (static_cast<int64_t>(now.ElementLength()) != n || (n > 0 && !now.Data())) {
    throw Napi::RangeError::New(a.Env(), std::string(what) + " must hold " + std::to_string(n) + " values, holds " +
                                             std::to_string(now.ElementLength()) + " (a wrong size, or its buffer was transferred)");
  }
  return now.Data();
}

Napi::Object options_at(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsObject() ? info[i].As<Napi::Object>() : Napi::Object::New(info.Env());
}

// A Float32Array from `o[key]` (empty when absent and optional); its memory is taken with
// float_data once no more of the caller's code will run.
Napi::Float32Array row_array(const Napi::Object& o, const char* key, bool optional) {
  Napi::Value v = o.Get(key);
  if (optional && (v.IsUndefined() || v.IsNull())) return Napi::Float32Array();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a Float32Array with one entry per row");
  }
  return v.As<Napi::Float32Array>();
}

}  // namespace

Napi::Value FusedCrossEntropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 5, "fusedCrossEntropy(logits: Float32Array, rows, vocab, targets: Int32Array, weights: Float32Array | null, options?)");
  const CeInput in = get_ce_input(info);
  const int64_t rows = in.rows, vocab = in.vocab;
  Napi::Float32Array weights_a;
  if (!info[4].IsNull() && !info[4].IsUndefined()) {
    if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw Napi::TypeError::New(env, "weights must be a Float32Array or null");
    }
    weights_a = info[4].As<Napi::Float32Array>();
  }
  Napi::Object opts = options_at(info, 5);
  const bool reference = get_bool(opts, "reference", false);
  const bool want_grad = get_bool(opts, "grad", true);
  // Beyond kMaxThreads the kernel would only add start-up cost; more is clamped, not refused.
  const double threads_opt = get_number(opts, "threads", 1);
  const int threads = threads_opt >= 1 ? static_cast<int>(std::min<double>(threads_opt, kMaxThreads)) : 1;
  auto logprobs = Napi::Float32Array::New(env, rows);
  // gradOut: a caller-owned buffer to write into (benchmarks reuse one instead of faulting in a fresh one per call).
  Napi::Value out_v = opts.Get("gradOut");
  Napi::Float32Array grad;
  if (want_grad && out_v.IsTypedArray() && out_v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    grad = out_v.As<Napi::Float32Array>();
  } else if (want_grad) {
    grad = Napi::Float32Array::New(env, rows * vocab);
  }
  // No more of the caller's code runs from here: the buffers' memory can be used.
  const float* weights = weights_a.IsEmpty() ? nullptr : float_data(weights_a, rows, "weights");
  float* g = want_grad ? float_data(grad, rows * vocab, "gradOut") : nullptr;
  const float* logits = float_data(in.logits, rows * vocab, "logits (rows × vocab)");
  const double loss = reference ? fused_ce_reference(logits, rows, vocab, vocab, in.targets.data(), weights, logprobs.Data(), g, vocab)
                                : fused_ce_cpu(logits, rows, vocab, vocab, in.targets.data(), weights, logprobs.Data(), g, vocab, threads);
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", loss);
  out.Set("logprobs", logprobs);
  if (want_grad) out.Set("grad", grad);
  return out;
}

Napi::Value FusedPolicyLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 5, "fusedPolicyLoss(logits: Float32Array, rows, vocab, targets: Int32Array, rowsIn: {advantages, coefs, refLogprobs?, oldLogprobs?}, options?)");
  const CeInput in = get_ce_input(info);
  const int64_t rows = in.rows, vocab = in.vocab;
  if (!info[4].IsObject()) throw Napi::TypeError::New(env, "rowsIn must be {advantages, coefs, refLogprobs?, oldLogprobs?}");
  Napi::Object r = info[4].As<Napi::Object>();
  const Napi::Float32Array advantages = row_array(r, "advantages", false), coefs = row_array(r, "coefs", false),
                           ref = row_array(r, "refLogprobs", true), old = row_array(r, "oldLogprobs", true);
  Napi::Object opts = options_at(info, 5);
  PolicyParams p;
  p.kl_coef = static_cast<float>(get_number(opts, "klCoef", 0));
  p.eps_low = static_cast<float>(get_number(opts, "epsilonLow", 0.2));
  p.eps_high = static_cast<float>(get_number(opts, "epsilonHigh", p.eps_low));
  p.temperature = static_cast<float>(get_number(opts, "temperature", 1));
  if (!(std::isfinite(p.temperature) && p.temperature > 0)) throw Napi::RangeError::New(env, "temperature must be a finite number > 0");
  const bool reference = get_bool(opts, "reference", false);
  const bool want_grad = get_bool(opts, "grad", true);
  const int threads = static_cast<int>(get_int(opts, "threads", 1, 1, kMaxThreads));
  auto logprobs = Napi::Float32Array::New(env, rows);
  auto entropy = Napi::Float32Array::New(env, rows);
  Napi::Float32Array grad;
  if (want_grad) grad = Napi::Float32Array::New(env, rows * vocab);
  float* g = want_grad ? grad.Data() : nullptr;
  PolicyRows pr;
  pr.advantages = float_data(advantages, rows, "advantages (one per row)");
  pr.coefs = float_data(coefs, rows, "coefs (one per row)");
  pr.ref_logprobs = ref.IsEmpty() ? nullptr : float_data(ref, rows, "refLogprobs (one per row)");
  pr.old_logprobs = old.IsEmpty() ? nullptr : float_data(old, rows, "oldLogprobs (one per row)");
  const float* logits = float_data(in.logits, rows * vocab, "logits (rows × vocab)");
  const double loss = reference ? fused_policy_reference(logits, rows, vocab, vocab, in.targets.data(), pr, p, logprobs.Data(), entropy.Data(), g, vocab)
                                : fused_policy_cpu(logits, rows, vocab, vocab, in.targets.data(), pr, p, logprobs.Data(), entropy.Data(), g, vocab, threads);
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", loss);
  out.Set("logprobs", logprobs);
  out.Set("entropy", entropy);
  if (want_grad) out.Set("grad", grad);
  return out;
}

Napi::Value DenseCrossEntropyGgml(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 4, "denseCrossEntropyGgml(logits: Float32Array, rows, vocab, targets: Int32Array, options?)");
  const CeInput in = get_ce_input(info);
  const int64_t rows = in.rows, vocab = in.vocab;
  Napi::Object o = options_at(info, 4);
  const int threads = static_cast<int>(get_int(o, "threads", 1, 1, kMaxThreads));
  const bool backward = get_bool(o, "backward", true);
  const int runs = static_cast<int>(get_int(o, "runs", 3, 1, 1000));

  ggml_backend_ptr backend(ggml_backend_cpu_init());
  if (!backend) throw UserError("denseCrossEntropyGgml: could not start ggml's CPU backend");
  ggml_backend_cpu_set_n_threads(backend.get(), threads);
  const size_t graph_size = 64;
  ggml_init_params ip{ggml_tensor_overhead() * graph_size + ggml_graph_overhead_custom(graph_size, true), nullptr, true};
  ggml_context_ptr ctx_owner(ggml_init(ip));
  ggml_context* ctx = ctx_owner.get();
  ggml_tensor* x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, vocab, rows);
  ggml_tensor* y = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, vocab, rows);
  ggml_set_input(x);
  ggml_set_input(y);
  ggml_set_param(x);  // so the backward computes d loss / d logits, like the fused kernel's gradient
  ggml_tensor* loss = ggml_cross_entropy_loss(ctx, x, y);
  ggml_set_loss(loss);
  ggml_set_output(loss);
  ggml_cgraph* g = ggml_new_graph_custom(ctx, graph_size, true);
  ggml_build_forward_expand(g, loss);
  if (backward) ggml_build_backward_expand(ctx, g, nullptr);
  ggml_gallocr_ptr galloc(ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend.get())));
  if (!ggml_gallocr_alloc_graph(galloc.get(), g)) throw UserError("denseCrossEntropyGgml: out of memory for ggml's compute buffer; use fewer rows");
  const size_t compute_bytes = ggml_gallocr_get_buffer_size(galloc.get(), 0);
  ggml_backend_tensor_set(x, float_data(in.logits, rows * vocab, "logits (rows × vocab)"), 0, ggml_nbytes(x));
  std::vector<float> labels(static_cast<size_t>(rows * vocab), 0.f);
  for (int64_t r = 0; r < rows; r++) labels[r * vocab + in.targets[r]] = 1.f;
  ggml_backend_tensor_set(y, labels.data(), 0, ggml_nbytes(y));
  std::vector<double> times;
  float loss_value = 0;
  for (int i = 0; i < runs + 1; i++) {
    if (backward) ggml_graph_reset(g);
    auto t0 = std::chrono::steady_clock::now();
    if (ggml_backend_graph_compute(backend.get(), g) != GGML_STATUS_SUCCESS) throw UserError("denseCrossEntropyGgml: ggml failed to compute");
    auto t1 = std::chrono::steady_clock::now();
    if (i > 0) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    ggml_backend_tensor_get(loss, &loss_value, 0, sizeof(float));
  }
  std::sort(times.begin(), times.end());
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", static_cast<double>(loss_value) * static_cast<double>(rows));
  out.Set("ms", times[times.size() / 2]);
  // labels (host copy and tensor) + the compute buffer, which also holds the x and y tensors
  out.Set("extraBytes", static_cast<double>(compute_bytes + labels.size() * sizeof(float) - ggml_nbytes(x)));
  return out;
}

}  // namespace msr::dev
