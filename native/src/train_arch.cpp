// What can be trained (see train_arch.h). The checks read only the model's structure, so they run
// before the trainer allocates anything and on a model loaded with no_alloc (trainability()).
#include "train_arch.h"

#include <cstdio>

#include "gguf_check.h"
#include "llama-cpp.h"
#include "llama-model.h"
#include "path_check.h"
#include "train_config.h"

namespace msr {

const char* const kSupportedFamilies =
    "the LLaMA family (GGUF architecture 'llama': Llama 2, 3, 3.1, 3.2, Mistral 7B), Qwen2/Qwen2.5 ('qwen2') and dense Qwen3 ('qwen3')";

bool is_quantized(int type) { return type != GGML_TYPE_F32 && type != GGML_TYPE_F16 && type != GGML_TYPE_BF16; }

namespace {

std::string refuse(const std::string& why) { return "training: " + why + "; training supports " + kSupportedFamilies; }

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f GB", bytes / 1e9);
  return buf;
}

}  // namespace

std::string training_refusal(const llama_model& m, TrainMode mode, bool dequantize) {
  if (m.arch != LLM_ARCH_LLAMA && m.arch != LLM_ARCH_QWEN2 && m.arch != LLM_ARCH_QWEN3) {
    return refuse("this model's architecture is '" + m.arch_name() + "', which has no training graph (MoE, fused QKV, Gemma, Phi and other layouts are not rebuilt)");
  }
  const auto& hp = m.hparams;
  if (hp.n_expert > 0) return refuse("mixture-of-experts models are not supported (MUL_MAT_ID has no backward)");
  if (hp.use_kq_norm) return refuse("Llama 4-style Q/K L2 norms are not supported");
  if (hp.f_clamp_kqv > 0.f) return refuse("clamped Q/K/V projections are not supported");
  if (hp.swa_type != LLAMA_SWA_TYPE_NONE) return refuse("sliding-window attention is not supported");
  const float ext = hp.yarn_ext_factor >= 0.f ? hp.yarn_ext_factor : (hp.rope_scaling_type_train == LLAMA_ROPE_SCALING_TYPE_YARN ? 1.f : 0.f);
  if (ext != 0.f) return refuse("YaRN RoPE scaling is not supported; use a model without YaRN scaling");
  if (m.layers.empty() || !m.tok_embd || !m.output_norm) return refuse("the model has no layers, token embeddings or output norm");
  for (size_t il = 0; il < m.layers.size(); il++) {
    const llama_layer& l = m.layers[il];
    if (l.wqkv) return refuse("fused QKV weights (attn_qkv) are not supported; use a GGUF with separate attn_q/attn_k/attn_v");
    if (!l.wq || !l.wk || !l.wv || !l.wo) return refuse("layer " + std::to_string(il) + " has no separate attn_q/attn_k/attn_v/attn_output weights");
    if (l.ffn_gate_inp) return refuse("mixture-of-experts layers are not supported (MUL_MAT_ID has no backward)");
    if (!l.ffn_gate || !l.ffn_up || !l.ffn_down) return refuse("the model has no gated MLP (ffn_gate/ffn_up/ffn_down)");
    if (l.wq_s || l.wk_s || l.wv_s || l.wo_s || l.ffn_gate_s || l.ffn_up_s || l.ffn_down_s) return refuse("per-channel weight scales are not supported");
    if (l.attn_q_norm_b || l.attn_k_norm_b) return refuse("Q/K norms with biases are not supported");
    if (hp.n_embd_head_k(il) != hp.n_embd_head_v(il)) return refuse("K and V head sizes differ");
    for (const ggml_tensor* w : {l.wq, l.wk, l.wv, l.wo, l.ffn_gate, l.ffn_up, l.ffn_down}) {
      if (w->type != GGML_TYPE_F32 && !ggml_get_type_traits(w->type)->to_float) return refuse(std::string("weight type ") + ggml_type_name(w->type) + " cannot be read by ggml");
    }
  }
  if (mode == TrainMode::Full && !dequantize) {
    double params = 0;
    const ggml_tensor* quantized = nullptr;
    const auto visit = [&](const ggml_tensor* w) {
      if (!w) return;
      params += static_cast<double>(ggml_nelements(w));
      if (!quantized && is_quantized(w->type)) quantized = w;
    };
    visit(m.tok_embd);
    visit(m.output);
    for (const auto& l : m.layers) {
      for (const ggml_tensor* w : {l.wq, l.wk, l.wv, l.wo, l.ffn_gate, l.ffn_up, l.ffn_down}) visit(w);
    }
    if (quantized) {
      return std::string("training: full mode on a quantized model (") + quantized->name + " is " + ggml_type_name(quantized->type) +
             ") trains F32 copies of every weight (" + gib(4 * params) + ", and as much again for the gradients and each AdamW moment) and " +
             "saveModel writes them as F32; pass dequantize: true to createTrainer to accept that, or train a LoRA adapter " +
             "(mode 'lora'), which uses the quantized weights as they are";
    }
  }
  return "";
}

void check_trainable(const llama_model& m, TrainMode mode, bool dequantize) {
  const std::string why = training_refusal(m, mode, dequantize);
  if (!why.empty()) throw UserError(why);
}

// trainability(path): the model is loaded with no_alloc (structure and types only, no weights
// read), so it is quick for any size.
Napi::Value Trainability(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "trainability(path: string)");
  const std::string path = get_path(info[0], "path");
  struct Out {
    std::string arch, lora, full, full_dequantize;
  };
  auto out = std::make_shared<Out>();
  return PromiseWorker::Run(
      env,
      [path, out]() {
        check_input_file(path, "trainability", "model file");
        check_model_file(path, false, "trainability");  // llama.cpp asserts on what this refuses
        auto mp = llama_model_default_params();
        mp.n_gpu_layers = 0;
        mp.no_alloc = true;  // as llama.cpp's own memory fit does: no mapping, no reading
        mp.load_mode = LLAMA_LOAD_MODE_NONE;
        mp.lazy_mode = LLAMA_LAZY_MODE_OFF;
        mp.use_extra_bufts = false;
        take_llama_errors();
        llama_model_ptr m(llama_model_load_from_file(path.c_str(), mp));
        if (!m) {
          const std::string why = take_llama_errors();
          throw UserError("trainability: llama.cpp cannot load " + path + (why.empty() ? "" : " (" + why + ")"));
        }
        out->arch = m->arch_name();
        out->lora = training_refusal(*m, TrainMode::Lora, false);
        out->full = training_refusal(*m, TrainMode::Full, false);
        out->full_dequantize = training_refusal(*m, TrainMode::Full, true);
      },
      [out](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        const auto reason = [&](const std::string& s) -> Napi::Value { return s.empty() ? env.Null() : Napi::String::New(env, s); };
        o.Set("architecture", out->arch);
        o.Set("lora", reason(out->lora));
        o.Set("full", reason(out->full));
        o.Set("fullWithDequantize", reason(out->full_dequantize));
        return o;
      });
}

}  // namespace msr
