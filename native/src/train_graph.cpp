// The training graph for LLaMA-family models, built by hand in ggml from the llama_model's tensors.
//
// Why not llama_opt_*: it trains only model tensors (no adapters), its graph writes K/V through the
// KV cache (ggml_set_rows has no backward, so attn_k/attn_v would get no gradient), and
// ggml_cross_entropy_loss assumes label rows summing to 1 (per-token weights give a wrong gradient).
// So this file rebuilds llama.cpp's LLaMA forward (src/models/llama.cpp) on the current
// micro-batch only, with K and V taken from the batch itself:
//
//   x = tok_embd[tokens]                                       (n_embd, T)
//   per layer: h = rms_norm(x)·attn_norm
//              q,k,v = W{q,k,v} h (+ s·B(A h)), RoPE(q,k)  (same mode/theta/scaling as llama.cpp)
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
// again), so micro-batches of one step simply add up. In LoRA mode the backward's dx = Wᵀ dy of
// the frozen projections runs as mul_mat on cached transposes (use_transposed_weights). Everything
// runs on the CPU backend with the model's thread count.
//
// Map: rope_params/check_supported (what llama.cpp would do, what we refuse) · TrainGraph ctor and
// init_params (parameters, LoRA init, transposed caches) · project/build_forward (the forward
// above) · use_transposed_weights · run (forward, fused CE, backward) · logits (tests).
#include "train_graph.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>

#include "fused_ce.h"
#include "ggml-cpu.h"
#include "llama-model.h"
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

void check_supported(const llama_model& m) {
  if (m.arch != LLM_ARCH_LLAMA) {
    throw UserError("training supports LLaMA-architecture models only (this model is '" + m.arch_name() +
                    "'); convert or choose a LLaMA-family GGUF");
  }
  const auto& hp = m.hparams;
  if (hp.n_expert > 0) throw UserError("training: mixture-of-experts models are not supported (MUL_MAT_ID has no backward)");
  if (hp.use_kq_norm || hp.f_clamp_kqv > 0.f) throw UserError("training: Q/K norm and KQV clamping are not supported");
  for (const auto& l : m.layers) {
    if (!l.wq || !l.wk || !l.wv || l.wqkv) throw UserError("training: fused QKV weights are not supported; use a GGUF with separate attn_q/attn_k/attn_v");
    if (l.wq_b || l.wk_b || l.wv_b || l.wo_b || l.ffn_gate_b || l.ffn_up_b || l.ffn_down_b) throw UserError("training: projection biases are not supported");
    if (l.wq_s || l.wk_s || l.wv_s || l.wo_s || l.ffn_gate_s || l.ffn_up_s || l.ffn_down_s) throw UserError("training: per-channel weight scales are not supported");
    if (!l.ffn_gate || !l.ffn_up || !l.ffn_down) throw UserError("training: the model has no gated MLP (ffn_gate/ffn_up/ffn_down)");
  }
}

constexpr size_t kGraphNodes = 1 << 16;

}  // namespace

TrainGraph::TrainGraph(ModelPtr model, const TrainConfig& cfg) : model_(std::move(model)), cfg_(cfg) {
  const llama_model& m = *model_->model;
  check_supported(m);
  n_vocab_ = model_->n_vocab;
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
  backend_ = ggml_backend_cpu_init();
  if (!backend_) throw UserError("training: could not start ggml's CPU backend");
  ggml_backend_cpu_set_n_threads(backend_, std::max(1, cfg_.n_threads));
  init_params();
  galloc_ = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_));
}

TrainGraph::~TrainGraph() {
  if (galloc_) ggml_gallocr_free(galloc_);
  if (param_buf_) ggml_backend_buffer_free(param_buf_);
  if (param_ctx_) ggml_free(param_ctx_);
  if (backend_) ggml_backend_free(backend_);
}

