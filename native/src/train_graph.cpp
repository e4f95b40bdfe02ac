// The training graph for LLaMA-family, Qwen2 and Qwen3 models, built by hand in ggml from the
// llama_model's tensors (what is supported is decided in train_arch.cpp).
//
// Why not llama_opt_*: it trains only model tensors (no adapters), its graph writes K/V through the
// KV cache (ggml_set_rows has no backward, so attn_k/attn_v would get no gradient), and
// ggml_cross_entropy_loss assumes label rows summing to 1 (per-token weights give a wrong gradient).
// So this file rebuilds llama.cpp's LLaMA forward (src/models/llama.cpp) on the current
// micro-batch only, with K and V taken from the batch itself:
//
//   x = tok_embd[tokens]                                       (n_embd, T)
//   per layer: h = rms_norm(x)·attn_norm
//              q,k,v = W{q,k,v} h (+ s·B(A h)) (+ b{q,k,v}: Qwen2)
//              q,k = rms_norm per head · {q,k}_norm          (Qwen3)
//              RoPE(q,k)  (same mode/theta/scaling and rope_freqs as llama.cpp)
//              attn = softmax(k^T q / sqrt(d) + M) v      M = causal AND same-sample (packing)
//              x += Wo attn (+LoRA);  h = rms_norm(x)·ffn_norm
//              x += Wdown (silu(Wgate h) * Wup h) (+LoRA on all three)
//   logits = Woutput (rms_norm(x)·output_norm)[rows]       (n_vocab, R)  only rows with a loss
//
// with s = lora_alpha / rank as in llama.cpp's build_lora_mm. Attention is the plain
// softmax(KQ + mask) form (flash attention has no backward).
//
// The loss never enters the graph. The forward part runs, the fused CE kernel turns the logits
// into the loss and writes G = dLoss/dlogits = w·(softmax − onehot) into a graph input, and
// dLoss/dh = Woutᵀ G (one mul_mat; in full mode also dWout = h Gᵀ) is installed as the gradient
// of the final hidden rows h (ggml_build_backward_expand's grad_accs slot for that node), so
// ggml's autodiff continues from the exact gradient: no [rows × vocab] label matrix and no
// logits-sized op beyond the two products every backward needs. One graph is allocated for
// forward+backward and computed in two views (nodes before and after the logits), so nothing of
// the forward is recomputed. Parameter gradients go into persistent accumulators (grad_accs
// again), so micro-batches of one step simply add up. The forward multiplies with the weights as
// stored (F16, BF16 or quantized; weights llama.cpp repacked are read from its mapping of the
// file, train_weights.h). On the CPU every out_prod of the backward (dx = Wᵀ dy of each frozen
// projection and of the output matrix, the LoRA and attention gradients) runs as out_prod_cpu
// (train_out_prod.h), which reads W as stored and the other operand in place: no transposed
// copies, no F32 copy of any weight (out_prods_as_mul_mats). On a GPU, dx = Wᵀ dy runs as mul_mat
// on F32 transposes, cached within a budget or made per weight inside the graph (plan_transposes,
// use_transposed_weights). The graph
// runs on the CPU backend with the model's thread count, or (device 'gpu') on the GPU backend
// with device twins of the parameters; the host copies stay the source of truth, so the optimizer,
// checkpoints and tests see one set of numbers on either device (init_device).
//
// Map: rope_params (what llama.cpp would do) · TrainGraph ctor, plan_transposes, make_host_copies and
// init_params (parameters, LoRA init, transposed caches) · project/build_forward (the forward
// above) · use_transposed_weights · run (forward, fused CE, backward) · logits (tests).
#include "train_graph.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <unordered_map>

#include "fused_ce.h"
#include "ggml-cpu.h"
#ifdef MSR_REC_CUDA
#include "ggml-cuda.h"
#endif
#include "llama-model.h"
#include "train_arch.h"
#include "train_weights.h"
#include "train_out_prod.h"
// ggml_graph_view (compute a node range of a graph with its use counts) is internal to ggml.
#include "../ggml/src/ggml-impl.h"

namespace msr {

namespace {

// splitmix64: a tiny portable generator, so the same seed gives the same LoRA init everywhere.
struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
};

struct RopeParams {
  int n_rot, mode, n_ctx_orig;
  float freq_base, freq_scale, ext_factor, attn_factor, beta_fast, beta_slow;
};

// The same values llama_context derives for its cparams with default context params.
RopeParams rope_params(const llama_model& m) {
  const auto& hp = m.hparams;
  RopeParams r{};
  r.n_rot = static_cast<int>(hp.n_rot(0));
  r.mode = llama_model_rope_type(&m);
  r.n_ctx_orig = static_cast<int>(hp.n_ctx_orig_yarn != 0 ? hp.n_ctx_orig_yarn : hp.n_ctx_train);
  r.freq_base = hp.rope_freq_base_train;
  r.freq_scale = hp.rope_scaling_type_train == LLAMA_ROPE_SCALING_TYPE_NONE ? 1.f : hp.rope_freq_scale_train;
  r.ext_factor = hp.yarn_ext_factor >= 0.f ? hp.yarn_ext_factor
                                           : (hp.rope_scaling_type_train == LLAMA_ROPE_SCALING_TYPE_YARN ? 1.f : 0.f);
  if (r.ext_factor != 0.f) throw UserError("training: YaRN RoPE scaling is not supported; use a model without YaRN scaling");
  r.attn_factor = hp.yarn_attn_factor * hp.rope_attn_factor;
  r.beta_fast = hp.yarn_beta_fast;
  r.beta_slow = hp.yarn_beta_slow;
  return r;
}

const char* target_of(const llama_layer& l, const ggml_tensor* w) {
  if (w == l.wq) return "q";
  if (w == l.wk) return "k";
  if (w == l.wv) return "v";
  if (w == l.wo) return "o";
  if (w == l.ffn_gate) return "gate";
  if (w == l.ffn_up) return "up";
  if (w == l.ffn_down) return "down";
  return nullptr;
}


}  // namespace

TrainGraph::TrainGraph(ModelPtr model, const TrainConfig& cfg) : model_(std::move(model)), cfg_(cfg) {
  // A constructor that throws never runs its destructor: free what init() had made (the backend,
  // parameter buffers, device copies) before the error travels on.
  try {
    init();
  } catch (...) {
    release();
    throw;
  }
}

