// The plan of a generate call, decided before its context exists: how many prompts decode together
// (slots), the context's cells and batch, the KV layout, and how much of a unified cache each
// running prompt reserves. Pure functions of the prompts' lengths, the options and the model's
// training context; generator.cpp runs the call by this plan.
//
// KV layouts: in the unified cache every decoded token attends over every cell the call has
// filled (all slots' prompts and outputs, masked), so a step costs slots x total cells of
// attention; with per-sequence streams (kv_unified = false, slot = sequence id = stream) it attends
// over its own stream only. Prompts are never shared between slots, so either layout computes the
// same sequences; plan_context picks one (see there) unless the caller forces it.
#pragma once
#include <string>
#include <vector>

#include "common.h"
#include "kv_layout.h"
#include "lora.h"
#include "numerics.h"

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
  // Invariant (see numerics.h): a prompt's logits, so its tokens under its seed, do not depend on
  // the other prompts, `parallel` or the layout, and equal the scorer's on the same tokens.
  Numerics numerics = Numerics::Invariant;
  bool logprobs = false;  // return each generated token's log-prob under the model (before sampling)
  bool profile = false;  // report the call's timings (GenerateProfile)
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

// The llama.cpp context parameters of the plan (under opt.numerics).
llama_context_params context_params(const ModelState& m, const ContextPlan& plan, const GenerateOptions& opt);

// Unified cache: the cells a running prompt reserves (prompt + maxTokens, at most the training
// context), so that admission never lets the shared cache overflow whatever order prompts finish in.
size_t reserved_cells(size_t prompt_tokens, const GenerateOptions& opt, const ContextPlan& plan);

}  // namespace msr
