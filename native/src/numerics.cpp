// See numerics.h.
#include "numerics.h"

#include <cmath>
#include <cstring>
#include <map>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "llama-context.h"
#include "llama-model.h"

namespace msr {

Numerics get_numerics(const Napi::Object& opts, const ModelState& m) {
  Napi::Env env = opts.Env();
  const Napi::Value v = opts.Get("numerics");
  if (v.IsUndefined() || v.IsNull()) return m.gpu_layers != 0 ? Numerics::Fast : Numerics::Invariant;
  const std::string s = get_string(v, "numerics");
  if (s == "fast") return Numerics::Fast;
  if (s != "invariant") throw Napi::RangeError::New(env, "numerics must be \"invariant\" or \"fast\" (got \"" + s + "\")");
  if (m.gpu_layers != 0) {
    throw Napi::Error::New(env, "numerics \"invariant\" runs on the CPU only, but the model was loaded with gpuLayers " +
                                    std::to_string(m.gpu_layers) + "; load it with gpuLayers: 0 or use numerics: \"fast\"");
  }
  return Numerics::Invariant;
}

void apply_numerics(llama_context_params& p, Numerics n) {
  if (n != Numerics::Invariant) return;
  p.type_k = p.type_v = GGML_TYPE_F32;
  p.op_offload = false;
  p.n_batch = std::max<uint32_t>(p.n_batch, 2);
  p.n_ubatch = std::max<uint32_t>(p.n_ubatch, 2);
}

llama_context* init_context(const ModelState& m, const llama_context_params& p, Numerics n) {
  llama_context* ctx = llama_init_from_model(m.model, p);
  if (!ctx || n != Numerics::Invariant) return ctx;
  // The CPU backend is the context's own (llama.cpp keeps it private; its scheduler lists it). The
  // flag sits on the backend object, so it survives the scheduler's re-reservations (LoRA changes)
  // and llama_set_n_threads.
  ggml_backend_sched_t sched = ctx->get_sched();
  for (int i = 0; i < ggml_backend_sched_get_n_backends(sched); i++) {
    ggml_backend_t b = ggml_backend_sched_get_backend(sched, i);
    if (ggml_backend_is_cpu(b)) ggml_backend_cpu_set_use_ref(b, true);
  }
  return ctx;
}

int64_t kv_bytes(const ModelState& m, uint32_t n_ctx, Numerics n) {
  return kv_cache_bytes(m, n_ctx) * (n == Numerics::Invariant ? 2 : 1);
}

int32_t decode_batch(llama_context* ctx, llama_batch& batch, Numerics n) {
  if (n != Numerics::Invariant) return llama_decode(ctx, batch);
  if (batch.n_tokens == 1) {
    // Causally invisible to the real token (a later position of its sequence) and removed after.
    batch.token[1] = batch.token[0];
    batch.pos[1] = batch.pos[0] + 1;
    batch.n_seq_id[1] = 1;
    batch.seq_id[1][0] = batch.seq_id[0][0];
    batch.logits[1] = batch.logits[0];
    batch.n_tokens = 2;
    const int32_t rc = llama_decode(ctx, batch);
    batch.n_tokens = 1;
    llama_memory_seq_rm(llama_get_memory(ctx), batch.seq_id[1][0], batch.pos[1], -1);
    return rc;
  }
  int32_t outputs = 0, spare = -1;
  for (int32_t b = 0; b < batch.n_tokens; b++) {
    if (batch.logits[b]) outputs++;
    else if (spare < 0) spare = b;
  }
  if (outputs != 1 || spare < 0) return llama_decode(ctx, batch);
  batch.logits[spare] = true;
  const int32_t rc = llama_decode(ctx, batch);
  batch.logits[spare] = false;
  return rc;
}

namespace {

// Row 0 of W x X computed among 5 rows (the repacked gemm path) and alone (gemv), compared bitwise.
bool repacked_rows_agree(ggml_tensor* w) {
  const int64_t k = w->ne[0];
  ggml_init_params ip{8 * ggml_tensor_overhead() + ggml_graph_overhead(), nullptr, true};
  ggml_context* ctx = ggml_init(ip);
  if (!ctx) throw UserError("could not allocate the repacked-weights check");
  ggml_tensor* x5 = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, 5);
  ggml_tensor* x1 = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, 1);
  ggml_tensor* y5 = ggml_mul_mat(ctx, w, x5);
  ggml_tensor* y1 = ggml_mul_mat(ctx, w, x1);
  ggml_cgraph* gf = ggml_new_graph(ctx);
  ggml_build_forward_expand(gf, y5);
  ggml_build_forward_expand(gf, y1);
  ggml_backend_t cpu = ggml_backend_cpu_init();
  ggml_backend_buffer_t buf = cpu ? ggml_backend_alloc_ctx_tensors(ctx, cpu) : nullptr;
  bool same = false;
  if (buf) {
    std::vector<float> xs(static_cast<size_t>(k) * 5);
    for (size_t i = 0; i < xs.size(); i++) xs[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i) + 0.1));
    ggml_backend_tensor_set(x5, xs.data(), 0, xs.size() * sizeof(float));
    ggml_backend_tensor_set(x1, xs.data(), 0, static_cast<size_t>(k) * sizeof(float));
    ggml_backend_cpu_set_n_threads(cpu, 1);
    if (ggml_backend_graph_compute(cpu, gf) == GGML_STATUS_SUCCESS) {
      const int64_t n = w->ne[1];
      std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
      ggml_backend_tensor_get(y5, a.data(), 0, a.size() * sizeof(float));
      ggml_backend_tensor_get(y1, b.data(), 0, b.size() * sizeof(float));
      same = std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
    }
    ggml_backend_buffer_free(buf);
  }
  if (cpu) ggml_backend_free(cpu);
  ggml_free(ctx);
  if (!buf) throw UserError("could not run the repacked-weights check (no CPU backend buffer)");
  return same;
}

}  // namespace

void check_repacked_weights(ModelState& m, const char* what) {
  if (!m.repack_checked) {
    // The smallest repacked 2-D weight of each type: one product each.
    std::map<ggml_type, ggml_tensor*> by_type;
    for (const auto& [name, t] : m.model->tensors_by_name) {
      if (!t->buffer || ggml_n_dims(t) != 2) continue;
      if (std::strcmp(ggml_backend_buft_name(ggml_backend_buffer_get_type(t->buffer)), "CPU_REPACK") != 0) continue;
      auto it = by_type.find(t->type);
      if (it == by_type.end() || ggml_nelements(t) < ggml_nelements(it->second)) by_type[t->type] = t;
    }
    for (const auto& [type, t] : by_type) {
      if (!repacked_rows_agree(t)) {
        m.repack_mismatch = ggml_type_name(type);
        break;
      }
    }
    m.repack_checked = true;
  }
  if (!m.repack_mismatch.empty()) {
    throw UserError(std::string(what) + ": on this CPU, llama.cpp's repacked " + m.repack_mismatch +
                    " weights give a row different results alone and among others, so numerics \"invariant\" cannot hold; load the model "
                    "with repack: false, or use numerics: \"fast\"");
  }
}

}  // namespace msr
