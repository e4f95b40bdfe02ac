// Samplers of our own for the generator's chains (generator.cpp builds them).
//
// Temperature by meaning: 0 is greedy (argmax). A positive temperature divides the logits; one so
// small that a logit divided by it overflows a float would turn the distribution into inf - inf =
// NaN (llama.cpp's own temperature sampler then returns arbitrary tokens), so for that token it is
// greedy too, which is the limit of the distribution as the temperature goes to 0. Otherwise it
// divides exactly as llama.cpp's does. (The generator refuses temperatures above FLT_MAX: they
// are not floats.)
//
// TokenSampler: one prompt's grammar and chain. It samples what llama.cpp's llama_sampler_sample
// would with the grammar first in the chain, over the whole vocabulary; but when the chain starts
// by keeping the k best tokens (top-k, or greedy: k = 1) it builds only those k candidates from
// the logits row in one pass, and under a grammar checks the grammar on the best tokens first
// until k of them pass, instead of building and checking an array of the whole vocabulary (on a
// 128k vocabulary that is milliseconds per token and sequence, more than the decode itself at 64
// parallel sequences). Equal maxima are ordered by token id, as greedy orders them. Where the fast
// path cannot be sure of the same candidates (fewer than k pass among the best quarter of the
// vocabulary, or a temperature so small that the guard above would fire), it takes the whole one.
//
// In the middle of a UTF-8 character (a token's piece ended in the first bytes of one), llama.cpp's
// grammar rejects every token whose piece does not start with a continuation byte (10xxxxxx), EOG
// tokens aside: its decode_utf8 reads such a piece as an invalid sequence, which no grammar stack
// matches. Only a few hundred tokens of a 128k vocabulary start so, and the best tokens of the row
// rarely do, so the best-first search would widen to the whole vocabulary and check the grammar
// on every token (~50 ms a row on llama3-1b). The sampler follows the grammar's UTF-8 state from
// the pieces it accepts, as decode_utf8 does, and there checks the grammar on those tokens only.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "llama.h"

namespace msr {

struct ModelState;

// llama.cpp's temperature sampler, greedy where logits / t would overflow a float.
llama_sampler* temperature_sampler(float t);

// The one pass over a row of logits before it is sampled: false when a logit is NaN or +inf (it
// would be sampled silently or trip an assertion inside a sampler); otherwise `largest_abs` is the
// largest |logit| among the finite ones, which TokenSampler::sample needs for the temperature
// guard, so it does not scan the row again.
bool check_row(const float* logits, int32_t n_vocab, float& largest_abs);

struct SamplerDeleter {
  void operator()(llama_sampler* s) const { llama_sampler_free(s); }
};
using SamplerPtr = std::unique_ptr<llama_sampler, SamplerDeleter>;

struct SamplingOptions {
  float temperature = 0.f;  // <= 0: greedy
  int32_t top_k = 0;        // <= 0: off
  float top_p = 1.f;
  float min_p = 0.f;
};

class TokenSampler {
 public:
  // `grammar` may be null (no grammar); the sampler takes it over. `m` is the model the grammar
  // was built for.
  TokenSampler(const ModelState& m, llama_sampler* grammar, const SamplingOptions& o, uint32_t seed);

  // Samples the next token from a row of n_vocab logits (finite or -inf) and accepts it into the
  // grammar and the chain; `largest_abs` is check_row's. Throws UserError when the grammar admits
  // no token.
  llama_token sample(const float* logits, int32_t n_vocab, float largest_abs);
  // The same over the whole vocabulary always: llama.cpp's own chain, what sample() equals.
  llama_token sample_whole_vocabulary(const float* logits, int32_t n_vocab);

 private:
  llama_token pick(std::vector<llama_token_data>& cur, bool sorted);
  bool fast_path_allowed(int32_t n_vocab, float largest_abs) const;
  // sample() in the middle of a UTF-8 character: the grammar on the tokens that can pass there.
  llama_token sample_mid_char(const float* logits, int32_t n_vocab, float largest_abs);

  const ModelState& model_;
  SamplerPtr grammar_;
  int utf8_remain_ = 0;  // the grammar's UTF-8 state: continuation bytes its character still needs
  SamplerPtr chain_;
  int32_t k_ = 0;  // the chain's first truncation: 1 greedy, top_k, 0 none (the whole vocabulary)
  float temperature_ = 0.f;
  std::vector<llama_token_data> cur_, best_;
};

}  // namespace msr
