// TrainParams: the trainable tensors of a training graph with their gradient accumulators. LoRA
// mode: A (in, r) and B (r, out) for every targeted projection, A uniform in ±1/sqrt(in) from a
// fixed seed (PEFT's Kaiming-uniform bound) and B zero, so the adapter starts as a no-op. Full
// mode: an F32 copy of every weight of the forward. Host memory holds the source of truth (the
// optimizer, checkpoints and JS read and write it); on a GPU the graph computes with device twins,
// uploaded before each pass, whose gradients are added into the host accumulators after it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml-cpp.h"
#include "ggml.h"
#include "train_config.h"

struct llama_model;

namespace msr {

class WeightReader;

// One trainable tensor with its gradient accumulator. `base` is the model tensor it belongs to
// (LoRA: the adapted weight; full: the weight it copies).
struct TrainParam {
  std::string name;  // GGUF name: "blk.0.attn_q.weight.lora_a" or, in full mode, the weight's name
  ggml_tensor* value = nullptr;
  ggml_tensor* grad = nullptr;
  ggml_tensor* dev_value = nullptr;
  ggml_tensor* dev_grad = nullptr;
  const ggml_tensor* base = nullptr;
  ggml_tensor* graph_value() const { return dev_value ? dev_value : value; }
  ggml_tensor* graph_grad() const { return dev_grad ? dev_grad : grad; }
  int64_t numel() const { return ggml_nelements(value); }
  float* data() const { return static_cast<float*>(value->data); }
  float* grad_data() const { return static_cast<float*>(grad->data); }
};

// A projection's LoRA pair as the graph uses it. CPU with a rank that is not a multiple of 16:
// pad_a / pad_b are zero tensors of A's and B's shapes with the rank padded, which the forward
// places A and B into (the padded rows and columns get exactly zero gradient, and the products
// over the rank tile in ggml's GEMM instead of running as short dot products); null otherwise.
struct LoraPair {
  ggml_tensor* a = nullptr;  // (in, r)
  ggml_tensor* b = nullptr;  // (r, out)
  ggml_tensor* pad_a = nullptr;
  ggml_tensor* pad_b = nullptr;
};

class TrainParams {
 public:
  // Every weight of the forward, in a fixed order (names are unique: a tied output is skipped).
  static std::vector<const ggml_tensor*> forward_weights(const llama_model& m);

  // Creates the parameters `cfg` asks for on `weights` (forward_weights' order) in host memory and
  // initialises them; full mode reads each weight's values through `reader`.
  void init(const llama_model& m, const TrainConfig& cfg, const std::vector<const ggml_tensor*>& weights, WeightReader& reader);
  // GPU: device twins of every value and gradient, made now and allocated by allocate_device_twins
  // (after the frozen weights' device copies are planned, which size themselves by the free memory).
  void make_device_twins();
  void allocate_device_twins(ggml_backend_t backend);

  std::vector<TrainParam>& all() { return params_; }
  const std::vector<TrainParam>& all() const { return params_; }
  const TrainParam* find(const std::string& name) const;
  // Full mode: whether `w` is the base of a parameter (pointer identity).
  bool is_base(const ggml_tensor* w) const;
  // Full mode: the trainable copy the graph uses for `base`, matched by tensor or by name (a tied
  // output matrix reads the token embeddings' copy); null in LoRA mode or for a frozen tensor.
  ggml_tensor* full_value(const ggml_tensor* base) const;
  // LoRA mode: the pair adapting `base`, if it is a target.
  bool lora(const ggml_tensor* base, LoraPair* out) const;
  float lora_scale() const { return lora_scale_; }

  void zero_grads();
  void upload();             // host values -> device twins, before a pass
  void zero_device_grads();  // before a backward: the device accumulators restart at zero
  void add_device_grads();   // after a backward: device gradients added into the host accumulators

 private:
  TrainMode mode_ = TrainMode::Lora;
  std::vector<TrainParam> params_;
  // base weight -> index of its LoRA A (B follows it) or of its full copy
  std::vector<std::pair<const ggml_tensor*, int>> index_;
  std::vector<ggml_tensor*> rank_pad_;  // one per param when padding (see LoraPair), else empty
  float lora_scale_ = 1.f;
  ggml_context_ptr ctx_;  // values, gradients and rank pads (host)
  ggml_backend_buffer_ptr buf_;
  ggml_context_ptr dev_ctx_;  // GPU: the device twins
  ggml_backend_buffer_ptr dev_buf_;
};

}  // namespace msr
