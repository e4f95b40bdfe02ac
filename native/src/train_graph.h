// TrainGraph: the trainable copy of a LLaMA-family, Qwen2 or Qwen3 model as a ggml training graph, its parameters
// (LoRA A/B per target, or every base weight in `full` mode), their gradient accumulators, and
// one forward/backward pass over a packed micro-batch. See train_graph.cpp for the design notes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"

struct llama_model;

namespace msr {

class WeightReader;

enum class TrainMode { Lora, Full };

// Settings only the development hooks set (native/dev: dev.buildTrainSession), for tests and
// measurements; the product leaves them at their defaults.
struct TrainDevSettings {
  // CPU: the GPU's backward (dx = Wᵀ dy as a mul_mat on F32 transposes of the frozen weights,
  // cached within the transpose budget or made inside the graph) instead of out_prod_cpu, so that
  // tests on a machine without a GPU cover that path too.
  bool transposed_backward = false;
  // F32 bytes per slice of a weight transposed inside the graph (sliced_transposed_products):
  // tests use small slices to get several from tiny weights.
  double slice_mb = 32;
  // Runs each node of the graph alone (no fusion) and reports the time per kind of node in the
  // pass profile: where a pass's time goes, at the cost of the fused kernels.
  bool profile_nodes = false;
};

struct TrainConfig {
  TrainMode mode = TrainMode::Lora;
  int rank = 8;
  float lora_alpha = 32.f;
  std::vector<std::string> targets{"q", "k", "v", "o", "gate", "up", "down"};
  uint64_t seed = 0;
  int n_ctx = 0;  // longest packed sample allowed (0 = the model's training context)
  int n_threads = 1;
  // Run the graph on the first GPU backend ggml was built with (CUDA) instead of the CPU.
  bool gpu = false;
  // Full mode on a quantized model: train F32 copies of its weights (refused otherwise).
  bool dequantize = false;
  // LoRA mode: MiB of F32 transposes of the frozen weights the backward keeps (GPU; < 0: half of
  // the GPU's free memory). The weights that do not fit are transposed inside the graph, a slice
  // at a time, and freed after use: slower, but no memory held between passes.
  double transpose_budget_mb = -1;
  // Each pass reports its phase times, graph sizes and how the backward's products ran (PassProfile).
  bool profile = false;
  TrainDevSettings dev;
};

// One trainable tensor with its gradient accumulator. `base` is the model tensor it belongs to
// (LoRA: the adapted weight; full: the weight it copies). `value` and `grad` live in host memory
// and are the source of truth (optimizer, checkpoints and JS read and write them). On a GPU the
// graph computes with device twins: values are uploaded before each pass, and each backward's
// device gradients are added into `grad`.
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

// A packed micro-batch: samples laid end to end, each attending only to itself.
struct PackedBatch {
  std::vector<int32_t> tokens;     // [T]
  std::vector<int32_t> positions;  // [T], restarting at 0 for each sample
  std::vector<int32_t> sample_of;  // [T] index of the sample each token belongs to
  // Rows whose logits are needed, the token each predicts and its loss weight.
  std::vector<int32_t> rows, targets;
  std::vector<float> weights;
};

// Where one pass's time went (TrainConfig::profile).
struct PassProfile {
  int64_t tokens = 0, rows = 0;
  double forward_ms = 0, cross_entropy_ms = 0, backward_ms = 0;
  int graph_nodes = 0, graph_leafs = 0;
  double graph_metadata_bytes = 0, compute_bytes = 0;
  // The backward's out_prod nodes and how they ran: as out_prod_cpu reading the weight as stored,
  // as a mul_mat with a transposed frozen weight (cached or made in the graph), or as a mul_mat of
  // contiguous transposes of both operands.
  int out_prods = 0, as_stored = 0, transposed_weights = 0, transposed_in_graph = 0, as_mul_mats = 0;
  // TrainDevSettings::profile_nodes only: milliseconds per kind of node, largest first.
  struct NodeKind {
    std::string kind;
    double ms;
    int count;
  };
  std::vector<NodeKind> forward_nodes, backward_nodes;
};

struct PassResult {
  double weighted_loss = 0;         // sum over rows of -w * logprob
  std::vector<float> row_logprobs;  // [rows]
  PassProfile profile;              // filled when TrainConfig::profile
};

class TrainGraph {
 public:
  TrainGraph(ModelPtr model, const TrainConfig& cfg);
  ~TrainGraph();
  TrainGraph(const TrainGraph&) = delete;
  TrainGraph& operator=(const TrainGraph&) = delete;

  // Forward (+ backward when `backward`): logits for batch.rows, the fused CE, and gradients added
  // into every param's accumulator.
  PassResult run(const PackedBatch& batch, bool backward);
  // Logits of every row of the batch ([T][n_vocab], row-major); for tests and debugging.
  std::vector<float> logits(const PackedBatch& batch);

  void zero_grads();
  std::vector<TrainParam>& params() { return params_; }
  const TrainParam* find(const std::string& name) const;
  const TrainConfig& config() const { return cfg_; }
  const ModelPtr& model() const { return model_; }
  int n_ctx() const { return n_ctx_; }
  int n_vocab() const { return n_vocab_; }
  llama_model* llama() const { return model_->model; }
  bool on_gpu() const { return dev_ctx_ != nullptr; }
  // The compute device in words ("CPU" or the GPU's description).
  std::string device_name() const;
  double weight_copy_bytes() const { return host_buf_ ? static_cast<double>(ggml_backend_buffer_get_size(host_buf_)) : 0.0; }
  // Bytes of repacked weights the graph reads in place from the model's file mapping (no copy).
  double mapped_weight_bytes() const { return mapped_bytes_; }
  double transpose_bytes() const;
  // The compute buffer of the last pass: the micro-batch's activations and the backward's temporaries.
  double compute_bytes() const;