void TrainGraph::init() {
  const llama_model& m = *model_->model;
  check_trainable(m, cfg_.mode, cfg_.dequantize);
  n_vocab_ = model_->n_vocab;
  // Graph capacity: about 250 nodes per layer are used (forward, backward, LoRA); three times that
  // and room for slices of in-graph transposes (GPU, or the transposed_backward setting), as a power of
  // two, at least 16384 (a 16-layer model: 16384; the graph's tables are sized by it: 1.2 MiB).
  graph_nodes_ = 16384;
  while (graph_nodes_ < 2048 + 768 * m.layers.size()) graph_nodes_ *= 2;
  n_ctx_ = cfg_.n_ctx > 0 ? cfg_.n_ctx : static_cast<int>(m.hparams.n_ctx_train);
  if (cfg_.mode == TrainMode::Lora) {
    if (cfg_.rank <= 0) throw UserError("lora.rank must be a positive integer (default 8)");
    if (cfg_.targets.empty()) throw UserError("lora.targets is empty; name at least one of q, k, v, o, gate, up, down");
    for (const auto& t : cfg_.targets) {
      static const char* known[] = {"q", "k", "v", "o", "gate", "up", "down"};
      bool ok = false;
      for (const char* k : known) ok = ok || t == k;
      if (!ok) throw UserError("unknown LoRA target '" + t + "'; use q, k, v, o, gate, up or down");
    }
    lora_scale_ = cfg_.lora_alpha / static_cast<float>(cfg_.rank);
  }
  if (cfg_.gpu) {
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_GPU);
    if (!dev) {
      throw UserError("training on the GPU: this build of the addon has no GPU backend (or no GPU is visible); build it with "
                      "`npm run build:cuda` on a machine with nvcc, or train with device: 'cpu'");
    }
    backend_ = ggml_backend_dev_init(dev, nullptr);
    if (!backend_) throw UserError(std::string("training: could not start the GPU backend (") + ggml_backend_dev_description(dev) + ")");
  } else {
    backend_ = ggml_backend_cpu_init();
    if (!backend_) throw UserError("training: could not start ggml's CPU backend");
    ggml_backend_cpu_set_n_threads(backend_, std::max(1, cfg_.n_threads));
  }
  slice_bytes_ = cfg_.dev.slice_mb * 1048576.0;
  own_out_prod_ = !cfg_.dev.transposed_backward;
  reader_ = std::make_unique<WeightReader>(model_->path);
  init_params();
  reader_.reset();  // only needed to make the copies and transposes
  galloc_ = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_));
}

TrainGraph::~TrainGraph() { release(); }

void TrainGraph::release() {
  reader_.reset();
  if (galloc_) ggml_gallocr_free(galloc_);
  if (dev_buf_) ggml_backend_buffer_free(dev_buf_);
  if (dev_ctx_) ggml_free(dev_ctx_);
  if (host_buf_) ggml_backend_buffer_free(host_buf_);
  if (host_ctx_) ggml_free(host_ctx_);
  if (param_buf_) ggml_backend_buffer_free(param_buf_);
  if (param_ctx_) ggml_free(param_ctx_);
  if (backend_) ggml_backend_free(backend_);
  galloc_ = nullptr;
  dev_buf_ = nullptr;
  dev_ctx_ = nullptr;
  host_buf_ = nullptr;
  host_ctx_ = nullptr;
  param_buf_ = nullptr;
  param_ctx_ = nullptr;
  backend_ = nullptr;
}

std::string TrainGraph::device_name() const {
  ggml_backend_dev_t dev = ggml_backend_get_device(backend_);
  return dev ? ggml_backend_dev_description(dev) : ggml_backend_name(backend_);
}

// LoRA mode: which transposes the backward keeps cached (created in ctx, keyed by the weight
// tensor the graph uses). On the CPU none: out_prod_cpu reads the weights as stored, faster than
// a mul_mat on cached F32 transposes and without their 4 bytes per parameter. On a GPU the
// backward's dx = Wᵀ dy needs each frozen projection transposed; cached F32 copies are fastest but
// cost 4 bytes per parameter whatever the weights' type, so they are kept only within a budget:
// the transposeBudgetMb option, else half the GPU's free memory (with the development setting
// transposed_backward on the CPU: a quarter of the model's size but at least 256 MB and at most
// 2048 MB). Whatever is not cached is transposed inside the graph, one weight at a time, and freed
// after use (inline_transpose).
// The copies are F32: a product with F16 weights rounds its other operand to F16 too, and
// backpropagated gradients (often below F16's 6e-5 normal range) would lose their low bits or
// flush to zero (measured: 4% gradient error on an F16 model).
void TrainGraph::plan_transposes(ggml_context* ctx) {
  if (cfg_.mode != TrainMode::Lora) return;
  const llama_model& m = *model_->model;
  const bool budget_given = cfg_.transpose_budget_mb >= 0;
  const double mib = 1024.0 * 1024.0;
  double cap = budget_given ? cfg_.transpose_budget_mb * mib : std::clamp(0.25 * static_cast<double>(llama_model_size(&m)), 256 * mib, 2048 * mib);
  if (!budget_given && cfg_.gpu) {
    size_t free = 0, total = 0;
    ggml_backend_dev_memory(ggml_backend_get_device(backend_), &free, &total);
    cap = 0.5 * static_cast<double>(free);
  }
  const ggml_type type = GGML_TYPE_F32;
  const ggml_tensor* w_out = output_weight();
  double bytes = static_cast<double>(ggml_type_size(type)) * static_cast<double>(ggml_nelements(w_out));
  // The CPU reads the weights as stored (out_prod_cpu): nothing to cache.
  const bool as_stored = !cfg_.gpu && cpu_out_prod();
  // The output matrix first: every loss row goes through it.
  if (!as_stored && bytes <= cap) output_t_ = ggml_new_tensor_2d(ctx, type, w_out->ne[1], w_out->ne[0]);
  std::vector<const ggml_tensor*> frozen;
  for (const auto& l : m.layers) {
    for (const ggml_tensor* w : {l.wq, l.wk, l.wv, l.wo, l.ffn_gate, l.ffn_up, l.ffn_down}) {
      frozen.push_back(w);
      frozen_.push_back(weight(w));
      bytes += static_cast<double>(ggml_type_size(type)) * static_cast<double>(ggml_nelements(w));
    }
  }
  if (!output_t_ || bytes > cap) return;
  for (const ggml_tensor* w : frozen) frozen_t_.push_back({weight(w), ggml_new_tensor_2d(ctx, type, w->ne[1], w->ne[0])});
}

double TrainGraph::transpose_bytes() const {
  double b = output_t_ ? static_cast<double>(ggml_nbytes(output_t_)) : 0.0;
  for (const auto& [w, t] : frozen_t_) b += static_cast<double>(ggml_nbytes(t));
  return b;
}

double TrainGraph::compute_bytes() const { return galloc_ ? static_cast<double>(ggml_gallocr_get_buffer_size(galloc_, 0)) : 0.0; }

void TrainGraph::fill_transposes() {
  if (output_t_) reader_->transpose_into(weight(output_weight()), output_t_);
  for (auto& [w, t] : frozen_t_) reader_->transpose_into(w, t);
}

