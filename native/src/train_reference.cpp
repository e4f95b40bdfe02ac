// llama_decode reference logits for the trainer (see train_reference.h).
#include "train_reference.h"

#include <unistd.h>

#include <filesystem>
#include <random>

#include "train_io.h"

namespace msr {

std::vector<float> reference_logits(TrainSession& s, const std::vector<int32_t>& tokens) {
  TrainGraph& g = s.graph();
  ModelState& ms = *g.model();
  const int T = static_cast<int>(tokens.size());
  if (T == 0) throw UserError("referenceLogits: pass at least one token");
  check_token_range(ms, tokens, "referenceLogits");

  namespace fs = std::filesystem;
  std::string adapter_path;
  if (g.config().mode == TrainMode::Lora) {
    std::random_device rd;
    adapter_path = (fs::temp_directory_path() / ("msr-rec-ref-" + std::to_string(getpid()) + "-" + std::to_string(rd()) + ".gguf")).string();
    save_adapter(s, adapter_path);
  }
  std::lock_guard<std::mutex> lock(ms.mutex);
  llama_adapter_lora* adapter = nullptr;
  llama_context* ctx = nullptr;
  llama_batch batch = llama_batch_init(T, 0, 1);
  auto cleanup = [&]() {
    llama_batch_free(batch);
    if (ctx) llama_free(ctx);
    if (adapter) llama_adapter_lora_free(adapter);
    std::error_code ec;
    if (!adapter_path.empty()) fs::remove(adapter_path, ec);
  };
  try {
    if (!adapter_path.empty()) {
      adapter = llama_adapter_lora_init(ms.model, adapter_path.c_str());
      if (!adapter) throw UserError("referenceLogits: llama.cpp rejected the adapter: " + take_llama_errors());
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = static_cast<uint32_t>(((T + 255) / 256) * 256);
    cp.n_batch = cp.n_ubatch = static_cast<uint32_t>(T);
    cp.n_seq_max = 1;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    // F32 K/V cache: the default F16 cache rounds K and V (relative 5e-4), which the training
    // graph (K and V straight from the batch) does not; with logits of O(10) that alone would
    // show as 3e-3 differences.
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.n_threads = cp.n_threads_batch = g.config().n_threads;
    cp.no_perf = true;
    ctx = llama_init_from_model(ms.model, cp);
    if (!ctx) throw UserError("referenceLogits: could not create a llama.cpp context: " + take_llama_errors());
    if (adapter) {
      float scale = 1.f;
      if (llama_set_adapters_lora(ctx, &adapter, 1, &scale) != 0) throw UserError("referenceLogits: could not apply the adapter");
    }
    for (int i = 0; i < T; i++) {
      batch.token[i] = tokens[i];
      batch.pos[i] = i;
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = 1;
    }
    batch.n_tokens = T;
    if (llama_decode(ctx, batch) != 0) throw UserError("referenceLogits: llama_decode failed: " + take_llama_errors());
    const int V = ms.n_vocab;
    std::vector<float> out(static_cast<size_t>(T) * V);
    for (int i = 0; i < T; i++) {
      const float* row = llama_get_logits_ith(ctx, i);
      std::copy(row, row + V, out.begin() + static_cast<size_t>(i) * V);
    }
    cleanup();
    return out;
  } catch (...) {
    cleanup();
    throw;
  }
}

}  // namespace msr
