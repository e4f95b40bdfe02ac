// See generate_plan.h.
#include "generate_plan.h"

#include <algorithm>

namespace msr {

ContextPlan plan_context(const ModelState& m, const std::vector<std::vector<llama_token>>& prompts, const GenerateOptions& opt) {
  const size_t n = prompts.size();
  size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.size());
  // A sequence never runs past the model's training context: it finishes there with "length".
  const size_t n_train = static_cast<size_t>(m.n_ctx_train);
  if (longest >= n_train) {
    throw UserError("generate: a prompt of " + std::to_string(longest) + " tokens leaves no room in the model's training context of " +
                    std::to_string(n_train) + " positions (model.info.contextLength); shorten the prompt");
  }
  const size_t need_one = std::min(longest + static_cast<size_t>(opt.max_tokens), n_train);
  int32_t slots = std::max<int32_t>(1, std::min<int32_t>(opt.parallel, static_cast<int32_t>(n)));
  if (opt.context_size > 0 && static_cast<size_t>(opt.context_size) < need_one) {
    throw UserError("generate: a prompt of " + std::to_string(longest) + " tokens plus maxTokens " + std::to_string(opt.max_tokens) + " needs " +
                    std::to_string(need_one) + " context cells but contextSize is " + std::to_string(opt.context_size) +
                    "; raise contextSize or lower maxTokens");
  }
  // More slots than sequences the context holds at once could never run together: cap them.
  if (opt.context_size > 0) slots = std::max<int32_t>(1, std::min<int32_t>(slots, static_cast<int32_t>(opt.context_size / need_one)));
  const uint32_t n_ctx =
      opt.context_size > 0 ? static_cast<uint32_t>(std::min<size_t>(opt.context_size, need_one * slots)) : static_cast<uint32_t>(need_one * slots);
  const uint32_t n_batch = std::max<uint32_t>(512, static_cast<uint32_t>(slots));
  ContextPlan plan{slots, n_ctx, n_batch, n_train};

  // Per-sequence: every stream holds the longest prompt plus maxTokens (llama.cpp pads streams to
  // 256 cells), so any request fits any free slot and admission needs no cell accounting.
  const uint32_t stream = static_cast<uint32_t>((need_one + 255) / 256 * 256);
  const size_t max_seq = llama_max_parallel_sequences();
  int32_t ps_slots = std::min<int32_t>(slots, static_cast<int32_t>(max_seq));
  if (opt.context_size > 0) ps_slots = std::min<int32_t>(ps_slots, static_cast<int32_t>(opt.context_size / stream));
  bool per_seq = false;
  if (opt.kv_layout == KvLayout::PerSequence) {
    if (ps_slots < 1) {
      throw UserError("generate: kvLayout \"per-sequence\" gives each slot a stream of " + std::to_string(stream) +
                      " cells (the longest prompt plus maxTokens, rounded up to 256) but contextSize is " + std::to_string(opt.context_size) +
                      "; raise contextSize to at least " + std::to_string(stream) + " or use kvLayout \"unified\"");
    }
    per_seq = true;
  } else if (opt.kv_layout == KvLayout::Auto) {
    // Every token attends over the cells its cache spans: its own stream per-sequence, every
    // running sequence's cells in the unified cache. Unified when that is no more than twice as
    // wide: one slot (nothing to separate), or few sequences so short that a stream of 256 cells
    // would be mostly padding; and when a contextSize holds fewer streams than the unified cache
    // holds sequences. (64 sequences of 64 cells: 4096 cells unified against 256 a stream, which
    // made generation 0.69x llama-batched-bench on llama3-1b.) Invariant numerics run a unified
    // cache in waves (no continuous batching, see generator.cpp): per-sequence whenever its
    // streams hold every slot.
    const bool narrower = need_one * static_cast<size_t>(slots) >= 2 * static_cast<size_t>(stream);
    per_seq = slots >= 2 && ps_slots == slots && (narrower || opt.numerics == Numerics::Invariant);
  }
  if (per_seq) {
    plan.slots = ps_slots;
    plan.per_seq = true;
    plan.stream_cells = stream;
    plan.n_ctx = stream * static_cast<uint32_t>(ps_slots);
    plan.n_batch = std::max<uint32_t>(512, static_cast<uint32_t>(ps_slots));
  }
  return plan;
}

llama_context_params context_params(const ModelState& m, const ContextPlan& plan, const GenerateOptions& opt) {
  auto cparams = llama_context_default_params();
  cparams.n_ctx = plan.n_ctx;
  cparams.n_seq_max = static_cast<uint32_t>(plan.slots);
  cparams.n_batch = plan.n_batch;
  cparams.n_ubatch = std::min<uint32_t>(plan.n_batch, 512);
  cparams.kv_unified = !plan.per_seq;
  cparams.n_threads = m.n_threads;
  cparams.n_threads_batch = m.n_threads;
  cparams.no_perf = true;
  apply_numerics(cparams, opt.numerics);
  return cparams;
}

size_t reserved_cells(size_t prompt_tokens, const GenerateOptions& opt, const ContextPlan& plan) {
  return std::min(prompt_tokens + static_cast<size_t>(opt.max_tokens), plan.n_train);
}

}  // namespace msr
