// See train_weights.h.
#include "train_weights.h"

#include <algorithm>
#include <cstring>

#include "common.h"
#include "llama-model.h"
#include "train_weight_reader.h"

namespace msr {

const ggml_tensor* output_weight(const llama_model& m) { return m.output ? m.output : m.tok_embd; }

ggml_context* TrainWeights::own_ctx(const llama_model& m) {
  if (!own_ctx_) {
    // A device copy of every tensor of a layer at most (about 20) and a transpose of each of its
    // seven projections, plus the model's other tensors.
    ggml_init_params ip{ggml_tensor_overhead() * (40 * m.layers.size() + 64), nullptr, true};
    own_ctx_.reset(ggml_init(ip));
  }
  return own_ctx_.get();
}

void TrainWeights::make_host_copies(const llama_model& m, const std::vector<const ggml_tensor*>& frozen, WeightReader& reader) {
  std::vector<const ggml_tensor*> refs{m.tok_embd, m.output_norm};
  for (const auto& l : m.layers) refs.push_back(l.attn_norm), refs.push_back(l.ffn_norm);
  std::vector<std::pair<const ggml_tensor*, ggml_tensor*>> copies;
  bool unmapped = false;
  for (const ggml_tensor* w : frozen) {
    bool seen = false;
    for (const auto& [b, c] : copies) seen = seen || b == w;
    if (seen || ggml_backend_buffer_is_host(w->buffer)) continue;
    if (!host_ctx_) {
      ggml_init_params ip{ggml_tensor_overhead() * (frozen.size() + 1), nullptr, true};
      host_ctx_.reset(ggml_init(ip));
    }
    ggml_tensor* c = ggml_dup_tensor(host_ctx_.get(), w);
    ggml_set_name(c, w->name);
    ggml_backend_buffer_t buf = nullptr;
    const void* at = nullptr;
    try {
      at = reader.mapped(w, refs, &buf);
    } catch (const UserError&) {
      at = nullptr;  // the file cannot be read: stored() says so, or reads the weight back from its device
    }
    if (at) {
      if (ggml_backend_tensor_alloc(buf, c, const_cast<void*>(at)) != GGML_STATUS_SUCCESS)
        throw UserError("training: could not use the model's mapped weights");
      mapped_bytes_ += static_cast<double>(ggml_nbytes(w));
    } else {
      unmapped = true;
    }
    copies.push_back({w, c});
  }
  if (copies.empty()) return;
  if (unmapped) {
    host_buf_.reset(ggml_backend_alloc_ctx_tensors_from_buft(host_ctx_.get(), ggml_backend_cpu_buffer_type()));
    if (!host_buf_) throw UserError("training: out of memory for host copies of the model's repacked weights; load the model with repack: false");
  }
  for (auto& [w, c] : copies) {
    if (host_buf_ && c->buffer == host_buf_.get()) {
      const std::vector<uint8_t> raw = reader.stored(w);
      std::memcpy(c->data, raw.data(), raw.size());
    }
    copies_.push_back({w, c});
  }
}

void TrainWeights::make_device_copies(const llama_model& m, ggml_backend_t backend, const std::vector<const ggml_tensor*>& weights) {
  for (const ggml_tensor* w : weights) {
    if (ggml_backend_supports_buft(backend, ggml_backend_buffer_get_type(w->buffer))) continue;
    bool seen = false;
    for (const auto& [b, c] : copies_) seen = seen || b == w;
    if (seen) continue;
    ggml_tensor* c = ggml_dup_tensor(own_ctx(m), w);
    ggml_set_name(c, w->name);
    copies_.push_back({w, c});
  }
}

// LoRA mode: which transposes the backward keeps cached (keyed by the weight tensor the graph
// uses). On the CPU none: out_prod_cpu reads the weights as stored, faster than a mul_mat on
// cached F32 transposes and without their 4 bytes per parameter. On a GPU the backward's
// dx = Wᵀ dy needs each frozen projection transposed; cached F32 copies are fastest but cost 4
// bytes per parameter whatever the weights' type, so they are kept only within a budget: the
// transposeBudgetMb option, else half the GPU's free memory (with the development setting
// transposed_backward on the CPU: a quarter of the model's size but at least 256 MB and at most
// 2048 MB). The output matrix comes first (every loss row goes through it), then all projections
// or none. Whatever is not cached is transposed inside the graph, one weight at a time, and freed
// after use (train_backward.cpp). The copies are F32: a product with F16 weights rounds its other
// operand to F16 too, and backpropagated gradients (often below F16's 6e-5 normal range) would
// lose their low bits or flush to zero (measured: 4% gradient error on an F16 model).
void TrainWeights::plan_transposes(const llama_model& m, const TrainConfig& cfg, ggml_backend_t backend) {
  if (cfg.mode != TrainMode::Lora) return;
  const bool budget_given = cfg.transpose_budget_mb >= 0;
  const double mib = 1024.0 * 1024.0;
  double cap = budget_given ? cfg.transpose_budget_mb * mib : std::clamp(0.25 * static_cast<double>(llama_model_size(&m)), 256 * mib, 2048 * mib);
  if (!budget_given && cfg.gpu) {
    size_t free = 0, total = 0;
    ggml_backend_dev_memory(ggml_backend_get_device(backend), &free, &total);
    cap = 0.5 * static_cast<double>(free);
  }
  const ggml_type type = GGML_TYPE_F32;
  const ggml_tensor* w_out = output_weight(m);
  output_ = stored(w_out);
  double bytes = static_cast<double>(ggml_type_size(type)) * static_cast<double>(ggml_nelements(w_out));
  // The CPU reads the weights as stored (out_prod_cpu): nothing to cache.
  const bool as_stored = !cfg.gpu && !cfg.dev.transposed_backward;
  if (!as_stored && bytes <= cap) output_t_ = ggml_new_tensor_2d(own_ctx(m), type, w_out->ne[1], w_out->ne[0]);
  std::vector<const ggml_tensor*> frozen;
  for (const auto& l : m.layers) {
    for (const ggml_tensor* w : {l.wq, l.wk, l.wv, l.wo, l.ffn_gate, l.ffn_up, l.ffn_down}) {
      frozen.push_back(w);
      frozen_.push_back(stored(w));
      bytes += static_cast<double>(ggml_type_size(type)) * static_cast<double>(ggml_nelements(w));
    }
  }
  if (!output_t_ || bytes > cap) return;
  for (const ggml_tensor* w : frozen) frozen_t_.push_back({stored(w), ggml_new_tensor_2d(own_ctx(m), type, w->ne[1], w->ne[0])});
}

void TrainWeights::allocate(ggml_backend_t backend, bool gpu, WeightReader& reader) {
  if (!own_ctx_ || !ggml_get_first_tensor(own_ctx_.get())) return;
  own_buf_.reset(gpu ? ggml_backend_alloc_ctx_tensors(own_ctx_.get(), backend)
                     : ggml_backend_alloc_ctx_tensors_from_buft(own_ctx_.get(), ggml_backend_cpu_buffer_type()));
  if (!own_buf_) {
    throw UserError(gpu ? "training: out of GPU memory for the trainable parameters and weight copies; use a smaller model or LoRA mode"
                        : "training: out of memory allocating the trainable parameters");
  }
  for (auto& [w, c] : copies_) {
    if (c->buffer != own_buf_.get()) continue;  // a host copy, filled by make_host_copies
    const std::vector<uint8_t> raw = reader.stored(w);
    ggml_backend_tensor_set(c, raw.data(), 0, raw.size());
  }
  if (output_t_) reader.transpose_into(output_, output_t_);
  for (auto& [w, t] : frozen_t_) reader.transpose_into(w, t);
}

ggml_tensor* TrainWeights::stored(const ggml_tensor* base) const {
  for (const auto& [b, c] : copies_) {
    if (b == base) return c;
  }
  return const_cast<ggml_tensor*>(base);
}

ggml_tensor* TrainWeights::for_product(const ggml_tensor* base, ggml_tensor* resolved, bool gpu) const {
  ggml_tensor* w = resolved;
  if (gpu || w == base || !base->buffer || ggml_n_dims(base) != 2 || ggml_backend_buffer_is_host(base->buffer)) return w;
  bool twin = false;
  for (const auto& [b, c] : copies_) twin = twin || (b == base && c == w);
  ggml_backend_dev_t dev = ggml_backend_buft_get_device(ggml_backend_buffer_get_type(base->buffer));
  return twin && dev && ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU ? const_cast<ggml_tensor*>(base) : w;
}

bool TrainWeights::is_frozen_projection(const ggml_tensor* w) const {
  for (const ggml_tensor* f : frozen_) {
    if (f == w) return true;
  }
  return false;
}

ggml_tensor* TrainWeights::transposed(const ggml_tensor* w) const {
  ggml_tensor* t = nullptr;
  for (const auto& [f, ft] : frozen_t_) {
    if (f == w) t = ft;
  }
  return t;
}

double TrainWeights::transpose_bytes() const {
  double b = output_t_ ? static_cast<double>(ggml_nbytes(output_t_)) : 0.0;
  for (const auto& [w, t] : frozen_t_) b += static_cast<double>(ggml_nbytes(t));
  return b;
}

}  // namespace msr
