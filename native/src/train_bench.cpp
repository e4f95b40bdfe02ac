// ggml dense cross-entropy baseline for bench/ce.ts (see train_bench.h). The labels are a dense
// one-hot [vocab, rows] tensor because that is what ggml_cross_entropy_loss takes; its loss is
// the mean over rows, so it is rescaled to a sum for comparison with the fused kernel.
#include "train_bench.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "common.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"

namespace msr {

Napi::Value DenseCrossEntropyGgml(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 4, "denseCrossEntropyGgml(logits, rows, vocab, targets, options?)");
  auto logits = info[0].As<Napi::Float32Array>();
  const int64_t rows = static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue());
  const int64_t vocab = static_cast<int64_t>(info[2].As<Napi::Number>().DoubleValue());
  std::vector<int32_t> targets = get_tokens(info[3], "targets");
  if (static_cast<int64_t>(logits.ElementLength()) != rows * vocab || static_cast<int64_t>(targets.size()) != rows) {
    throw Napi::RangeError::New(env, "logits must hold rows × vocab values and targets one per row");
  }
  Napi::Object o = info.Length() > 4 && info[4].IsObject() ? info[4].As<Napi::Object>() : Napi::Object::New(env);
  const int threads = static_cast<int>(get_number(o, "threads", 1));
  const bool backward = get_bool(o, "backward", true);
  const int runs = std::max(1, static_cast<int>(get_number(o, "runs", 3)));

  ggml_backend_t backend = ggml_backend_cpu_init();
  ggml_backend_cpu_set_n_threads(backend, threads);
  const size_t graph_size = 64;
  ggml_init_params ip{ggml_tensor_overhead() * graph_size + ggml_graph_overhead_custom(graph_size, true), nullptr, true};
  ggml_context* ctx = ggml_init(ip);
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
  ggml_gallocr_t galloc = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend));
  ggml_gallocr_alloc_graph(galloc, g);
  const size_t compute_bytes = ggml_gallocr_get_buffer_size(galloc, 0);
  ggml_backend_tensor_set(x, logits.Data(), 0, ggml_nbytes(x));
  std::vector<float> labels(static_cast<size_t>(rows * vocab), 0.f);
  for (int64_t r = 0; r < rows; r++) labels[r * vocab + targets[r]] = 1.f;
  ggml_backend_tensor_set(y, labels.data(), 0, ggml_nbytes(y));
  std::vector<double> times;
  float loss_value = 0;
  for (int i = 0; i < runs + 1; i++) {
    if (backward) ggml_graph_reset(g);
    auto t0 = std::chrono::steady_clock::now();
    ggml_backend_graph_compute(backend, g);
    auto t1 = std::chrono::steady_clock::now();
    if (i > 0) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    ggml_backend_tensor_get(loss, &loss_value, 0, sizeof(float));
  }
  std::sort(times.begin(), times.end());
  ggml_gallocr_free(galloc);
  ggml_free(ctx);
  ggml_backend_free(backend);
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", static_cast<double>(loss_value) * static_cast<double>(rows));
  out.Set("ms", times[times.size() / 2]);
  // labels (host copy and tensor) + the compute buffer, which also holds the x and y tensors
  out.Set("extraBytes", static_cast<double>(compute_bytes + labels.size() * sizeof(float) - ggml_nbytes(x)));
  return out;
}

}  // namespace msr