// CPU: host tensors for the frozen weights the graph reads that ggml cannot read back (repacked by
// llama.cpp, or in GPU memory when the model was loaded with gpuLayers), in their stored type, so
// the graph multiplies with them as they are. Where the model's file mapping holds the weight's
// bytes (WeightReader::mapped: llama.cpp's default, mmap) the tensor points there and costs no
// memory; otherwise it is a copy read from the file. A model loaded with repack: false needs none.
void TrainGraph::make_host_copies(const std::vector<const ggml_tensor*>& frozen) {
  const llama_model& m = *model_->model;
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
      host_ctx_ = ggml_init(ip);
    }
    ggml_tensor* c = ggml_dup_tensor(host_ctx_, w);
    ggml_set_name(c, w->name);
    ggml_backend_buffer_t buf = nullptr;
    const void* at = nullptr;
    try {
      at = reader_->mapped(w, refs, &buf);
    } catch (const UserError&) {
      at = nullptr;  // the file cannot be read: stored() says so, or reads the weight back from its device
    }
    if (at) {
      if (ggml_backend_tensor_alloc(buf, c, const_cast<void*>(at)) != GGML_STATUS_SUCCESS) throw UserError("training: could not use the model's mapped weights");
      mapped_bytes_ += static_cast<double>(ggml_nbytes(w));
    } else {
      unmapped = true;
    }
    copies.push_back({w, c});
  }
  if (copies.empty()) return;
  if (unmapped) {
    host_buf_ = ggml_backend_alloc_ctx_tensors_from_buft(host_ctx_, ggml_backend_cpu_buffer_type());
    if (!host_buf_) throw UserError("training: out of memory for host copies of the model's repacked weights; load the model with repack: false");
  }
  for (auto& [w, c] : copies) {
    if (c->buffer == host_buf_) {
      const std::vector<uint8_t> raw = reader_->stored(w);
      std::memcpy(c->data, raw.data(), raw.size());
    }
    weight_copies_.push_back({w, c});
  }
}

void TrainGraph::init_params() {
  const llama_model& m = *model_->model;
  // Every weight of the forward, in a fixed order (names are unique: a tied output is skipped).
  // Biases and Q/K norms (Qwen2, Qwen3) are trained in full mode and frozen in LoRA mode.
  std::vector<const ggml_tensor*> weights{m.tok_embd, m.output_norm};
  if (m.output && std::strcmp(m.output->name, m.tok_embd->name) != 0) weights.push_back(m.output);
  for (const auto& l : m.layers) {
    for (const ggml_tensor* w : {l.attn_norm, l.wq, l.wq_b, l.wk, l.wk_b, l.wv, l.wv_b, l.attn_q_norm, l.attn_k_norm, l.wo, l.wo_b, l.ffn_norm,
                                 l.ffn_gate, l.ffn_gate_b, l.ffn_up, l.ffn_up_b, l.ffn_down, l.ffn_down_b}) {
      if (w) weights.push_back(w);
    }
  }
  // What the graph reads but never trains: everything in LoRA mode (the tied output is its own
  // tensor object), else only RoPE factors and an output bias.
  std::vector<const ggml_tensor*> frozen;
  if (cfg_.mode == TrainMode::Lora) {
    frozen = weights;
    frozen.push_back(output_weight());
  }
  if (m.output_b) frozen.push_back(m.output_b);
  for (const auto& l : m.layers) {
    if (l.rope_freqs) frozen.push_back(l.rope_freqs);
  }
  if (!cfg_.gpu) make_host_copies(frozen);
  struct Spec {
    std::string name;
    int64_t ne0, ne1;
    const ggml_tensor* base;
    bool is_b;
  };
  std::vector<Spec> specs;
  if (cfg_.mode == TrainMode::Full) {
    for (const ggml_tensor* w : weights) specs.push_back({w->name, w->ne[0], w->ne[1], w, false});
  } else {
    for (const auto& l : m.layers) {
      for (const ggml_tensor* w : {l.wq, l.wk, l.wv, l.wo, l.ffn_gate, l.ffn_up, l.ffn_down}) {
        const char* t = target_of(l, w);
        bool wanted = false;
        for (const auto& x : cfg_.targets) wanted = wanted || x == t;
        if (!wanted) continue;
        specs.push_back({std::string(w->name) + ".lora_a", w->ne[0], cfg_.rank, w, false});
        specs.push_back({std::string(w->name) + ".lora_b", cfg_.rank, w->ne[1], w, true});
      }
    }
  }
  ggml_init_params ip{ggml_tensor_overhead() * (3 * specs.size() + 8 * m.layers.size() + 8), nullptr, true};
  param_ctx_ = ggml_init(ip);
  for (const auto& s : specs) {
    TrainParam p;
    p.name = s.name;
    p.base = s.base;
    // Norm weights stay 1-D so they broadcast (and their gradients reduce) exactly as the base's.
    p.value = ggml_n_dims(s.base) == 1 && cfg_.mode == TrainMode::Full ? ggml_new_tensor_1d(param_ctx_, GGML_TYPE_F32, s.ne0)
                                                                       : ggml_new_tensor_2d(param_ctx_, GGML_TYPE_F32, s.ne0, s.ne1);
    ggml_set_name(p.value, s.name.c_str());
    ggml_set_param(p.value);
    p.grad = ggml_dup_tensor(param_ctx_, p.value);
    ggml_format_name(p.grad, "grad_acc:%s", s.name.c_str());
    params_.push_back(p);
  }
  if (!cfg_.gpu) plan_transposes(param_ctx_);
  // CPU, LoRA rank not a multiple of 16: the products over the rank (B·(Ax) forward, Aᵀ·d(Ax)
  // backward) would run as length-r dot products outside ggml's tiled GEMM. Padding A and B with
  // zeros to the next multiple of 16 leaves B·A and every gradient of A and B unchanged (the
  // padded rows and columns get exactly zero gradient) and lets those products tile.
  const int64_t padded_rank = (cfg_.rank + 15) / 16 * 16;
  if (!cfg_.gpu && cfg_.mode == TrainMode::Lora && padded_rank != cfg_.rank) {
    // ggml_acc only reads the zeros: params of one padded shape share one zero tensor.
    for (const auto& p : params_) {
      const bool is_b = p.value->ne[0] == cfg_.rank && p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".lora_b") == 0;
      const int64_t ne0 = is_b ? padded_rank : p.value->ne[0], ne1 = is_b ? p.value->ne[1] : padded_rank;
      ggml_tensor* z = nullptr;
      for (ggml_tensor* t : rank_pad_) {
        if (!z && t->ne[0] == ne0 && t->ne[1] == ne1) z = t;
      }
      rank_pad_.push_back(z ? z : ggml_new_tensor_2d(param_ctx_, GGML_TYPE_F32, ne0, ne1));
    }
  }
  param_buf_ = ggml_backend_alloc_ctx_tensors_from_buft(param_ctx_, ggml_backend_cpu_buffer_type());
  if (!param_buf_) throw UserError("training: out of memory allocating the trainable parameters");
  for (ggml_tensor* z : rank_pad_) std::memset(z->data, 0, ggml_nbytes(z));
  if (!cfg_.gpu) fill_transposes();

  SplitMix rng{cfg_.seed * 0x100000001B3ull + 0x51ED27A1ull};
  for (size_t i = 0; i < params_.size(); i++) {
    TrainParam& p = params_[i];
    const Spec& s = specs[i];
    float* dst = p.data();
    if (cfg_.mode == TrainMode::Full) {
      const std::vector<float> w = reader_->f32(s.base);
      std::memcpy(dst, w.data(), w.size() * sizeof(float));
      index_.push_back({s.base, static_cast<int>(i)});
    } else if (!s.is_b) {
      // A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's Kaiming-uniform bound), B = 0: the adapter starts as a no-op.
      const double bound = 1.0 / std::sqrt(static_cast<double>(s.ne0));
      for (int64_t j = 0; j < p.numel(); j++) dst[j] = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
      index_.push_back({s.base, static_cast<int>(i)});
    } else {
      std::memset(dst, 0, ggml_nbytes(p.value));
    }
  }
  zero_grads();
  if (cfg_.gpu) init_device(weights);
}

