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
// dLoss/dh = Woutᵀ G (one product; in full mode also dWout = h Gᵀ) is installed as the gradient
// of the final hidden rows h (ggml_build_backward_expand's grad_accs slot for that node), so
// ggml's autodiff continues from the exact gradient: no [rows × vocab] label matrix and no
// logits-sized op beyond the two products every backward needs. One graph is allocated for
// forward+backward and computed in two views (nodes before and after the logits), so nothing of
// the forward is recomputed. Parameter gradients go into persistent accumulators (grad_accs
// again), so micro-batches of one step simply add up. The forward multiplies with the weights as
// stored (F16, BF16 or quantized; weights llama.cpp repacked are multiplied as repacked and read
// from its mapping of the file in the backward, train_weights.h); the backward's products with
// frozen weights are rewritten per device (train_backward.h). The graph runs on the CPU backend
// with the model's thread count, or (device 'gpu') on the GPU backend with device twins of the
// parameters; the host copies stay the source of truth, so the optimizer, checkpoints and tests
// see one set of numbers on either device (train_params.h).
//
// Map: rope_params (what llama.cpp would do) · init (backend, parameters, frozen weights) ·
// weight/product_weight/project/build_forward (the forward above) · fused_ce · run (forward, fused
// CE, backward) · logits (the forward alone).
#include "train_graph.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "fused_ce.h"
#include "ggml-cpu.h"
#ifdef MSR_REC_CUDA
#include "ggml-cuda.h"
#endif
#include "llama-model.h"
#include "train_arch.h"
#include "train_weight_reader.h"
// ggml_graph_view (compute a node range of a graph with its use counts) is internal to ggml.
#include "../ggml/src/ggml-impl.h"

namespace msr {

namespace {

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

}  // namespace

TrainGraph::TrainGraph(ModelPtr model, const TrainConfig& cfg) : model_(std::move(model)), cfg_(cfg) { init(); }

// A constructor that throws runs no destructor of its own, but every member made so far is an
// owner (backend, parameters, weight copies) and frees itself as the error travels on.
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
  }
  if (cfg_.gpu) {
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_GPU);
    if (!dev) {
      throw UserError("training on the GPU: this build of the addon has no GPU backend (or no GPU is visible); build it with "
                      "`npm run build:cuda` on a machine with nvcc, or train with device: 'cpu'");
    }
    backend_.reset(ggml_backend_dev_init(dev, nullptr));
    if (!backend_) throw UserError(std::string("training: could not start the GPU backend (") + ggml_backend_dev_description(dev) + ")");
  } else {
    backend_.reset(ggml_backend_cpu_init());
    if (!backend_) throw UserError("training: could not start ggml's CPU backend");
    ggml_backend_cpu_set_n_threads(backend_.get(), std::max(1, cfg_.n_threads));
  }
  backward_.gpu = cfg_.gpu;
  backward_.out_prod_cpu = !cfg_.gpu && !cfg_.dev.transposed_backward;
  backward_.slice_bytes = cfg_.dev.slice_mb * 1048576.0;

  WeightReader reader(model_->path);  // only needed to make the copies and transposes
  const std::vector<const ggml_tensor*> forward = TrainParams::forward_weights(m);
  if (!cfg_.gpu) {
    // What the graph reads but never trains: everything in LoRA mode (the tied output is its own
    // tensor object), else only RoPE factors and an output bias.
    std::vector<const ggml_tensor*> frozen;
    if (cfg_.mode == TrainMode::Lora) {
      frozen = forward;
      frozen.push_back(output_weight(m));
    }
    if (m.output_b) frozen.push_back(m.output_b);
    for (const auto& l : m.layers) {
      if (l.rope_freqs) frozen.push_back(l.rope_freqs);
    }
    weights_.make_host_copies(m, frozen, reader);
  }
  params_.init(m, cfg_, forward, reader);
  if (cfg_.gpu) {
    // Device twins of the params, and a device copy of every frozen weight the forward reads that
    // is not already in memory the GPU backend can use (a model loaded with gpuLayers keeps most of
    // its weights there; token embeddings stay on the host).
    params_.make_device_twins();
    std::vector<const ggml_tensor*> on_device;
    for (const ggml_tensor* w : forward) {
      if (!params_.is_base(w)) on_device.push_back(w);
    }
    for (const auto& l : m.layers) {
      if (l.rope_freqs) on_device.push_back(l.rope_freqs);
    }
    if (cfg_.mode == TrainMode::Lora) on_device.push_back(output_weight(m));  // a tied output is its own tensor object
    if (m.output_b) on_device.push_back(m.output_b);
    weights_.make_device_copies(m, backend_.get(), on_device);
  }
  weights_.plan_transposes(m, cfg_, backend_.get());
  if (cfg_.gpu) params_.allocate_device_twins(backend_.get());
  weights_.allocate(backend_.get(), cfg_.gpu, reader);
  galloc_.reset(ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_.get())));
}

