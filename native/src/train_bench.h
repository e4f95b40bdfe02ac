// Benchmark baselines for the fused CE: ggml's dense ggml_cross_entropy_loss (which needs a
// [rows × vocab] one-hot label matrix) on the same logits, timed inside the addon.
#pragma once
#include <napi.h>

namespace msr {

// denseCrossEntropyGgml(logits: Float32Array, rows, vocab, targets: Int32Array, {threads?, backward?, runs?})
//   -> {loss, ms (median), extraBytes (labels + ggml's compute buffer)}
Napi::Value DenseCrossEntropyGgml(const Napi::CallbackInfo& info);

}  // namespace msr