// GPU: a device twin (value, gradient) of every param, a device copy of every frozen weight the
// forward reads that is not already in memory the GPU backend can use (a model loaded with
// gpuLayers keeps most of its weights there; token embeddings stay on the host), and the transposes.
void TrainGraph::init_device(std::vector<const ggml_tensor*> weights) {
  const llama_model& m = *model_->model;
  for (const auto& l : m.layers) {
    if (l.rope_freqs) weights.push_back(l.rope_freqs);
  }
  if (cfg_.mode == TrainMode::Lora) weights.push_back(output_weight());  // a tied output is its own tensor object
  if (m.output_b) weights.push_back(m.output_b);
  ggml_init_params ip{ggml_tensor_overhead() * (2 * params_.size() + weights.size() + 8 * m.layers.size() + 8), nullptr, true};
  dev_ctx_ = ggml_init(ip);
  for (auto& p : params_) {
    p.dev_value = ggml_dup_tensor(dev_ctx_, p.value);
    ggml_set_name(p.dev_value, p.name.c_str());
    ggml_set_param(p.dev_value);
    p.dev_grad = ggml_dup_tensor(dev_ctx_, p.grad);
    ggml_format_name(p.dev_grad, "grad_acc:%s", p.name.c_str());
  }
  for (const ggml_tensor* w : weights) {
    bool is_param = false;
    for (const auto& [b, i] : index_) is_param = is_param || (cfg_.mode == TrainMode::Full && b == w);
    if (is_param || ggml_backend_supports_buft(backend_, ggml_backend_buffer_get_type(w->buffer))) continue;
    bool seen = false;
    for (const auto& [b, c] : weight_copies_) seen = seen || b == w;
    if (seen) continue;
    ggml_tensor* c = ggml_dup_tensor(dev_ctx_, w);
    ggml_set_name(c, w->name);
    weight_copies_.push_back({w, c});
  }
  plan_transposes(dev_ctx_);
  dev_buf_ = ggml_backend_alloc_ctx_tensors(dev_ctx_, backend_);
  if (!dev_buf_) throw UserError("training: out of GPU memory for the trainable parameters and weight copies; use a smaller model or LoRA mode");
  for (auto& [w, c] : weight_copies_) {
    const std::vector<uint8_t> raw = reader_->stored(w);
    ggml_backend_tensor_set(c, raw.data(), 0, raw.size());
  }
  fill_transposes();
}

void TrainGraph::upload_params() {
  for (auto& p : params_) {
    if (p.dev_value) ggml_backend_tensor_set(p.dev_value, p.value->data, 0, ggml_nbytes(p.value));
  }
}

// The device accumulators start each backward at zero; their sums join the host accumulators.
void TrainGraph::add_device_grads() {
  std::vector<float> g;
  for (auto& p : params_) {
    if (!p.dev_grad) continue;
    g.resize(static_cast<size_t>(p.numel()));
    ggml_backend_tensor_get(p.dev_grad, g.data(), 0, ggml_nbytes(p.dev_grad));
    float* acc = p.grad_data();
    for (int64_t j = 0; j < p.numel(); j++) acc[j] += g[j];
  }
}

void TrainGraph::check_ops_supported(ggml_cgraph* g) const {
  if (!on_gpu()) return;
  for (int i = 0; i < ggml_graph_n_nodes(g); i++) {
    ggml_tensor* node = ggml_graph_node(g, i);
    if (!ggml_backend_supports_op(backend_, node)) {
      throw UserError(std::string("training on the GPU: ") + device_name() + " cannot run the graph's " + ggml_op_desc(node) + " (" +
                      node->name + ", src0 type " + (node->src[0] ? ggml_type_name(node->src[0]->type) : "-") +
                      "); train on the CPU, or raise the trainer's transposeBudgetMb option so the backward uses transposed weights");
    }
  }
}

void TrainGraph::zero_grads() {
  for (auto& p : params_) std::memset(p.grad->data, 0, ggml_nbytes(p.grad));
}

