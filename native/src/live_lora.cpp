// See live_lora.h. The buffer-type choice and the metadata follow llama_adapter_lora_init_impl
// (llama.cpp src/llama-adapter.cpp) and save_adapter (train_io.cpp).
#include "live_lora.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "llama-adapter.h"
#include "llama-model.h"

namespace msr {

namespace {

ggml_backend_dev_t cpu_device() {
  ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  if (!cpu) throw UserError("liveAdapter: ggml has no CPU backend");
  return cpu;
}

// The CPU's extra buffer types (repacked weights): an adapter cannot live there.
std::vector<ggml_backend_buffer_type_t> cpu_extra_bufts() {
  std::vector<ggml_backend_buffer_type_t> out;
  ggml_backend_dev_t cpu = cpu_device();
  auto get_extra = reinterpret_cast<ggml_backend_dev_get_extra_bufts_t>(
      ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu), "ggml_backend_dev_get_extra_bufts"));
  if (get_extra) {
    for (ggml_backend_buffer_type_t* b = get_extra(cpu); b && *b; b++) out.push_back(*b);
  }
  return out;
}

// The (A, B) parameter pairs of a LoRA session, in the trainer's order (A then B per weight).
std::vector<std::pair<const TrainParam*, const TrainParam*>> lora_pairs(TrainSession& s) {
  auto& params = s.graph().params();
  std::vector<std::pair<const TrainParam*, const TrainParam*>> pairs;
  for (size_t i = 0; i + 1 < params.size(); i += 2) pairs.push_back({&params[i], &params[i + 1]});
  return pairs;
}

}  // namespace

LoraPtr make_live_lora(TrainSession& s) {
  TrainGraph& g = s.graph();
  if (g.config().mode != TrainMode::Lora) throw UserError("liveAdapter: this trainer trains the full model; a live adapter needs mode 'lora'");
  llama_model& model = *g.llama();
  auto st = std::make_shared<LoraState>();
  st->model = g.model();
  st->path = "";
  st->alpha = g.config().lora_alpha;
  st->min_rank = g.config().rank;

  auto adapter = std::make_unique<llama_adapter_lora>(&model);
  adapter->alpha = g.config().lora_alpha;
  adapter->gguf_kv["general.architecture"] = model.arch_name();
  adapter->gguf_kv["general.type"] = "adapter";
  adapter->gguf_kv["adapter.type"] = "lora";
  adapter->gguf_kv["adapter.lora.alpha"] = std::to_string(g.config().lora_alpha);

  const auto pairs = lora_pairs(s);
  const std::vector<ggml_backend_buffer_type_t> extra = cpu_extra_bufts();
  ggml_backend_buffer_type_t cpu_buft = ggml_backend_dev_buffer_type(cpu_device());
  std::map<ggml_backend_buffer_type_t, ggml_context*> ctx_for;
  for (const auto& [a, b] : pairs) {
    const ggml_tensor* base = a->base;
    ggml_backend_buffer_type_t buft = base->buffer ? ggml_backend_buffer_get_type(base->buffer) : cpu_buft;
    for (ggml_backend_buffer_type_t e : extra) {
      if (e == buft) buft = cpu_buft;
    }
    ggml_context*& ctx = ctx_for[buft];
    if (!ctx) {
      ggml_init_params ip{ggml_tensor_overhead() * 2 * pairs.size(), nullptr, true};
      ctx = ggml_init(ip);
      if (!ctx) throw UserError("liveAdapter: out of memory for the adapter's tensor headers");
      adapter->ctxs.emplace_back(ctx);  // owned by the adapter from here on
    }
    ggml_tensor* ta = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, a->value->ne[0], a->value->ne[1]);
    ggml_tensor* tb = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, b->value->ne[0], b->value->ne[1]);
    ggml_set_name(ta, a->name.c_str());
    ggml_set_name(tb, b->name.c_str());
    adapter->ab_map[base->name] = llama_adapter_lora_weight(ta, tb);
  }
  for (const auto& [buft, ctx] : ctx_for) {
    ggml_backend_buffer_ptr buf(ggml_backend_alloc_ctx_tensors_from_buft(ctx, buft));
    if (!buf) throw UserError(std::string("liveAdapter: out of memory for the adapter's tensors (") + ggml_backend_buft_name(buft) + ")");
    st->bytes += static_cast<int64_t>(ggml_backend_buffer_get_size(buf.get()));
    adapter->bufs.emplace_back(std::move(buf));
  }
  model.loras.insert(adapter.get());
  st->adapter = adapter.release();  // from here freed by ~LoraState (llama_adapter_lora_free)
  copy_to_live_lora(s, *st);
  return st;
}

void copy_to_live_lora(TrainSession& s, LoraState& live) {
  for (const auto& [a, b] : lora_pairs(s)) {
    auto it = live.adapter->ab_map.find(a->base->name);
    if (it == live.adapter->ab_map.end()) throw UserError("liveAdapter: the adapter does not match this trainer's LoRA targets");
    ggml_backend_tensor_set(it->second.a, a->data(), 0, ggml_nbytes(a->value));
    ggml_backend_tensor_set(it->second.b, b->data(), 0, ggml_nbytes(b->value));
  }
}

}  // namespace msr
