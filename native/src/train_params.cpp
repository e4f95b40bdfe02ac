// See train_params.h.
#include "train_params.h"

#include <cmath>
#include <cstring>

#include "common.h"
#include "llama-model.h"
#include "train_weight_reader.h"

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

// What one parameter will be: its name, shape, the weight it belongs to and whether it is a LoRA B.
struct Spec {
  std::string name;
  int64_t ne0, ne1;
  const ggml_tensor* base;
  bool is_b;
};

std::vector<Spec> param_specs(const llama_model& m, const TrainConfig& cfg, const std::vector<const ggml_tensor*>& weights) {
  std::vector<Spec> specs;
  if (cfg.mode == TrainMode::Full) {
    for (const ggml_tensor* w : weights) specs.push_back({w->name, w->ne[0], w->ne[1], w, false});
    return specs;
  }
  for (const auto& l : m.layers) {
    for (const ggml_tensor* w : {l.wq, l.wk, l.wv, l.wo, l.ffn_gate, l.ffn_up, l.ffn_down}) {
      const char* t = target_of(l, w);
      bool wanted = false;
      for (const auto& x : cfg.targets) wanted = wanted || x == t;
      if (!wanted) continue;
      specs.push_back({std::string(w->name) + ".lora_a", w->ne[0], cfg.rank, w, false});
      specs.push_back({std::string(w->name) + ".lora_b", cfg.rank, w->ne[1], w, true});
    }
  }
  return specs;
}

}  // namespace

std::vector<const ggml_tensor*> TrainParams::forward_weights(const llama_model& m) {
  // Biases and Q/K norms (Qwen2, Qwen3) are trained in full mode and frozen in LoRA mode.
  std::vector<const ggml_tensor*> weights{m.tok_embd, m.output_norm};
  if (m.output && std::strcmp(m.output->name, m.tok_embd->name) != 0) weights.push_back(m.output);
  for (const auto& l : m.layers) {
    for (const ggml_tensor* w : {l.attn_norm, l.wq, l.wq_b, l.wk, l.wk_b, l.wv, l.wv_b, l.attn_q_norm, l.attn_k_norm, l.wo, l.wo_b, l.ffn_norm,
                                 l.ffn_gate, l.ffn_gate_b, l.ffn_up, l.ffn_up_b, l.ffn_down, l.ffn_down_b}) {
      if (w) weights.push_back(w);
    }
  }
  return weights;
}