const TrainParam* TrainGraph::find(const std::string& name) const {
  for (const auto& p : params_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

// CPU: the backward's out_prods (dx = Wᵀ dy of every weight, the LoRA and full-mode weight
// gradients) run as out_prod_cpu, reading W as stored and the other operand in place, unless the
// development setting transposed_backward asks for the GPU's transposes and mul_mats.
bool TrainGraph::cpu_out_prod() const { return own_out_prod_ && !cfg_.gpu; }

const ggml_tensor* TrainGraph::output_weight() const {
  const llama_model& m = *model_->model;
  return m.output ? m.output : m.tok_embd;
}

// The weight a forward product uses: weight(base), except for a frozen weight llama.cpp repacked
// for its CPU kernels (an extra buffer type of the CPU), which the product takes as repacked:
// ggml's CPU backend then runs it with the repacked kernel, as llama.cpp's own graphs do (about
// twice as fast as the stored layout for Q4_0 on x86). Everything else (the backward) reads the
// stored bytes through weight().
ggml_tensor* TrainGraph::product_weight(const ggml_tensor* base) const {
  ggml_tensor* w = weight(base);
  if (cfg_.gpu || w == base || !base->buffer || ggml_n_dims(base) != 2 || ggml_backend_buffer_is_host(base->buffer)) return w;
  bool twin = false;
  for (const auto& [b, c] : weight_copies_) twin = twin || (b == base && c == w);
  ggml_backend_dev_t dev = ggml_backend_buft_get_device(ggml_backend_buffer_get_type(base->buffer));
  return twin && dev && ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU ? const_cast<ggml_tensor*>(base) : w;
}

ggml_tensor* TrainGraph::weight(const ggml_tensor* base) const {
  if (cfg_.mode == TrainMode::Full) {
    for (const auto& [b, i] : index_) {
      if (b == base || std::strcmp(b->name, base->name) == 0) return params_[i].graph_value();
    }
  }
  for (const auto& [b, c] : weight_copies_) {
    if (b == base) return c;
  }
  return const_cast<ggml_tensor*>(base);
}

ggml_tensor* TrainGraph::project(ggml_context* ctx, const ggml_tensor* w, const ggml_tensor* bias, ggml_tensor* x) const {
  ggml_tensor* y = project(ctx, w, x);
  // llama.cpp adds a projection's bias after the LoRA term (build_qkv, build_ffn, build_attn).
  return bias ? ggml_add(ctx, y, weight(bias)) : y;
}

ggml_tensor* TrainGraph::project(ggml_context* ctx, const ggml_tensor* w, ggml_tensor* x) const {
  ggml_tensor* y = ggml_mul_mat(ctx, product_weight(w), x);
  if (cfg_.mode == TrainMode::Lora) {
    for (const auto& [b, i] : index_) {
      if (b != w) continue;
      ggml_tensor* a = params_[i].graph_value();      // (in, r)
      ggml_tensor* bm = params_[i + 1].graph_value();  // (r, out)
      if (!rank_pad_.empty()) {
        // Zero-padded to a rank the CPU GEMM tiles (see rank_pad_): A' = [A; 0], B' = [B, 0].
        const ggml_tensor* za = rank_pad_[i];
        const ggml_tensor* zb = rank_pad_[i + 1];
        a = ggml_acc(ctx, const_cast<ggml_tensor*>(za), a, za->nb[1], za->nb[2], za->nb[3], 0);
        bm = ggml_acc(ctx, const_cast<ggml_tensor*>(zb), bm, zb->nb[1], zb->nb[2], zb->nb[3], 0);
      }
      ggml_tensor* ab = ggml_mul_mat(ctx, bm, ggml_mul_mat(ctx, a, x));
      y = ggml_add(ctx, y, ggml_scale(ctx, ab, lora_scale_));
    }
  }
  return y;
}

// inputs[0..3] = tokens, positions, mask, rows (rows is null when all_rows).
ggml_tensor* TrainGraph::build_forward(ggml_context* ctx, const PackedBatch& b, bool all_rows, ggml_tensor** inputs, ggml_tensor** h_out) {
  const llama_model& m = *model_->model;
  const auto& hp = m.hparams;
  const int64_t T = static_cast<int64_t>(b.tokens.size());
  const RopeParams rp = rope_params(m);
  const float eps = hp.f_norm_rms_eps;

  ggml_tensor* tokens = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, T);
  ggml_tensor* pos = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, T);
  ggml_tensor* mask = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, T, T);  // [key, query]
  ggml_tensor* rows = all_rows ? nullptr : ggml_new_tensor_1d(ctx, GGML_TYPE_I32, static_cast<int64_t>(b.rows.size()));
  for (ggml_tensor* t : {tokens, pos, mask, rows}) {
    if (t) ggml_set_input(t);
  }
  inputs[0] = tokens, inputs[1] = pos, inputs[2] = mask, inputs[3] = rows;

  ggml_tensor* x = ggml_get_rows(ctx, weight(m.tok_embd), tokens);
  for (size_t il = 0; il < m.layers.size(); il++) {
    const llama_layer& l = m.layers[il];
    const int64_t n_head = hp.n_head(il), n_kv = hp.n_head_kv(il), hd = hp.n_embd_head_k(il);
    const float kq_scale = hp.f_attention_scale == 0.f ? 1.f / std::sqrt(static_cast<float>(hd)) : hp.f_attention_scale;

    ggml_tensor* h = ggml_mul(ctx, ggml_rms_norm(ctx, x, eps), weight(l.attn_norm));
    ggml_tensor* q = ggml_reshape_3d(ctx, project(ctx, l.wq, l.wq_b, h), hd, n_head, T);
    ggml_tensor* k = ggml_reshape_3d(ctx, project(ctx, l.wk, l.wk_b, h), hd, n_kv, T);
    ggml_tensor* v = ggml_reshape_3d(ctx, project(ctx, l.wv, l.wv_b, h), hd, n_kv, T);
    // Qwen3: RMS norm of each head of Q and K before RoPE.
    if (l.attn_q_norm) q = ggml_mul(ctx, ggml_rms_norm(ctx, q, eps), weight(l.attn_q_norm));
    if (l.attn_k_norm) k = ggml_mul(ctx, ggml_rms_norm(ctx, k, eps), weight(l.attn_k_norm));
    ggml_tensor* rope_freqs = l.rope_freqs ? weight(l.rope_freqs) : nullptr;
    q = ggml_rope_ext(ctx, q, pos, rope_freqs, rp.n_rot, rp.mode, rp.n_ctx_orig, rp.freq_base, rp.freq_scale,
                      rp.ext_factor, rp.attn_factor, rp.beta_fast, rp.beta_slow);
    k = ggml_rope_ext(ctx, k, pos, rope_freqs, rp.n_rot, rp.mode, rp.n_ctx_orig, rp.freq_base, rp.freq_scale,
                      rp.ext_factor, rp.attn_factor, rp.beta_fast, rp.beta_slow);
    ggml_tensor* qp = ggml_permute(ctx, q, 0, 2, 1, 3);                 // (hd, T, n_head)
    ggml_tensor* kp = ggml_permute(ctx, k, 0, 2, 1, 3);                 // (hd, T, n_kv)
    ggml_tensor* kq = ggml_mul_mat(ctx, kp, qp);                        // (T_k, T_q, n_head), kv head = head / (n_head/n_kv)
    kq = ggml_soft_max_ext(ctx, kq, mask, kq_scale, 0.f);
    ggml_tensor* vt = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));  // (T, hd, n_kv)
    ggml_tensor* o = ggml_mul_mat(ctx, vt, kq);                          // (hd, T_q, n_head)
    o = ggml_cont_2d(ctx, ggml_permute(ctx, o, 0, 2, 1, 3), hd * n_head, T);
    x = ggml_add(ctx, project(ctx, l.wo, l.wo_b, o), x);

    h = ggml_mul(ctx, ggml_rms_norm(ctx, x, eps), weight(l.ffn_norm));
    ggml_tensor* act = ggml_swiglu_split(ctx, project(ctx, l.ffn_gate, l.ffn_gate_b, h), project(ctx, l.ffn_up, l.ffn_up_b, h));
    x = ggml_add(ctx, project(ctx, l.ffn_down, l.ffn_down_b, act), x);
  }
  ggml_tensor* h = ggml_mul(ctx, ggml_rms_norm(ctx, x, eps), weight(m.output_norm));
  if (rows) h = ggml_get_rows(ctx, h, rows);
  if (h_out) *h_out = h;
  ggml_tensor* logits = ggml_mul_mat(ctx, product_weight(output_weight()), h);  // (n_vocab, R)
  if (m.output_b) logits = ggml_add(ctx, logits, weight(m.output_b));  // frozen in both modes
  ggml_set_name(logits, "logits");
  ggml_set_output(logits);
  return logits;
}

