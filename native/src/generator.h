// Batched generation: many prompts decoded together in one context with continuous batching
// (a finished sequence frees its slot and its KV cells for the next prompt). Each prompt gets its
// own sampler chain seeded with seed + prompt index, so a prompt's text does not depend on which
// slot or wave it ran in. An optional GBNF grammar constrains every prompt's output, or one grammar
// per prompt constrains each. The call is planned first (generate_plan.h), then run by that plan.
#pragma once
#include "common.h"
#include "generate_plan.h"

namespace msr {

// Where one generate call's time went (its `profile` option).
struct GenerateProfile {
  int32_t slots = 0;
  bool per_sequence = false;  // the KV layout the call ran in
  size_t decodes = 0;
  // llama_decode; sampling (logit checks, the sampler chains with their grammars, stop strings); the rest
  double decode_ms = 0, sample_ms = 0, other_ms = 0;
  // Per-sequence layout: prompts that copied the stream of an identical prompt decoded just before
  // instead of being decoded again.
  size_t shared_prompts = 0;
};

struct GenerateResult {
  std::vector<llama_token> tokens;
  std::string text;
  std::string finish_reason;  // "eos" | "stop" | "length"
  // With GenerateOptions::logprobs: log P(token | prompt, tokens before) under the model, before
  // temperature, top-k or top-p (the scorer's reduction of the same logits row), one per token.
  std::vector<float> token_logprobs;
};

// `profile` (when given) receives the call's timings. With grammars, callers run it on the grammar
// stack after check_grammar (grammar_guard.h), as model.generate does.
std::vector<GenerateResult> generate_batch(const ModelPtr& model, const std::vector<std::vector<llama_token>>& prompts,
                                           const GenerateOptions& opt, GenerateProfile* profile = nullptr);

namespace Generator {
Napi::Value Generate(const Napi::CallbackInfo& info, const Pinned<ModelState>& model);  // model.generate(prompts, opts)
}

}  // namespace msr