void TrainParams::init(const llama_model& m, const TrainConfig& cfg, const std::vector<const ggml_tensor*>& weights, WeightReader& reader) {
  mode_ = cfg.mode;
  if (cfg.mode == TrainMode::Lora) lora_scale_ = cfg.lora_alpha / static_cast<float>(cfg.rank);
  const std::vector<Spec> specs = param_specs(m, cfg, weights);
  ggml_init_params ip{ggml_tensor_overhead() * (3 * specs.size() + 8), nullptr, true};
  ctx_.reset(ggml_init(ip));
  ggml_context* ctx = ctx_.get();
  for (const auto& s : specs) {
    TrainParam p;
    p.name = s.name;
    p.base = s.base;
    // Norm weights stay 1-D so they broadcast (and their gradients reduce) exactly as the base's.
    p.value = ggml_n_dims(s.base) == 1 && cfg.mode == TrainMode::Full ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, s.ne0)
                                                                      : ggml_new_tensor_2d(ctx, GGML_TYPE_F32, s.ne0, s.ne1);
    ggml_set_name(p.value, s.name.c_str());
    ggml_set_param(p.value);
    p.grad = ggml_dup_tensor(ctx, p.value);
    ggml_format_name(p.grad, "grad_acc:%s", s.name.c_str());
    params_.push_back(p);
  }
  // CPU, LoRA rank not a multiple of 16: the products over the rank (B·(Ax) forward, Aᵀ·d(Ax)
  // backward) would run as length-r dot products outside ggml's tiled GEMM. Padding A and B with
  // zeros to the next multiple of 16 leaves B·A and every gradient of A and B unchanged (the
  // padded rows and columns get exactly zero gradient) and lets those products tile.
  const int64_t padded_rank = (cfg.rank + 15) / 16 * 16;
  if (!cfg.gpu && cfg.mode == TrainMode::Lora && padded_rank != cfg.rank) {
    // ggml_acc only reads the zeros: params of one padded shape share one zero tensor.
    for (const auto& p : params_) {
      const bool is_b = p.value->ne[0] == cfg.rank && p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".lora_b") == 0;
      const int64_t ne0 = is_b ? padded_rank : p.value->ne[0], ne1 = is_b ? p.value->ne[1] : padded_rank;
      ggml_tensor* z = nullptr;
      for (ggml_tensor* t : rank_pad_) {
        if (!z && t->ne[0] == ne0 && t->ne[1] == ne1) z = t;
      }
      rank_pad_.push_back(z ? z : ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne0, ne1));
    }
  }
  buf_.reset(ggml_backend_alloc_ctx_tensors_from_buft(ctx, ggml_backend_cpu_buffer_type()));
  if (!buf_) throw UserError("training: out of memory allocating the trainable parameters");
  for (ggml_tensor* z : rank_pad_) std::memset(z->data, 0, ggml_nbytes(z));

  SplitMix rng{cfg.seed * 0x100000001B3ull + 0x51ED27A1ull};
  for (size_t i = 0; i < params_.size(); i++) {
    TrainParam& p = params_[i];
    const Spec& s = specs[i];
    float* dst = p.data();
    if (cfg.mode == TrainMode::Full) {
      const std::vector<float> w = reader.f32(s.base);
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
}

void TrainParams::make_device_twins() {
  ggml_init_params ip{ggml_tensor_overhead() * (2 * params_.size() + 8), nullptr, true};
  dev_ctx_.reset(ggml_init(ip));
  for (auto& p : params_) {
    p.dev_value = ggml_dup_tensor(dev_ctx_.get(), p.value);
    ggml_set_name(p.dev_value, p.name.c_str());
    ggml_set_param(p.dev_value);
    p.dev_grad = ggml_dup_tensor(dev_ctx_.get(), p.grad);
    ggml_format_name(p.dev_grad, "grad_acc:%s", p.name.c_str());
  }
}

void TrainParams::allocate_device_twins(ggml_backend_t backend) {
  dev_buf_.reset(ggml_backend_alloc_ctx_tensors(dev_ctx_.get(), backend));
  if (!dev_buf_) throw UserError("training: out of GPU memory for the trainable parameters and weight copies; use a smaller model or LoRA mode");
}

const TrainParam* TrainParams::find(const std::string& name) const {
  for (const auto& p : params_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

bool TrainParams::is_base(const ggml_tensor* w) const {
  if (mode_ != TrainMode::Full) return false;
  for (const auto& [b, i] : index_) {
    if (b == w) return true;
  }
  return false;
}

ggml_tensor* TrainParams::full_value(const ggml_tensor* base) const {
  if (mode_ != TrainMode::Full) return nullptr;
  for (const auto& [b, i] : index_) {
    if (b == base || std::strcmp(b->name, base->name) == 0) return params_[i].graph_value();
  }
  return nullptr;
}

bool TrainParams::lora(const ggml_tensor* base, LoraPair* out) const {
  if (mode_ != TrainMode::Lora) return false;
  for (const auto& [b, i] : index_) {
    if (b != base) continue;
    out->a = params_[i].graph_value();
    out->b = params_[i + 1].graph_value();
    out->pad_a = rank_pad_.empty() ? nullptr : rank_pad_[i];
    out->pad_b = rank_pad_.empty() ? nullptr : rank_pad_[i + 1];
    return true;
  }
  return false;
}

void TrainParams::zero_grads() {
  for (auto& p : params_) std::memset(p.grad->data, 0, ggml_nbytes(p.grad));
}

void TrainParams::upload() {
  for (auto& p : params_) {
    if (p.dev_value) ggml_backend_tensor_set(p.dev_value, p.value->data, 0, ggml_nbytes(p.value));
  }
}

void TrainParams::zero_device_grads() {
  for (auto& p : params_) {
    if (p.dev_grad) ggml_backend_tensor_memset(p.dev_grad, 0, 0, ggml_nbytes(p.dev_grad));
  }
}

void TrainParams::add_device_grads() {
  std::vector<float> g;
  for (auto& p : params_) {
    if (!p.dev_grad) continue;
    g.resize(static_cast<size_t>(p.numel()));
    ggml_backend_tensor_get(p.dev_grad, g.data(), 0, ggml_nbytes(p.dev_grad));
    float* acc = p.grad_data();
    for (int64_t j = 0; j < p.numel(); j++) acc[j] += g[j];
  }
}

}  // namespace msr
