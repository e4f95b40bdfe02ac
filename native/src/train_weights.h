// TrainWeights: the frozen weights as a training graph reads them, wherever llama.cpp put them.
//  - CPU: host tensors for the weights ggml cannot read back (repacked for llama.cpp's CPU
//    kernels, or in GPU memory when the model was loaded with gpuLayers), in their stored type, so
//    the graph multiplies with them as they are. Where the model's file mapping holds a weight's
//    bytes (WeightReader::mapped: llama.cpp's default, mmap) the tensor points there and costs no
//    memory; otherwise it is a copy read from the file. A model loaded with repack: false needs none.
//  - GPU: device copies of the weights that are not already in memory the GPU backend can use.
//  - LoRA mode: F32 transposes of the frozen projections and of the output matrix for the
//    backward's dx = Wᵀ dy (GPU, or the transposed_backward development setting), kept within the
//    transpose budget (plan_transposes).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "ggml-backend.h"
#include "ggml-cpp.h"
#include "ggml.h"
#include "train_config.h"

struct llama_model;

namespace msr {

class WeightReader;

// The matrix the logits are made with: the output weight, or a tied model's token embeddings.
const ggml_tensor* output_weight(const llama_model& m);

class TrainWeights {
 public:
  // CPU: host tensors (mapped or copied) for those of `frozen` ggml cannot read back.
  void make_host_copies(const llama_model& m, const std::vector<const ggml_tensor*>& frozen, WeightReader& reader);
  // GPU: device copies of those of `weights` the backend cannot use where they are; made now,
  // allocated by allocate().
  void make_device_copies(const llama_model& m, ggml_backend_t backend, const std::vector<const ggml_tensor*>& weights);
  // LoRA mode: the transposes the backward keeps (see train_weights.cpp), in host memory on the
  // CPU and beside the device copies on a GPU; made now, allocated by allocate().
  void plan_transposes(const llama_model& m, const TrainConfig& cfg, ggml_backend_t backend);
  // Allocates what make_device_copies and plan_transposes made (on `backend` when `gpu`, else in
  // host memory), uploads the copies and fills the transposes.
  void allocate(ggml_backend_t backend, bool gpu, WeightReader& reader);

  // The tensor holding `base`'s stored bytes that the graph reads: its copy, or `base` itself.
  ggml_tensor* stored(const ggml_tensor* base) const;
  // What a forward product multiplies with instead of `resolved` (the tensor the graph would read
  // for `base`): on the CPU, a frozen weight llama.cpp repacked for its kernels is multiplied as
  // repacked (about twice as fast for Q4_0 on x86, as llama.cpp's own graphs do); everything else
  // (the backward) reads the stored bytes.
  ggml_tensor* for_product(const ggml_tensor* base, ggml_tensor* resolved, bool gpu) const;
  // Model tensor -> its host or device copy, for the backward's switch to stored bytes.
  const std::vector<std::pair<const ggml_tensor*, ggml_tensor*>>& copies() const { return copies_; }

  // LoRA mode: whether `w` (as the graph uses it) is a frozen projection, its cached transpose (or
  // null: transposed inside the graph), and the output matrix's.
  bool is_frozen_projection(const ggml_tensor* w) const;
  ggml_tensor* transposed(const ggml_tensor* w) const;
  ggml_tensor* output_transposed() const { return output_t_; }

  double copy_bytes() const { return host_buf_ ? static_cast<double>(ggml_backend_buffer_get_size(host_buf_.get())) : 0.0; }
  double mapped_bytes() const { return mapped_bytes_; }
  double transpose_bytes() const;

 private:
  ggml_context* own_ctx(const llama_model& m);  // made on first use

  // Model tensor -> its host or device copy.
  std::vector<std::pair<const ggml_tensor*, ggml_tensor*>> copies_;
  // CPU: the host copies (mapped ones live in the model's buffer) and the buffer of those that are not.
  ggml_context_ptr host_ctx_;
  ggml_backend_buffer_ptr host_buf_;
  double mapped_bytes_ = 0;
  ggml_context_ptr own_ctx_;  // what allocate() allocates: device copies (GPU) and transposes
  ggml_backend_buffer_ptr own_buf_;
  // The frozen projections as the graph uses them, and the transposes kept of them (keyed alike).
  std::vector<const ggml_tensor*> frozen_;
  std::vector<std::pair<const ggml_tensor*, ggml_tensor*>> frozen_t_;
  ggml_tensor* output_t_ = nullptr;      // the output matrix transposed to (n_vocab, n_embd)
  const ggml_tensor* output_ = nullptr;  // ... of this weight (as the graph uses it)
};

}  // namespace msr