// Wᵀ as a contiguous F32 tensor made inside the graph: allocated right before its product and
// freed after it, so at most a weight or two exist at a time. On the CPU in one fused pass
// (dequant_transpose); on a GPU as a cast and a transposed copy.
ggml_tensor* TrainGraph::inline_transpose(ggml_context* ctx, ggml_tensor* w) const {
  if (!on_gpu()) return dequant_transpose(ctx, w);
  if (w->type != GGML_TYPE_F32) w = ggml_cast(ctx, w, GGML_TYPE_F32);
  return ggml_cont(ctx, ggml_transpose(ctx, w));
}

// Wᵀ dy without a cached transpose, over slices of W's rows (32 MB of F32 each: 4096 rows of
// Llama 3.2 1B's LM head, 1024 of its ffn_down; the development setting slice_mb changes it, which
// tests use to get several slices from tiny weights): each slice transposed to F32 inside the graph,
// multiplied with its rows of dy and freed, so the backward never holds more than a slice or two
// instead of an F32 copy of a weight (1 GB for that LM head). Returns the partial products; their
// sum is Wᵀ dy.
std::vector<ggml_tensor*> TrainGraph::sliced_transposed_products(ggml_context* ctx, ggml_tensor* w, ggml_tensor* dy) const {
  const int64_t rows = w->ne[1], slice = std::max<int64_t>(64, static_cast<int64_t>(slice_bytes_ / (4.0 * w->ne[0])));
  std::vector<ggml_tensor*> parts;
  for (int64_t r0 = 0; r0 < rows; r0 += slice) {
    const int64_t n = std::min(slice, rows - r0);
    ggml_tensor* ws = n == rows ? w : ggml_view_2d(ctx, w, w->ne[0], n, w->nb[1], r0 * w->nb[1]);
    ggml_tensor* ds = n == rows ? dy : ggml_view_2d(ctx, dy, n, dy->ne[1], dy->nb[1], r0 * dy->nb[0]);
    parts.push_back(ggml_mul_mat(ctx, inline_transpose(ctx, ws), ds));
  }
  return parts;
}

ggml_tensor* TrainGraph::output_backward(ggml_context* ctx, ggml_tensor* w_out, ggml_tensor* G) const {
  ggml_tensor* gt = ggml_transpose(ctx, G);
  if (cpu_out_prod() && out_prod_supported(w_out, gt)) return out_prod_cpu(ctx, w_out, gt);
  ggml_tensor* dh = nullptr;
  for (ggml_tensor* part : sliced_transposed_products(ctx, w_out, G)) dh = dh ? ggml_add(ctx, dh, part) : part;
  return dh;
}

// Rewrites backward nodes dx = out_prod(W, transpose(dy)) with a frozen W into the equivalent
// mul_mat(Wᵀ, dy): on the cached transpose when there is one, else on one made in the graph
// (ggml's out_prod is a slow loop on the CPU, takes only F32 on CUDA and aborts on BF16). Same
// shape and values, done before allocation. Returns whether nodes were added (the graph must
// then be rebuilt so they come before their users).
bool TrainGraph::use_transposed_weights(ggml_context* ctx, ggml_cgraph* g, int first_node, PassProfile& prof) const {
  int rewritten = 0, out_prods = 0, inlined = 0;
  for (int i = first_node; i < ggml_graph_n_nodes(g); i++) {
    ggml_tensor* node = ggml_graph_node(g, i);
    out_prods += node->op == GGML_OP_OUT_PROD;
    if (node->op != GGML_OP_OUT_PROD || !node->src[1] || node->src[1]->op != GGML_OP_TRANSPOSE) continue;
    if (cpu_out_prod() && out_prod_supported(node->src[0], node->src[1])) continue;  // out_prods_as_mul_mats makes it out_prod_cpu
    bool frozen = false;
    for (const ggml_tensor* w : frozen_) frozen = frozen || node->src[0] == w;
    if (!frozen) continue;
    ggml_tensor* wt = nullptr;
    for (const auto& [w, t] : frozen_t_) {
      if (node->src[0] == w) wt = t;
    }
    ggml_tensor* dy = node->src[1]->src[0];
    // (dy gains a use the graph's use counts do not know of; only an RMS_NORM output could be
    // affected by that, through the CPU's rms_norm+mul fusion, and a gradient never is one.)
    if (dy->op == GGML_OP_RMS_NORM || dy->ne[0] != node->src[0]->ne[1] || dy->ne[1] != node->ne[1] || dy->ne[2] != 1 || dy->ne[3] != 1) continue;
    rewritten++;
    if (!wt) {
      // The node becomes the last partial product plus the sum of the others (users keep it).
      std::vector<ggml_tensor*> parts = sliced_transposed_products(ctx, node->src[0], dy);
      inlined++;
      if (parts.size() > 1) {
        ggml_tensor* rest = parts[0];
        for (size_t k = 1; k + 1 < parts.size(); k++) rest = ggml_add(ctx, rest, parts[k]);
        node->op = GGML_OP_ADD;
        node->src[0] = rest;
        node->src[1] = parts.back();
        continue;
      }
      wt = parts[0]->src[0];
    }
    node->op = GGML_OP_MUL_MAT;
    node->src[0] = wt;
    node->src[1] = dy;
  }
  prof.out_prods = out_prods;
  prof.transposed_weights = rewritten;
  prof.transposed_in_graph = inlined;
  return inlined > 0;
}

