// Token embeddings: the last layer's hidden state of every token (after the final norm, what the
// output matrix would read), from llama.cpp's embeddings output with pooling NONE. Texts are packed
// several per decode as separate sequences, so each token sees only its own text. Used as the
// contextual encoder of BERTScore.
#pragma once
#include "common.h"

namespace msr {

// [text][token * n_embd + k]
std::vector<std::vector<float>> embed_tokens(const ModelPtr& model, const std::vector<std::vector<llama_token>>& texts, int32_t batch_tokens);

namespace Embedder {
Napi::Value Embed(const Napi::CallbackInfo& info, const Pinned<ModelState>& model);  // model.embed(texts: Int32Array[], {batchTokens?})
}

}  // namespace msr