std::string TrainGraph::device_name() const {
  ggml_backend_dev_t dev = ggml_backend_get_device(backend_.get());
  return dev ? ggml_backend_dev_description(dev) : ggml_backend_name(backend_.get());
}

double TrainGraph::compute_bytes() const { return galloc_ ? static_cast<double>(ggml_gallocr_get_buffer_size(galloc_.get(), 0)) : 0.0; }

void TrainGraph::check_ops_supported(ggml_cgraph* g) const {
  if (!on_gpu()) return;
  for (int i = 0; i < ggml_graph_n_nodes(g); i++) {
    ggml_tensor* node = ggml_graph_node(g, i);
    if (!ggml_backend_supports_op(backend_.get(), node)) {
      throw UserError(std::string("training on the GPU: ") + device_name() + " cannot run the graph's " + ggml_op_desc(node) + " (" +
                      node->name + ", src0 type " + (node->src[0] ? ggml_type_name(node->src[0]->type) : "-") +
                      "); train on the CPU, or raise the trainer's transposeBudgetMb option so the backward uses transposed weights");
    }
  }
}

ggml_tensor* TrainGraph::weight(const ggml_tensor* base) const {
  if (ggml_tensor* p = params_.full_value(base)) return p;
  return weights_.stored(base);
}

ggml_tensor* TrainGraph::product_weight(const ggml_tensor* base) const { return weights_.for_product(base, weight(base), cfg_.gpu); }

ggml_tensor* TrainGraph::project(ggml_context* ctx, const ggml_tensor* w, const ggml_tensor* bias, ggml_tensor* x) const {
  ggml_tensor* y = project(ctx, w, x);
  // llama.cpp adds a projection's bias after the LoRA term (build_qkv, build_ffn, build_attn).
  return bias ? ggml_add(ctx, y, weight(bias)) : y;
}