namespace {

void set_inputs(ggml_tensor** in, const PackedBatch& b) {
  const int64_t T = static_cast<int64_t>(b.tokens.size());
  ggml_backend_tensor_set(in[0], b.tokens.data(), 0, T * sizeof(int32_t));
  ggml_backend_tensor_set(in[1], b.positions.data(), 0, T * sizeof(int32_t));
  std::vector<float> mask(static_cast<size_t>(T * T), -std::numeric_limits<float>::infinity());
  for (int64_t qi = 0; qi < T; qi++) {
    for (int64_t ki = qi; ki >= 0 && b.sample_of[ki] == b.sample_of[qi]; ki--) mask[qi * T + ki] = 0.f;
  }
  ggml_backend_tensor_set(in[2], mask.data(), 0, mask.size() * sizeof(float));
  if (in[3]) ggml_backend_tensor_set(in[3], b.rows.data(), 0, b.rows.size() * sizeof(int32_t));
}

struct CtxGuard {
  ggml_context* ctx;
  ~CtxGuard() { ggml_free(ctx); }
};

// A context for one pass's graph (graph_nodes nodes at most) and twice as many tensors.
ggml_context* graph_ctx(size_t graph_nodes) {
  ggml_init_params ip{ggml_tensor_overhead() * 2 * graph_nodes + ggml_graph_overhead_custom(graph_nodes, true) * 2, nullptr, true};
  return ggml_init(ip);
}

void compute(ggml_backend_t backend, ggml_cgraph* g, const char* what) {
  if (ggml_backend_graph_compute(backend, g) != GGML_STATUS_SUCCESS) {
    throw UserError(std::string("training: ggml failed to compute the ") + what + " graph (out of memory?)");
  }
}

// TrainDevSettings::profile_nodes: the graph runs one node at a time (no fusion) and the time per
// kind of node (op, weight type, shape class) is returned, largest first. A diagnostic, not for training.
std::vector<PassProfile::NodeKind> time_nodes(ggml_backend_t backend, ggml_cgraph* g, int i0, int i1, const char* what, bool single_thread) {
  using clock = std::chrono::steady_clock;
  std::map<std::string, std::pair<double, int>> by;
  for (int i = i0; i < i1; i++) {
    ggml_tensor* node = ggml_graph_node(g, i);
    ggml_cgraph one = ggml_graph_view(g, i, i + 1);
    // With one thread the node runs on this thread: its CPU time is robust to other load.
    timespec c0{}, c1{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    const auto t0 = clock::now();
    compute(backend, &one, what);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    const double ms = single_thread ? (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) * 1e-6
                                    : std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    std::string key = ggml_op_desc(node);
    if (node->src[0]) key += std::string(" ") + ggml_type_name(node->src[0]->type);
    if (node->op == GGML_OP_MUL_MAT || node->op == GGML_OP_OUT_PROD) {
      char buf[96];
      std::snprintf(buf, sizeof buf, " [%lldx%lld]x[%lldx%lld]", (long long)node->src[0]->ne[0], (long long)node->src[0]->ne[1],
                    (long long)node->src[1]->ne[0], (long long)node->src[1]->ne[1]);
      key += buf;
    } else if (node->op == GGML_OP_CUSTOM) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " -> [%lldx%lld]", (long long)node->ne[0], (long long)node->ne[1]);
      key += buf;
    }
    by[key].first += ms;
    by[key].second++;
  }
  std::vector<PassProfile::NodeKind> kinds;
  for (const auto& [k, v] : by) kinds.push_back({k, v.first, v.second});
  std::sort(kinds.begin(), kinds.end(), [](const auto& a, const auto& b) { return a.ms > b.ms; });
  return kinds;
}

}  // namespace

double TrainGraph::fused_ce(const ggml_tensor* logits, const PackedBatch& b, ggml_tensor* G, std::vector<float>& row_logprobs) const {
  const int64_t R = static_cast<int64_t>(b.rows.size());
  row_logprobs.resize(R);
  if (!on_gpu()) {
    float* grad = G ? static_cast<float*>(G->data) : nullptr;
    return fused_ce_cpu(static_cast<const float*>(logits->data), R, n_vocab_, n_vocab_, b.targets.data(), b.weights.data(),
                        row_logprobs.data(), grad, n_vocab_, std::max(1, cfg_.n_threads));
  }
#ifdef MSR_REC_CUDA
  if (ggml_backend_is_cuda(backend_)) {
    // In device memory: G is written by the kernel, only the per-row numbers cross the bus.
    return fused_ce_cuda_rows(static_cast<const float*>(logits->data), R, n_vocab_, n_vocab_, b.targets.data(), b.weights.data(),
                              row_logprobs.data(), G ? static_cast<float*>(G->data) : nullptr, n_vocab_);
  }
#endif
  // Another GPU backend: the logits make a round trip through host memory.
  std::vector<float> host(static_cast<size_t>(R * n_vocab_));
  ggml_backend_tensor_get(logits, host.data(), 0, host.size() * sizeof(float));
  const double loss = fused_ce_cpu(host.data(), R, n_vocab_, n_vocab_, b.targets.data(), b.weights.data(), row_logprobs.data(),
                                   G ? host.data() : nullptr, n_vocab_, std::max(1, cfg_.n_threads));
  if (G) ggml_backend_tensor_set(G, host.data(), 0, host.size() * sizeof(float));
  return loss;
}

