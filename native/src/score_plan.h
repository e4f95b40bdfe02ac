// How a score call's requests become decodes, decided before any is run: pure functions of the
// requests and of the context's geometry (no llama.cpp context), so the plan can be checked alone.
//
// Requests sharing a prompt are grouped and the prompt is evaluated once for all of them (its
// tokens carry every member's sequence id); each continuation is then decoded in its own sequence.
// Groups are packed into waves that fill the context's cells (unified KV cache) and the sequence
// slots, and each wave is cut into batches of at most batchSize tokens. When no two requests share
// a prompt the call may instead run with one KV stream per request (per-sequence layout: a token
// attends over its own request's cells only, not the whole wave's).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "kv_layout.h"
#include "llama.h"

namespace msr {

struct ScoreRequest {
  std::vector<llama_token> prompt;
  std::vector<llama_token> continuation;
};

// The scorer as a call finds it, before the call makes the context it needs.
struct ScorerLayoutState {
  KvLayout layout = KvLayout::Auto;  // the scorer's kvLayout option
  bool per_seq_context = false;      // the scorer holds a per-sequence context now ...
  uint32_t stream_cells = 0;         // ... whose streams have this many cells
  uint32_t n_ctx = 0, n_seq = 0;     // the unified context's cells and sequence slots
  uint32_t spare_cells = 0;          // cells a request needs beyond its own (invariant numerics' pad token)
};

struct LayoutChoice {
  bool per_seq = false;
  uint32_t longest = 0;  // cells of the longest request (prompt + continuation - 1, plus the spare cells)
};

// Per call: the per-sequence layout when no two requests share a prompt (a shared prompt's tokens
// carry several sequence ids, which only a unified cache can hold; forcing per-sequence then
// re-evaluates the prompt for each request) and at least two streams of the longest request fit
// the context's cells; kept for later calls it fits, so one-request calls do not remake it.
LayoutChoice choose_layout(const std::vector<ScoreRequest>& reqs, const ScorerLayoutState& st);

// The context the call runs in, once made. Unified: a prompt's group serves up to n_seq requests
// within the context's cells, and a wave fills up to n_seq slots and waveTokens cells.
// Per-sequence: one request per stream (a shared prompt is evaluated once per member), a wave is
// as many requests as there are streams, and attention never spans requests, so no cell cap.
struct ScoreGeometry {
  bool per_seq = false;
  uint32_t n_batch = 0;                      // tokens per llama_decode
  uint32_t group_seqs = 0, group_cells = 0;  // requests and cells one evaluation of a prompt may serve
  uint32_t wave_seqs = 0, wave_cells = 0;    // sequences and cells of one wave
};

// One token of a wave: where it goes and which (request, continuation index) its logits predict.
struct PlannedToken {
  llama_token token;
  llama_pos pos;
  std::vector<llama_seq_id> seqs;
  // For an output row: the requests and continuation positions it predicts (several for a shared
  // prompt's last token, one otherwise). Empty = no logits needed.
  std::vector<std::pair<size_t, size_t>> predicts;
};

// A wave starts from an empty KV cache; its batches (indices into `tokens`) are decoded in order.
struct PlannedWave {
  std::vector<PlannedToken> tokens;
  std::vector<std::vector<uint32_t>> batches;
};

struct ScorePlan {
  std::vector<PlannedWave> waves;
};

// `all_logits`: every position asks for logits (the decode-only ceiling of the benchmark).
ScorePlan plan_score(const std::vector<ScoreRequest>& reqs, const ScoreGeometry& g, bool all_logits);

}  // namespace msr
