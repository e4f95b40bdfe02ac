// Batched generation: many prompts decoded together in one context with continuous batching
// (a finished sequence frees its slot and its KV cells for the next prompt). Each prompt gets its
// own sampler chain seeded with seed + prompt index, so a prompt's text does not depend on which
// slot or wave it ran in. An optional GBNF grammar constrains every prompt's output, or one grammar
// per prompt constrains each.
//
// KV layouts: in the unified cache every decoded token attends over every cell the call has
// filled (all slots' prompts and outputs, masked), so a step costs slots x total cells of
// attention; with per-sequence streams (kv_unified = false, slot = sequence id = stream) it attends
// over its own stream only. Prompts are never shared between slots, so either layout computes the
// same sequences; plan_context picks one (see there) unless the caller forces it.
#pragma once
#include "common.h"
#include "lora.h"
#include "scorer.h"  // KvLayout

namespace msr {

struct GenerateOptions {
  int32_t max_tokens = 256;
  float temperature = 0.7f;
  float top_p = 0.95f;
  int32_t top_k = 40;
  float min_p = 0.0f;
  uint32_t seed = 0;
  std::vector<std::string> stop;
  std::string grammar;  // GBNF; empty = unconstrained
  // One GBNF per prompt (instead of `grammar`; "" = that prompt unconstrained): each sequence owns
  // its sampler chain, so prompts with different constraints still decode together.
  std::vector<std::string> grammars;
  int32_t parallel = 16;
  int32_t context_size = 0;  // 0 = enough for `parallel` prompts of the longest length
  std::vector<LoraChoice> loras;
  KvLayout kv_layout = KvLayout::Auto;
  bool profile = false;  // report the call's timings (GenerateProfile)
};

// Where one generate call's time went (its `profile` option).
struct GenerateProfile {
  int32_t slots = 0;
  bool per_sequence = false;  // the KV layout the call ran in
  size_t decodes = 0;
  // llama_decode; sampling (logit checks, the sampler chains with their grammars, stop strings); the rest
  double decode_ms = 0, sample_ms = 0, other_ms = 0;
};

struct GenerateResult {
  std::vector<llama_token> tokens;
  std::string text;
  std::string finish_reason;  // "eos" | "stop" | "length"
};

// The context a generate call makes: slots decoded together, KV cells, batch tokens, the positions
// one sequence may reach (the model's training context), and the layout: unified, or one stream of
// `stream_cells` cells per slot (n_ctx = slots x stream_cells). Throws UserError when a prompt
// cannot fit or a forced layout cannot be made.
struct ContextPlan {
  int32_t slots;
  uint32_t n_ctx, n_batch;
  size_t n_train;
  bool per_seq = false;
  uint32_t stream_cells = 0;
};
ContextPlan plan_context(const ModelState& m, const std::vector<std::vector<llama_token>>& prompts, const GenerateOptions& opt);

// `profile` (when given) receives the call's timings.
std::vector<GenerateResult> generate_batch(const ModelPtr& model, const std::vector<std::vector<llama_token>>& prompts,
                                           const GenerateOptions& opt, GenerateProfile* profile = nullptr);

namespace Generator {
Napi::Value Generate(const Napi::CallbackInfo& info, const ModelPtr& model);  // model.generate(prompts, opts)
}

}  // namespace msr