PassResult TrainGraph::run(const PackedBatch& b, bool backward) {
  PassResult res;
  const int64_t R = static_cast<int64_t>(b.rows.size());
  if (R == 0) return res;
  upload_params();
  CtxGuard guard{graph_ctx(graph_nodes_)};
  ggml_context* ctx = guard.ctx;
  ggml_tensor* in[4];
  ggml_tensor* h = nullptr;
  ggml_tensor* logits = build_forward(ctx, b, false, in, &h);
  ggml_cgraph* g = ggml_new_graph_custom(ctx, graph_nodes_, backward);
  ggml_build_forward_expand(g, logits);
  const int n_fwd = ggml_graph_n_nodes(g);
  ggml_tensor* G = nullptr;
  if (backward) {
    G = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n_vocab_, R);
    ggml_set_name(G, "dloss_dlogits");
    ggml_set_input(G);
    ggml_tensor* w_out = weight(output_weight());
    ggml_tensor* dh = output_t_ ? ggml_mul_mat(ctx, output_t_, G) : output_backward(ctx, w_out, G);  // (n_embd, R) = Woutᵀ G
    // ggml_build_backward_expand insists on a scalar loss node; this one only keeps it satisfied
    // (it depends on no parameter, so no gradient flows from it).
    ggml_tensor* anchor = ggml_sum(ctx, G);
    ggml_set_loss(anchor);
    ggml_build_forward_expand(g, anchor);
    std::vector<ggml_tensor*> grad_accs(ggml_graph_n_nodes(g), nullptr);
    ggml_tensor* w_out_grad = nullptr;
    for (int i = 0; i < n_fwd; i++) {
      ggml_tensor* node = ggml_graph_node(g, i);
      if (node == h) grad_accs[i] = dh;
      for (auto& p : params_) {
        if (node == p.graph_value()) grad_accs[i] = p.graph_grad();
        if (p.graph_value() == w_out) w_out_grad = p.graph_grad();
      }
    }
    ggml_build_backward_expand(ctx, g, grad_accs.data());
    // The forward multiplied with repacked weights (product_weight); the backward reads their
    // stored bytes (the host tensors of weight_copies_).
    if (!on_gpu() && !weight_copies_.empty()) {
      const std::unordered_map<const ggml_tensor*, ggml_tensor*> stored(weight_copies_.begin(), weight_copies_.end());
      for (int i = n_fwd; i < ggml_graph_n_nodes(g); i++) {
        ggml_tensor* node = ggml_graph_node(g, i);
        for (int k = 0; k < GGML_MAX_SRC; k++) {
          if (!node->src[k]) continue;
          const auto it = stored.find(node->src[k]);
          if (it != stored.end()) node->src[k] = it->second;
        }
      }
    }
    const bool added = use_transposed_weights(ctx, g, n_fwd, res.profile);
    // Full mode: dWout = h Gᵀ, added after the autodiff so it never tries to differentiate it.
    if (w_out_grad) ggml_build_forward_expand(g, ggml_add_inplace(ctx, w_out_grad, ggml_out_prod(ctx, h, G)));
    if (!on_gpu()) g = out_prods_as_mul_mats(ctx, g, n_fwd, added, res.profile);
    else if (added) g = rebuild(ctx, g, n_fwd);
  }
  check_ops_supported(g);
  if (!ggml_gallocr_alloc_graph(galloc_, g)) throw UserError("training: out of memory allocating the compute graph; lower microBatchTokens");
  set_inputs(in, b);
  if (backward && on_gpu()) {
    for (auto& p : params_) ggml_backend_tensor_memset(p.dev_grad, 0, 0, ggml_nbytes(p.dev_grad));
  }

  using clock = std::chrono::steady_clock;
  const bool by_node = cfg_.dev.profile_nodes, single_thread = cfg_.n_threads <= 1;
  PassProfile& prof = res.profile;
  const auto t0 = clock::now();
  ggml_cgraph fwd = ggml_graph_view(g, 0, n_fwd);
  if (by_node) prof.forward_nodes = time_nodes(backend_, g, 0, n_fwd, "forward", single_thread);
  else compute(backend_, &fwd, "forward");
  const auto t1 = clock::now();
  res.weighted_loss = fused_ce(logits, b, G, res.row_logprobs);
  const auto t2 = clock::now();
  if (backward) {
    ggml_cgraph bwd = ggml_graph_view(g, n_fwd, ggml_graph_n_nodes(g));
    if (by_node) prof.backward_nodes = time_nodes(backend_, g, n_fwd, ggml_graph_n_nodes(g), "backward", single_thread);
    else compute(backend_, &bwd, "backward");
    if (on_gpu()) add_device_grads();
  }
  if (cfg_.profile) {
    const auto ms = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    prof.tokens = static_cast<int64_t>(b.tokens.size());
    prof.rows = R;
    prof.forward_ms = ms(t0, t1);
    prof.cross_entropy_ms = ms(t1, t2);
    prof.backward_ms = backward ? ms(t2, clock::now()) : 0.0;
    prof.graph_nodes = ggml_graph_n_nodes(g);
    prof.graph_leafs = g->n_leafs;
    prof.graph_metadata_bytes = static_cast<double>(ggml_used_mem(ctx));
    prof.compute_bytes = static_cast<double>(ggml_gallocr_get_buffer_size(galloc_, 0));
  }
  return res;
}

// ggml's CPU out_prod is a loop of vector multiply-adds. Each out_prod node becomes out_prod_cpu
// in place (same operands, nothing added) when it supports the operands, which is every one the
// training graph makes; otherwise (or with the development setting transposed_backward) the same product as a
// mul_mat over contiguous transposes, out_prod(a, b) = a·bᵀ = mul_mat(aᵀ, bᵀ) with the same
// broadcasting over dims 2–3, in ggml's tiled GEMM. Rewritten nodes keep their place; the graph
// is rebuilt in order when copies were added, so they come before their users and the forward
// part (the first n_fwd nodes) is unchanged.
ggml_cgraph* TrainGraph::out_prods_as_mul_mats(ggml_context* ctx, ggml_cgraph* g, int n_fwd, bool rebuild_anyway, PassProfile& prof) const {
  const auto transposed = [ctx](ggml_tensor* t) {
    if (t->op == GGML_OP_TRANSPOSE && ggml_is_contiguous(t->src[0])) return t->src[0];  // (tᵀ)ᵀ = t
    return ggml_cont(ctx, ggml_transpose(ctx, t));
  };
  int rewritten = 0, own = 0;
  for (int i = n_fwd; i < ggml_graph_n_nodes(g); i++) {
    ggml_tensor* node = ggml_graph_node(g, i);
    if (node->op == GGML_OP_OUT_PROD && cpu_out_prod() && ggml_is_contiguous(node) && out_prod_supported(node->src[0], node->src[1])) {
      make_out_prod_cpu(node);  // same node, same operands: nothing to rebuild
      own++;
      continue;
    }
    if (node->op != GGML_OP_OUT_PROD || node->src[0]->type != GGML_TYPE_F32 || node->src[1]->type != GGML_TYPE_F32) continue;
    ggml_tensor* a = transposed(node->src[0]);
    ggml_tensor* b = transposed(node->src[1]);
    node->op = GGML_OP_MUL_MAT;
    node->src[0] = a;
    node->src[1] = b;
    rewritten++;
  }
  prof.as_stored = own;
  prof.as_mul_mats = rewritten;
  return rewritten > 0 || rebuild_anyway ? rebuild(ctx, g, n_fwd) : g;
}

// The same nodes rebuilt in dependency order, so nodes added by a rewrite come before their users.
ggml_cgraph* TrainGraph::rebuild(ggml_context* ctx, ggml_cgraph* g, int n_fwd) {
  ggml_cgraph* out = ggml_new_graph_custom(ctx, static_cast<size_t>(g->size), false);
  for (int i = 0; i < ggml_graph_n_nodes(g); i++) ggml_build_forward_expand(out, ggml_graph_node(g, i));
  if (ggml_graph_n_nodes(out) < n_fwd || ggml_graph_node(out, n_fwd - 1) != ggml_graph_node(g, n_fwd - 1)) {
    throw UserError("training: internal error rebuilding the backward graph (the forward part moved)");
  }
  return out;
}

std::vector<float> TrainGraph::logits(const PackedBatch& b) {
  upload_params();
  CtxGuard guard{graph_ctx(graph_nodes_)};
  ggml_tensor* in[4];
  ggml_tensor* logits = build_forward(guard.ctx, b, true, in);
  ggml_cgraph* g = ggml_new_graph_custom(guard.ctx, graph_nodes_, false);
  ggml_build_forward_expand(g, logits);
  check_ops_supported(g);
  if (!ggml_gallocr_alloc_graph(galloc_, g)) throw UserError("training: out of memory allocating the compute graph");
  set_inputs(in, b);
  compute(backend_, g, "forward");
  std::vector<float> out(ggml_nelements(logits));
  ggml_backend_tensor_get(logits, out.data(), 0, out.size() * sizeof(float));
  return out;
}

}  // namespace msr
