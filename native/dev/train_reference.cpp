// reference_logits (see dev.h): llama_decode on the trainer's tokens with its current adapter, the
// independent reference for the training graph's forward.
#include <unistd.h>

#include <filesystem>
#include <random>

#include "dev.h"
#include "llama-cpp.h"
#include "train_io.h"
#include "train_session.h"

namespace msr::dev {

namespace {

// A file removed when the scope ends (the adapter handed to llama.cpp's loader).
struct TempFile {
  std::string path;
  ~TempFile() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove(path, ec);
  }
};

}  // namespace

std::vector<float> reference_logits(TrainSession& s, const std::vector<int32_t>& tokens) {
  TrainGraph& g = s.graph();
  ModelState& ms = *g.model();
  const int T = static_cast<int>(tokens.size());
  if (T == 0) throw UserError("referenceLogits: pass at least one token");
  check_token_range(ms, tokens, "referenceLogits");

  namespace fs = std::filesystem;
  TempFile adapter_file;
  if (g.config().mode == TrainMode::Lora) {
    std::random_device rd;
    adapter_file.path = (fs::temp_directory_path() / ("msr-rec-ref-" + std::to_string(getpid()) + "-" + std::to_string(rd()) + ".gguf")).string();
    save_adapter(s, adapter_file.path);
  }
  std::lock_guard<std::mutex> lock(ms.mutex);
  // Declared in this order so that the context is freed before the adapter it uses.
  llama_adapter_lora_ptr adapter;
  if (!adapter_file.path.empty()) {
    adapter.reset(llama_adapter_lora_init(ms.model, adapter_file.path.c_str()));
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
  llama_context_ptr ctx(llama_init_from_model(ms.model, cp));
  if (!ctx) throw UserError("referenceLogits: could not create a llama.cpp context: " + take_llama_errors());
  if (adapter) {
    llama_adapter_lora* a = adapter.get();
    float scale = 1.f;
    if (llama_set_adapters_lora(ctx.get(), &a, 1, &scale) != 0) throw UserError("referenceLogits: could not apply the adapter");
  }
  ScopedBatch scoped(T, 1);
  llama_batch& batch = scoped.batch;
  for (int i = 0; i < T; i++) {
    batch.token[i] = tokens[i];
    batch.pos[i] = i;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = T;
  if (llama_decode(ctx.get(), batch) != 0) throw UserError("referenceLogits: llama_decode failed: " + take_llama_errors());
  const int V = ms.n_vocab;
  std::vector<float> out(static_cast<size_t>(T) * V);
  for (int i = 0; i < T; i++) {
    const float* row = llama_get_logits_ith(ctx.get(), i);
    std::copy(row, row + V, out.begin() + static_cast<size_t>(i) * V);
  }
  return out;
}

}  // namespace msr::dev