ggml_tensor* TrainGraph::project(ggml_context* ctx, const ggml_tensor* w, ggml_tensor* x) const {
  ggml_tensor* y = ggml_mul_mat(ctx, product_weight(w), x);
  LoraPair lora;
  if (params_.lora(w, &lora)) {
    ggml_tensor* a = lora.a;   // (in, r)
    ggml_tensor* bm = lora.b;  // (r, out)
    if (lora.pad_a) {
      // Zero-padded to a rank the CPU GEMM tiles (see LoraPair): A' = [A; 0], B' = [B, 0].
      a = ggml_acc(ctx, lora.pad_a, a, lora.pad_a->nb[1], lora.pad_a->nb[2], lora.pad_a->nb[3], 0);
      bm = ggml_acc(ctx, lora.pad_b, bm, lora.pad_b->nb[1], lora.pad_b->nb[2], lora.pad_b->nb[3], 0);
    }
    ggml_tensor* ab = ggml_mul_mat(ctx, bm, ggml_mul_mat(ctx, a, x));
    y = ggml_add(ctx, y, ggml_scale(ctx, ab, params_.lora_scale()));
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
  ggml_tensor* logits = ggml_mul_mat(ctx, product_weight(output_weight(m)), h);  // (n_vocab, R)
  if (m.output_b) logits = ggml_add(ctx, logits, weight(m.output_b));  // frozen in both modes
  ggml_set_name(logits, "logits");
  ggml_set_output(logits);
  return logits;
}

double TrainGraph::fused_ce(const ggml_tensor* logits, const PackedBatch& b, ggml_tensor* G, std::vector<float>& row_logprobs) const {
  const int64_t R = static_cast<int64_t>(b.rows.size());
  row_logprobs.resize(R);
  if (!on_gpu()) {
    float* grad = G ? static_cast<float*>(G->data) : nullptr;
    return fused_ce_cpu(static_cast<const float*>(logits->data), R, n_vocab_, n_vocab_, b.targets.data(), b.weights.data(),
                        row_logprobs.data(), grad, n_vocab_, std::max(1, cfg_.n_threads));
  }
#ifdef MSR_REC_CUDA
  if (ggml_backend_is_cuda(backend_.get())) {
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
  params_.upload();
  ggml_context_ptr ctx_owner(graph_ctx(graph_nodes_));
  ggml_context* ctx = ctx_owner.get();
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
    ggml_tensor* w_out = weight(output_weight(*model_->model));
    ggml_tensor* dh = output_backward(ctx, backward_, weights_, w_out, G);  // (n_embd, R) = Woutᵀ G
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
      for (auto& p : params_.all()) {
        if (node == p.graph_value()) grad_accs[i] = p.graph_grad();
        if (p.graph_value() == w_out) w_out_grad = p.graph_grad();
      }
    }
    ggml_build_backward_expand(ctx, g, grad_accs.data());
    if (!on_gpu()) read_stored_weights(g, n_fwd, weights_);
    const bool added = use_transposed_weights(ctx, backward_, weights_, g, n_fwd, res.profile);
    // Full mode: dWout = h Gᵀ, added after the autodiff so it never tries to differentiate it.
    if (w_out_grad) ggml_build_forward_expand(g, ggml_add_inplace(ctx, w_out_grad, ggml_out_prod(ctx, h, G)));
    g = finish_backward(ctx, backward_, g, n_fwd, added, res.profile);
  }
  check_ops_supported(g);
  if (!ggml_gallocr_alloc_graph(galloc_.get(), g)) throw UserError("training: out of memory allocating the compute graph; lower microBatchTokens");
  set_inputs(in, b);
  if (backward && on_gpu()) params_.zero_device_grads();

  using clock = std::chrono::steady_clock;
  const bool by_node = cfg_.dev.profile_nodes, single_thread = cfg_.n_threads <= 1;
  PassProfile& prof = res.profile;
  const auto t0 = clock::now();
  ggml_cgraph fwd = ggml_graph_view(g, 0, n_fwd);
  if (by_node) prof.forward_nodes = time_nodes(backend_.get(), g, 0, n_fwd, "forward", single_thread);
  else compute(backend_.get(), &fwd, "forward");
  const auto t1 = clock::now();
  res.weighted_loss = b.policy ? fused_policy(logits, b, G, res) : fused_ce(logits, b, G, res.row_logprobs);
  const auto t2 = clock::now();
  if (backward) {
    ggml_cgraph bwd = ggml_graph_view(g, n_fwd, ggml_graph_n_nodes(g));
    if (by_node) prof.backward_nodes = time_nodes(backend_.get(), g, n_fwd, ggml_graph_n_nodes(g), "backward", single_thread);
    else compute(backend_.get(), &bwd, "backward");
    if (on_gpu()) params_.add_device_grads();
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
    prof.compute_bytes = static_cast<double>(ggml_gallocr_get_buffer_size(galloc_.get(), 0));
  }
  return res;
}

std::vector<float> TrainGraph::logits(const PackedBatch& b) {
  params_.upload();
  ggml_context_ptr ctx(graph_ctx(graph_nodes_));
  ggml_tensor* in[4];
  ggml_tensor* logits = build_forward(ctx.get(), b, true, in);
  ggml_cgraph* g = ggml_new_graph_custom(ctx.get(), graph_nodes_, false);
  ggml_build_forward_expand(g, logits);
  check_ops_supported(g);
  if (!ggml_gallocr_alloc_graph(galloc_.get(), g)) throw UserError("training: out of memory allocating the compute graph");
  set_inputs(in, b);
  compute(backend_.get(), g, "forward");
  std::vector<float> out(ggml_nelements(logits));
  ggml_backend_tensor_get(logits, out.data(), 0, out.size() * sizeof(float));
  return out;
}

}  // namespace msr