void TrainGraph::init_params() {
  const llama_model& m = *model_->model;
  // Every weight of the forward, in a fixed order (names are unique: a tied output is skipped).
  std::vector<const ggml_tensor*> weights{m.tok_embd, m.output_norm};
  if (m.output && std::strcmp(m.output->name, m.tok_embd->name) != 0) weights.push_back(m.output);
  for (const auto& l : m.layers) {
    for (const ggml_tensor* w : {l.attn_norm, l.wq, l.wk, l.wv, l.wo, l.ffn_norm, l.ffn_gate, l.ffn_up, l.ffn_down}) weights.push_back(w);
  }
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
        if (!ggml_backend_buffer_is_host(w->buffer)) {
          throw UserError("training: the model's weights are not in host memory; load it with gpuLayers: 0 to train");
        }
        specs.push_back({std::string(w->name) + ".lora_a", w->ne[0], cfg_.rank, w, false});
        specs.push_back({std::string(w->name) + ".lora_b", cfg_.rank, w->ne[1], w, true});
      }
    }
  }
  ggml_init_params ip{ggml_tensor_overhead() * (2 * specs.size() + 8 * m.layers.size() + 8), nullptr, true};
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
  const ggml_tensor* w_out = output_weight();
  if (cfg_.mode == TrainMode::Lora) output_t_ = ggml_new_tensor_2d(param_ctx_, GGML_TYPE_F32, w_out->ne[1], w_out->ne[0]);
  if (cfg_.mode == TrainMode::Lora) {
    const char* env = std::getenv("MSR_REC_TRAIN_TRANSPOSE_MB");
    const double cap = (env ? std::atof(env) : 2048.0) * 1024 * 1024;
    double bytes = 0;
    std::vector<const ggml_tensor*> frozen;
    for (const auto& l : m.layers) {
      for (const ggml_tensor* w : {l.wq, l.wk, l.wv, l.wo, l.ffn_gate, l.ffn_up, l.ffn_down}) {
        frozen.push_back(w);
        bytes += 4.0 * static_cast<double>(ggml_nelements(w));
      }
    }
    if (bytes <= cap) {
      for (const ggml_tensor* w : frozen) frozen_t_.push_back({w, ggml_new_tensor_2d(param_ctx_, GGML_TYPE_F32, w->ne[1], w->ne[0])});
    }
  }
  param_buf_ = ggml_backend_alloc_ctx_tensors(param_ctx_, backend_);
  if (!param_buf_) throw UserError("training: out of memory allocating the trainable parameters");
  // dst (ne1, ne0) = srcᵀ as F32, dequantizing when needed.
  auto transpose_into = [](const ggml_tensor* src, ggml_tensor* dst) {
    const int64_t ne0 = src->ne[0], ne1 = src->ne[1];
    std::vector<float> w(static_cast<size_t>(ne0 * ne1));
    if (src->type == GGML_TYPE_F32) {
      ggml_backend_tensor_get(src, w.data(), 0, ggml_nbytes(src));
    } else {
      std::vector<uint8_t> raw(ggml_nbytes(src));
      ggml_backend_tensor_get(src, raw.data(), 0, raw.size());
      const auto* traits = ggml_get_type_traits(src->type);
      if (!traits->to_float) throw UserError(std::string("training: cannot dequantize weight type ") + ggml_type_name(src->type));
      traits->to_float(raw.data(), w.data(), ne0 * ne1);
    }
    float* t = static_cast<float*>(dst->data);
    for (int64_t j = 0; j < ne1; j++) {
      for (int64_t i = 0; i < ne0; i++) t[i * ne1 + j] = w[j * ne0 + i];
    }
  };
  if (output_t_) transpose_into(w_out, output_t_);
  for (auto& [w, t] : frozen_t_) transpose_into(w, t);

  SplitMix rng{cfg_.seed * 0x100000001B3ull + 0x51ED27A1ull};
  for (size_t i = 0; i < params_.size(); i++) {
    TrainParam& p = params_[i];
    const Spec& s = specs[i];
    float* dst = p.data();
    if (cfg_.mode == TrainMode::Full) {
      const ggml_tensor* w = s.base;
      if (w->type == GGML_TYPE_F32) {
        ggml_backend_tensor_get(w, dst, 0, ggml_nbytes(w));
      } else {
        std::vector<uint8_t> raw(ggml_nbytes(w));
        ggml_backend_tensor_get(w, raw.data(), 0, raw.size());
        const auto* traits = ggml_get_type_traits(w->type);
        if (!traits->to_float) throw UserError(std::string("training: cannot dequantize weight type ") + ggml_type_name(w->type));
        traits->to_float(raw.data(), dst, ggml_nelements(w));
      }
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

const ggml_tensor* TrainGraph::output_weight() const {
  const llama_model& m = *model_->model;
  return m.output ? m.output : m.tok_embd;
}

ggml_tensor* TrainGraph::weight(const ggml_tensor* base) const {
  if (cfg_.mode == TrainMode::Full) {
    for (const auto& [b, i] : index_) {
      if (b == base || std::strcmp(b->name, base->name) == 0) return params_[i].value;
    }
  }
  return const_cast<ggml_tensor*>(base);
}

ggml_tensor* TrainGraph::project(ggml_context* ctx, const ggml_tensor* w, ggml_tensor* x) const {
  ggml_tensor* y = ggml_mul_mat(ctx, weight(w), x);
  if (cfg_.mode == TrainMode::Lora) {
    for (const auto& [b, i] : index_) {
      if (b != w) continue;
      ggml_tensor* ab = ggml_mul_mat(ctx, params_[i + 1].value, ggml_mul_mat(ctx, params_[i].value, x));
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
    ggml_tensor* q = ggml_reshape_3d(ctx, project(ctx, l.wq, h), hd, n_head, T);
    ggml_tensor* k = ggml_reshape_3d(ctx, project(ctx, l.wk, h), hd, n_kv, T);
    ggml_tensor* v = ggml_reshape_3d(ctx, project(ctx, l.wv, h), hd, n_kv, T);
    q = ggml_rope_ext(ctx, q, pos, l.rope_freqs, rp.n_rot, rp.mode, rp.n_ctx_orig, rp.freq_base, rp.freq_scale,
                      rp.ext_factor, rp.attn_factor, rp.beta_fast, rp.beta_slow);
    k = ggml_rope_ext(ctx, k, pos, l.rope_freqs, rp.n_rot, rp.mode, rp.n_ctx_orig, rp.freq_base, rp.freq_scale,
                      rp.ext_factor, rp.attn_factor, rp.beta_fast, rp.beta_slow);
    ggml_tensor* qp = ggml_permute(ctx, q, 0, 2, 1, 3);                 // (hd, T, n_head)
    ggml_tensor* kp = ggml_permute(ctx, k, 0, 2, 1, 3);                 // (hd, T, n_kv)
    ggml_tensor* kq = ggml_mul_mat(ctx, kp, qp);                        // (T_k, T_q, n_head), kv head = head / (n_head/n_kv)
    kq = ggml_soft_max_ext(ctx, kq, mask, kq_scale, 0.f);
    ggml_tensor* vt = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));  // (T, hd, n_kv)
    ggml_tensor* o = ggml_mul_mat(ctx, vt, kq);                          // (hd, T_q, n_head)
    o = ggml_cont_2d(ctx, ggml_permute(ctx, o, 0, 2, 1, 3), hd * n_head, T);
    x = ggml_add(ctx, project(ctx, l.wo, o), x);

    h = ggml_mul(ctx, ggml_rms_norm(ctx, x, eps), weight(l.ffn_norm));
    ggml_tensor* act = ggml_swiglu_split(ctx, project(ctx, l.ffn_gate, h), project(ctx, l.ffn_up, h));
    x = ggml_add(ctx, project(ctx, l.ffn_down, act), x);
  }
  ggml_tensor* h = ggml_mul(ctx, ggml_rms_norm(ctx, x, eps), weight(m.output_norm));
  if (rows) h = ggml_get_rows(ctx, h, rows);
  if (h_out) *h_out = h;
  ggml_tensor* logits = ggml_mul_mat(ctx, weight(output_weight()), h);  // (n_vocab, R)
  ggml_set_name(logits, "logits");
  ggml_set_output(logits);
  return logits;
}

// Rewrites backward nodes dx = out_prod(W, transpose(dy)) with a frozen W into the equivalent
// mul_mat(Wᵀ, dy) on the cached transpose: same shape and values, done before allocation.
void TrainGraph::use_transposed_weights(ggml_cgraph* g, int first_node) const {
  if (frozen_t_.empty()) return;
  int rewritten = 0, out_prods = 0;
  for (int i = first_node; i < ggml_graph_n_nodes(g); i++) {
    ggml_tensor* node = ggml_graph_node(g, i);
    out_prods += node->op == GGML_OP_OUT_PROD;
    if (node->op != GGML_OP_OUT_PROD || !node->src[1] || node->src[1]->op != GGML_OP_TRANSPOSE) continue;
    for (const auto& [w, wt] : frozen_t_) {
      if (node->src[0] != w) continue;
      ggml_tensor* dy = node->src[1]->src[0];
      // (dy gains a use the graph's use counts do not know of; only an RMS_NORM output could be
      // affected by that, through the CPU's rms_norm+mul fusion, and a gradient never is one.)
      if (dy->op == GGML_OP_RMS_NORM || dy->ne[0] != wt->ne[0] || dy->ne[1] != node->ne[1] || dy->ne[2] != 1 || dy->ne[3] != 1) break;
      node->op = GGML_OP_MUL_MAT;
      node->src[0] = wt;
      node->src[1] = dy;
      rewritten++;
      break;
    }
  }
  if (std::getenv("MSR_REC_TRAIN_PROFILE")) std::fprintf(stderr, "msr-rec train: %d of %d out_prod nodes use transposed weights\n", rewritten, out_prods);
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

ggml_context* graph_ctx() {
  ggml_init_params ip{ggml_tensor_overhead() * kGraphNodes + ggml_graph_overhead_custom(kGraphNodes, true) * 2, nullptr, true};
  return ggml_init(ip);
}

void compute(ggml_backend_t backend, ggml_cgraph* g, const char* what) {
  if (ggml_backend_graph_compute(backend, g) != GGML_STATUS_SUCCESS) {
    throw UserError(std::string("training: ggml failed to compute the ") + what + " graph (out of memory?)");
  }
}

}  // namespace

PassResult TrainGraph::run(const PackedBatch& b, bool backward) {
  PassResult res;
  const int64_t R = static_cast<int64_t>(b.rows.size());
  if (R == 0) return res;
  CtxGuard guard{graph_ctx()};
  ggml_context* ctx = guard.ctx;
  ggml_tensor* in[4];
  ggml_tensor* h = nullptr;
  ggml_tensor* logits = build_forward(ctx, b, false, in, &h);
  ggml_cgraph* g = ggml_new_graph_custom(ctx, kGraphNodes, backward);
  ggml_build_forward_expand(g, logits);
  const int n_fwd = ggml_graph_n_nodes(g);
  ggml_tensor* G = nullptr;
  if (backward) {
    G = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n_vocab_, R);
    ggml_set_name(G, "dloss_dlogits");
    ggml_set_input(G);
    ggml_tensor* w_out = weight(output_weight());
    ggml_tensor* w_t = output_t_ ? output_t_ : ggml_cont(ctx, ggml_transpose(ctx, w_out));  // (n_vocab, n_embd)
    ggml_tensor* dh = ggml_mul_mat(ctx, w_t, G);                                               // (n_embd, R) = Woutᵀ G
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
        if (node == p.value) grad_accs[i] = p.grad;
        if (p.value == w_out) w_out_grad = p.grad;
      }
    }
    ggml_build_backward_expand(ctx, g, grad_accs.data());
    use_transposed_weights(g, n_fwd);
    // Full mode: dWout = h Gᵀ, added after the autodiff so it never tries to differentiate it.
    if (w_out_grad) ggml_build_forward_expand(g, ggml_add_inplace(ctx, w_out_grad, ggml_out_prod(ctx, h, G)));
  }
  if (!ggml_gallocr_alloc_graph(galloc_, g)) throw UserError("training: out of memory allocating the compute graph; lower microBatchTokens");
  set_inputs(in, b);

  // MSR_REC_TRAIN_PROFILE=1 prints the time of each phase of every micro-batch to stderr.
  static const bool profile = std::getenv("MSR_REC_TRAIN_PROFILE") != nullptr;
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  ggml_cgraph fwd = ggml_graph_view(g, 0, n_fwd);
  compute(backend_, &fwd, "forward");
  const auto t1 = clock::now();
  res.row_logprobs.resize(R);
  float* grad = backward ? static_cast<float*>(G->data) : nullptr;
  res.weighted_loss = fused_ce_cpu(static_cast<const float*>(logits->data), R, n_vocab_, n_vocab_, b.targets.data(),
                                   b.weights.data(), res.row_logprobs.data(), grad, n_vocab_, std::max(1, cfg_.n_threads));
  const auto t2 = clock::now();
  if (backward) {
    ggml_cgraph bwd = ggml_graph_view(g, n_fwd, ggml_graph_n_nodes(g));
    compute(backend_, &bwd, "backward");
  }
  if (profile) {
    const auto ms = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::fprintf(stderr, "msr-rec train: T=%zu R=%lld forward %.1f ms, fused CE %.1f ms, backward %.1f ms (%d nodes)\n", b.tokens.size(),
                 static_cast<long long>(R), ms(t0, t1), ms(t1, t2), ms(t2, clock::now()), ggml_graph_n_nodes(g));
  }
  return res;
}

std::vector<float> TrainGraph::logits(const PackedBatch& b) {
  CtxGuard guard{graph_ctx()};
  ggml_tensor* in[4];
  ggml_tensor* logits = build_forward(guard.ctx, b, true, in);
  ggml_cgraph* g = ggml_new_graph_custom(guard.ctx, kGraphNodes, false);
  ggml_build_forward_expand(g, logits);
  if (!ggml_gallocr_alloc_graph(galloc_, g)) throw UserError("training: out of memory allocating the compute graph");
  set_inputs(in, b);
  compute(backend_, g, "forward");
  std::vector<float> out(ggml_nelements(logits));
  ggml_backend_tensor_get(logits, out.data(), 0, out.size() * sizeof(float));
  return out;
}

}  // namespace msr
