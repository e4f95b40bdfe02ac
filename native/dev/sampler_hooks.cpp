// The generator's token sampler on rows the caller gives (see dev.h): its fast top-k path against
// llama.cpp's own chain over the whole vocabulary, on the same rows, seed and grammar.
#include <algorithm>
#include <cmath>
#include <vector>

#include "dev.h"
#include "grammar_guard.h"
#include "model.h"
#include "samplers.h"

namespace msr::dev {

Napi::Value SampleRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 3,
               "sampleRows(model, logits: Float32Array, options: {temperature, topK?, topP?, minP?, seed?, grammar?, "
               "wholeVocabulary?})");
  const Pinned<ModelState> pin = model_from_js(info[0], "sampleRows");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(env, "logits must be a Float32Array of rows × vocab values");
  }
  if (!info[2].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object o = info[2].As<Napi::Object>();
  SamplingOptions so;
  so.temperature = static_cast<float>(get_number(o, "temperature", 0));
  so.top_k = static_cast<int32_t>(get_number(o, "topK", 0));
  so.top_p = static_cast<float>(get_number(o, "topP", 1));
  so.min_p = static_cast<float>(get_number(o, "minP", 0));
  if (!(std::isfinite(so.temperature) && so.temperature >= 0 && so.top_p > 0 && so.top_p <= 1 && so.min_p >= 0 && so.min_p <= 1)) {
    throw Napi::RangeError::New(env, "temperature must be >= 0, topP in (0, 1], minP in [0, 1]");
  }
  const double seed = get_number(o, "seed", 1);
  if (!(seed >= 0 && seed < 0xFFFFFFFF)) throw Napi::RangeError::New(env, "seed must be in [0, 2^32 - 1)");
  const bool whole = get_bool(o, "wholeVocabulary", false);
  Napi::Value g = o.Get("grammar");
  const std::string grammar = g.IsUndefined() || g.IsNull() ? std::string() : get_string(g, "grammar");
  const ModelPtr model = pin.ready();
  const int32_t nv = model->n_vocab;
  Napi::Float32Array rows_a(env, info[1]);
  if (rows_a.ElementLength() == 0 || rows_a.ElementLength() % nv != 0 || !rows_a.Data()) {
    throw Napi::RangeError::New(env, "logits must hold a whole number of rows of " + std::to_string(nv) + " values (the model's vocabulary)");
  }
  const size_t n_rows = rows_a.ElementLength() / nv;
  const float* rows = rows_a.Data();
  std::vector<float> largest_abs(n_rows);
  for (size_t r = 0; r < n_rows; r++) {
    if (!check_row(rows + r * nv, nv, largest_abs[r])) throw Napi::RangeError::New(env, "logits must be finite or -inf");
  }
  std::vector<llama_token> tokens(n_rows);
  try {  // on a thread of its own (grammar code recurses): no N-API calls in here
    run_on_grammar_stack([&] {
      if (!grammar.empty()) check_grammar(model->vocab, grammar, "grammar");
      llama_sampler* gs = grammar.empty() ? nullptr : llama_sampler_init_grammar(model->vocab, grammar.c_str(), "root");
      if (!grammar.empty() && !gs) throw UserError("sampleRows: the grammar is not valid GBNF");
      TokenSampler s(*model, gs, so, static_cast<uint32_t>(seed));
      for (size_t r = 0; r < n_rows; r++) {
        const float* row = rows + r * nv;
        tokens[r] = whole ? s.sample_whole_vocabulary(row, nv) : s.sample(row, nv, largest_abs[r]);
      }
    });
  } catch (const UserError& e) {
    throw Napi::Error::New(env, e.what());
  }
  auto out = Napi::Int32Array::New(env, n_rows);
  std::copy(tokens.begin(), tokens.end(), out.Data());
  return out;
}

}  // namespace msr::dev
