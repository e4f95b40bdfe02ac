#include "embedder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "llama-cpp.h"

namespace msr {

std::vector<std::vector<float>> embed_tokens(const ModelPtr& model, const std::vector<std::vector<llama_token>>& texts, int32_t batch_tokens) {
  size_t longest = 0;
  for (const auto& t : texts) longest = std::max(longest, t.size());
  if (longest > static_cast<size_t>(model->n_ctx_train)) {
    throw UserError("embed: a text has " + std::to_string(longest) + " tokens, more than the model's context (" +
                    std::to_string(model->n_ctx_train) + "); shorten it");
  }
  const int32_t n_batch = std::max<int32_t>(batch_tokens, static_cast<int32_t>(longest));
  // llama.cpp sizes its output buffer for max(outputs, sequences) rows and requires that to fit in
  // n_batch, so a wave never holds more sequences than the batch holds tokens.
  const int32_t max_seqs = std::min<int32_t>(64, n_batch);
  auto cparams = llama_context_default_params();
  cparams.n_ctx = static_cast<uint32_t>(n_batch);
  cparams.n_batch = static_cast<uint32_t>(n_batch);
  cparams.n_ubatch = static_cast<uint32_t>(n_batch);
  cparams.n_seq_max = static_cast<uint32_t>(max_seqs);
  cparams.kv_unified = true;
  cparams.embeddings = true;
  cparams.pooling_type = LLAMA_POOLING_TYPE_NONE;
  cparams.n_threads = model->n_threads;
  cparams.n_threads_batch = model->n_threads;
  cparams.no_perf = true;
  std::lock_guard<std::mutex> lock(model->mutex);
  model->check_alive("model.embed");
  take_llama_errors();
  llama_context_ptr ctx(llama_init_from_model(model->model, cparams));
  if (!ctx) throw UserError("embed: could not create a context (" + take_llama_errors() + ")");
  const int n_embd = llama_model_n_embd(model->model);
  std::vector<std::vector<float>> out(texts.size());
  ScopedBatch scoped(n_batch, 1);
  llama_batch& batch = scoped.batch;
  size_t next = 0;
  while (next < texts.size()) {
    // One wave: whole texts, each its own sequence, until the batch or the sequence slots are full.
    batch.n_tokens = 0;
    std::vector<size_t> wave;
    while (next < texts.size() && static_cast<int32_t>(wave.size()) < max_seqs &&
           batch.n_tokens + static_cast<int32_t>(texts[next].size()) <= n_batch) {
      const auto& t = texts[next];
      for (size_t p = 0; p < t.size(); p++) {
        const int32_t i = batch.n_tokens++;
        batch.token[i] = t[p];
        batch.pos[i] = static_cast<llama_pos>(p);
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = static_cast<llama_seq_id>(wave.size());
        batch.logits[i] = 1;
      }
      wave.push_back(next++);
    }
    if (batch.n_tokens > 0) {
      llama_memory_clear(llama_get_memory(ctx.get()), true);
      if (llama_decode(ctx.get(), batch) != 0) throw UserError("embed: llama_decode failed (" + take_llama_errors() + ")");
    }
    int32_t row = 0;
    for (size_t w : wave) {
      auto& v = out[w];
      v.resize(texts[w].size() * static_cast<size_t>(n_embd));
      for (size_t p = 0; p < texts[w].size(); p++, row++) {
        const float* e = llama_get_embeddings_ith(ctx.get(), row);
        if (!e) throw UserError("embed: llama.cpp returned no embedding for a token");
        for (int k = 0; k < n_embd; k++) {
          if (!std::isfinite(e[k])) {
            throw UserError("embed: texts[" + std::to_string(w) + "] token " + std::to_string(p) +
                            " got a non-finite hidden state (NaN/inf); the model's weights may be damaged");
          }
        }
        std::memcpy(v.data() + p * n_embd, e, n_embd * sizeof(float));
      }
    }
  }
  return out;
}

namespace Embedder {

Napi::Value Embed(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "embed(texts: Int32Array[], options?)");
  const JsArray arr = get_array(info[0], "texts", kMaxTokenArray, "texts must be an array of token arrays");
  auto texts = std::make_shared<std::vector<std::vector<llama_token>>>();
  for (uint32_t i = 0; i < arr.n; i++) {
    const std::string where = "texts[" + std::to_string(i) + "]";
    auto toks = get_tokens(arr[i], where);
    try {
      check_token_range(pin.peek(), toks, where.c_str());
    } catch (const UserError& e) {
      throw Napi::RangeError::New(env, e.what());
    }
    texts->push_back(std::move(toks));
  }
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  const int32_t batch_tokens = static_cast<int32_t>(get_int(o, "batchTokens", 2048, 1, 1 << 20));
  const ModelPtr model = pin.ready();  // the arguments are read: nothing below runs the caller's code
  auto out = std::make_shared<std::vector<std::vector<float>>>();
  // The call's own context (KV cache of one batch and its embedding rows), reported while it runs.
  size_t longest = 0;
  for (const auto& t : *texts) longest = std::max(longest, t.size());
  const int64_t n_batch = std::max<int64_t>(batch_tokens, static_cast<int64_t>(longest));
  const int64_t call_bytes = kv_cache_bytes(*model, static_cast<uint32_t>(n_batch)) + n_batch * llama_model_n_embd(model->model) * 4;
  return PromiseWorker::Run(
      env, [model, texts, batch_tokens, out]() { *out = embed_tokens(model, *texts, batch_tokens); },
      [out](Napi::Env env) -> Napi::Value {
        Napi::Array a = Napi::Array::New(env, out->size());
        for (size_t i = 0; i < out->size(); i++) {
          const auto& v = (*out)[i];
          Napi::Float32Array f = Napi::Float32Array::New(env, v.size());
          if (!v.empty()) std::memcpy(f.Data(), v.data(), v.size() * sizeof(float));
          a.Set(static_cast<uint32_t>(i), f);
        }
        return a;
      },
      call_bytes);
}

}  // namespace Embedder
}  // namespace msr
