// TrainGraph: one forward/backward pass over a packed micro-batch of a LLaMA-family, Qwen2 or
// Qwen3 model, as a ggml graph built from the llama_model's tensors (see train_graph.cpp for the
// design). It owns the compute backend and the pass's allocator, and composes the trainable
// parameters (TrainParams), the frozen weights as the graph reads them (TrainWeights) and the
// backward's rewrites (train_backward.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "fused_ce.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpp.h"
#include "ggml.h"
#include "train_backward.h"
#include "train_config.h"
#include "train_params.h"
#include "train_profile.h"
#include "train_weights.h"

struct llama_model;

namespace msr {

// A packed micro-batch: samples laid end to end, each attending only to itself.
struct PackedBatch {
  std::vector<int32_t> tokens;     // [T]
  std::vector<int32_t> positions;  // [T], restarting at 0 for each sample
  std::vector<int32_t> sample_of;  // [T] index of the sample each token belongs to
  // Rows whose logits are needed, the token each predicts and its loss weight.
  std::vector<int32_t> rows, targets;
  std::vector<float> weights;
  // Policy-gradient rows (train_policy.h): when `policy` is set, `weights` are the rows'
  // normalisation coefficients and each row's loss is the policy term of its log-prob, with these
  // per-row inputs (ref and old empty when absent).
  const PolicyParams* policy = nullptr;
  std::vector<float> advantages, ref_logprobs, old_logprobs;
};

struct PassResult {
  double weighted_loss = 0;         // sum over rows of -w * logprob
  std::vector<float> row_logprobs;  // [rows]
  std::vector<float> row_entropy;   // [rows], policy passes only: the entropy of each row's softmax
  PassProfile profile;              // filled when TrainConfig::profile
};

class TrainGraph {
 public:
  TrainGraph(ModelPtr model, const TrainConfig& cfg);
  TrainGraph(const TrainGraph&) = delete;
  TrainGraph& operator=(const TrainGraph&) = delete;

  // Forward (+ backward when `backward`): logits for batch.rows, the fused CE, and gradients added
  // into every param's accumulator.
  PassResult run(const PackedBatch& batch, bool backward);
  // Logits of every row of the batch ([T][n_vocab], row-major): the forward alone, for the tests'
  // comparison with llama_decode.
  std::vector<float> logits(const PackedBatch& batch);

  void zero_grads() { params_.zero_grads(); }
  std::vector<TrainParam>& params() { return params_.all(); }
  const TrainParam* find(const std::string& name) const { return params_.find(name); }
  const TrainConfig& config() const { return cfg_; }
  const ModelPtr& model() const { return model_; }
  int n_ctx() const { return n_ctx_; }
  int n_vocab() const { return n_vocab_; }
  llama_model* llama() const { return model_->model; }
  bool on_gpu() const { return cfg_.gpu; }
  // The compute device in words ("CPU" or the GPU's description).
  std::string device_name() const;
  double weight_copy_bytes() const { return weights_.copy_bytes(); }
  // Bytes of repacked weights the graph reads in place from the model's file mapping (no copy).
  double mapped_weight_bytes() const { return weights_.mapped_bytes(); }
  double transpose_bytes() const { return weights_.transpose_bytes(); }
  // The compute buffer of the last pass: the micro-batch's activations and the backward's temporaries.
  double compute_bytes() const;

 private:
  void init();
  void check_ops_supported(ggml_cgraph* g) const;
  // Logits -> loss, row log-probs and (when G is given) G = dLoss/dlogits, on the compute device.
  double fused_ce(const ggml_tensor* logits, const PackedBatch& b, ggml_tensor* G, std::vector<float>& row_logprobs) const;
  // The same for a policy-gradient batch (batch.policy set), with each row's entropy (train_policy.cpp).
  double fused_policy(const ggml_tensor* logits, const PackedBatch& b, ggml_tensor* G, PassResult& res) const;
  ggml_tensor* weight(const ggml_tensor* base) const;          // the trainable copy in full mode, else the stored weight
  ggml_tensor* product_weight(const ggml_tensor* base) const;  // what a forward mul_mat uses: weight(), or a CPU-repacked base
  ggml_tensor* project(ggml_context* ctx, const ggml_tensor* w, ggml_tensor* x) const;                           // W x (+ LoRA)
  ggml_tensor* project(ggml_context* ctx, const ggml_tensor* w, const ggml_tensor* bias, ggml_tensor* x) const;  // (+ bias)
  // Returns the logits; *h_out (when given) receives the normalised final hidden rows they are made from.
  ggml_tensor* build_forward(ggml_context* ctx, const PackedBatch& b, bool all_rows, ggml_tensor** inputs, ggml_tensor** h_out = nullptr);

  ModelPtr model_;
  TrainConfig cfg_;
  int n_ctx_ = 0, n_vocab_ = 0;
  size_t graph_nodes_ = 16384;  // capacity of a pass's graph (init)
  BackwardSettings backward_;
  // Declared first, destroyed last: the buffers below are freed before their backend.
  ggml_backend_ptr backend_;  // where the graph runs: the CPU, or the GPU when cfg.gpu
  TrainParams params_;
  TrainWeights weights_;
  ggml_gallocr_ptr galloc_;  // a pass's compute buffer, kept between passes
};

}  // namespace msr