 private:
  struct Layer;
  void init();     // the constructor's work; on an exception the constructor calls release()
  void release();  // frees every buffer, context and the backend (idempotent)
  void init_params();
  void init_device(std::vector<const ggml_tensor*> weights);
  void make_host_copies(const std::vector<const ggml_tensor*>& frozen);
  void plan_transposes(ggml_context* ctx);
  void fill_transposes();
  void upload_params();
  void add_device_grads();
  void check_ops_supported(ggml_cgraph* g) const;
  ggml_cgraph* out_prods_as_mul_mats(ggml_context* ctx, ggml_cgraph* g, int n_fwd, bool rebuild_anyway, PassProfile& prof) const;
  static ggml_cgraph* rebuild(ggml_context* ctx, ggml_cgraph* g, int n_fwd);
  ggml_tensor* inline_transpose(ggml_context* ctx, ggml_tensor* w) const;
  ggml_tensor* output_backward(ggml_context* ctx, ggml_tensor* w_out, ggml_tensor* G) const;
  std::vector<ggml_tensor*> sliced_transposed_products(ggml_context* ctx, ggml_tensor* w, ggml_tensor* dy) const;
  // Logits -> loss, row log-probs and (when G is given) G = dLoss/dlogits, on the compute device.
  double fused_ce(const ggml_tensor* logits, const PackedBatch& b, ggml_tensor* G, std::vector<float>& row_logprobs) const;
  ggml_tensor* weight(const ggml_tensor* base) const;  // the trainable copy in full mode, else the base (or its device copy)
  ggml_tensor* product_weight(const ggml_tensor* base) const;  // what a forward mul_mat uses: weight(), or a CPU-repacked base
  ggml_tensor* project(ggml_context* ctx, const ggml_tensor* w, ggml_tensor* x) const;  // W x (+ LoRA)
  ggml_tensor* project(ggml_context* ctx, const ggml_tensor* w, const ggml_tensor* bias, ggml_tensor* x) const;  // (+ bias)
  // Returns the logits; *h_out (when given) receives the normalised final hidden rows they are made from.
  ggml_tensor* build_forward(ggml_context* ctx, const PackedBatch& b, bool all_rows, ggml_tensor** inputs, ggml_tensor** h_out = nullptr);
  const ggml_tensor* output_weight() const;

  ModelPtr model_;
  TrainConfig cfg_;
  int n_ctx_ = 0, n_vocab_ = 0;
  size_t graph_nodes_ = 16384;  // capacity of a pass's graph (init)
  ggml_backend_t backend_ = nullptr;  // where the graph runs: the CPU, or the GPU when cfg.gpu
  ggml_context* param_ctx_ = nullptr;
  ggml_backend_buffer_t param_buf_ = nullptr;  // host: params, grads (and the CPU's transposes)
  // CPU: copies of frozen weights ggml cannot read back (make_host_copies), in weight_copies_.
  ggml_context* host_ctx_ = nullptr;
  ggml_backend_buffer_t host_buf_ = nullptr;
  std::unique_ptr<WeightReader> reader_;  // during construction only
  double mapped_bytes_ = 0;
  // GPU only: device twins of the params, copies of frozen weights that are not already in device
  // memory, and the transposes.
  ggml_context* dev_ctx_ = nullptr;
  ggml_backend_buffer_t dev_buf_ = nullptr;
  std::vector<std::pair<const ggml_tensor*, ggml_tensor*>> weight_copies_;  // model tensor -> device (or host) copy
  ggml_gallocr_t galloc_ = nullptr;
  std::vector<TrainParam> params_;
  // base weight -> (lora A index, lora B index) or full copy index
  std::vector<std::pair<const ggml_tensor*, int>> index_;
  float lora_scale_ = 1.f;
  // LoRA mode: the frozen output matrix transposed to (n_vocab, n_embd), so dLoss/dh = W^T G is one
  // fast mul_mat instead of ggml's out_prod over a transposed G.
  ggml_tensor* output_t_ = nullptr;
  // LoRA mode on a GPU (or on the CPU with TrainDevSettings::transposed_backward), when they fit
  // the budget (plan_transposes: TrainConfig::transpose_budget_mb): transposed copies of
  // the frozen projection weights, so the backward's dx = Wᵀ dy runs as a mul_mat instead of
  // ggml's out_prod over a transposed dy (several times slower on CPU; CUDA's out_prod takes F32
  // weights only). Keyed by the weight tensor the graph uses (the device copy on a GPU).
  std::vector<std::pair<const ggml_tensor*, ggml_tensor*>> frozen_t_;
  std::vector<const ggml_tensor*> frozen_;  // LoRA mode: every frozen projection as the graph uses it
  bool own_out_prod_ = true;  // CPU: out_prod_cpu for the backward's out_prods (cpu_out_prod)
  double slice_bytes_ = 32.0 * 1048576.0;  // F32 bytes per slice of an in-graph transpose (sliced_transposed_products)
  bool use_transposed_weights(ggml_context* ctx, ggml_cgraph* g, int first_node, PassProfile& prof) const;
  bool cpu_out_prod() const;
  // CPU LoRA with a rank that is not a multiple of 16: per LoRA param, a zero tensor of its shape
  // with the rank padded (A: (in, R), B: (R, out)) that project() places A and B into (read only,
  // so params of one padded shape share one).
  std::vector<ggml_tensor*> rank_pad_;
};

}  // namespace msr
