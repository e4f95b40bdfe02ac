// See score_plan.h.
#include "score_plan.h"

#include <algorithm>
#include <cstddef>
#include <map>

namespace msr {

namespace {

// A prompt evaluated once for `members` (indices into the request list).
struct Group {
  const std::vector<llama_token>* prompt;
  std::vector<size_t> members;
  size_t cells(const std::vector<ScoreRequest>& reqs) const {
    size_t n = prompt->size();
    for (size_t m : members) n += reqs[m].continuation.size() - 1;  // the last token is never fed
    return n;
  }
};

std::vector<Group> group_by_prompt(const std::vector<ScoreRequest>& reqs, uint32_t n_seq, uint32_t n_ctx) {
  std::map<std::vector<llama_token>, size_t> index;
  std::vector<Group> groups;
  for (size_t i = 0; i < reqs.size(); i++) {
    auto it = index.find(reqs[i].prompt);
    if (it == index.end()) {
      index.emplace(reqs[i].prompt, groups.size());
      groups.push_back({&reqs[i].prompt, {i}});
    } else {
      groups[it->second].members.push_back(i);
    }
  }
  // Split groups that exceed the sequence slots or the context: each part re-evaluates the prompt.
  std::vector<Group> out;
  for (auto& g : groups) {
    Group cur{g.prompt, {}};
    size_t cells = g.prompt->size();
    for (size_t m : g.members) {
      size_t add = reqs[m].continuation.size() - 1;
      if (!cur.members.empty() && (cur.members.size() >= n_seq || cells + add > n_ctx)) {
        out.push_back(cur);
        cur.members.clear();
        cells = g.prompt->size();
      }
      cur.members.push_back(m);
      cells += add;
    }
    out.push_back(cur);
  }
  return out;
}

std::vector<PlannedToken> wave_tokens(const std::vector<Group>& wave, const std::vector<ScoreRequest>& reqs, bool all_logits) {
  std::vector<PlannedToken> toks;
  llama_seq_id next_seq = 0;
  for (const Group& g : wave) {
    std::vector<llama_seq_id> seqs;
    for (size_t k = 0; k < g.members.size(); k++) seqs.push_back(next_seq + static_cast<llama_seq_id>(k));
    const auto& p = *g.prompt;
    for (size_t j = 0; j < p.size(); j++) {
      PlannedToken t{p[j], static_cast<llama_pos>(j), seqs, {}};
      if (j + 1 == p.size()) {
        for (size_t m : g.members) t.predicts.push_back({m, 0});
      } else if (all_logits) {
        t.predicts.push_back({g.members[0], SIZE_MAX});
      }
      toks.push_back(std::move(t));
    }
    for (size_t k = 0; k < g.members.size(); k++) {
      const auto& c = reqs[g.members[k]].continuation;
      for (size_t j = 0; j + 1 < c.size(); j++) {
        toks.push_back({c[j], static_cast<llama_pos>(p.size() + j), {seqs[k]}, {{g.members[k], j + 1}}});
      }
    }
    next_seq += static_cast<llama_seq_id>(g.members.size());
  }
  return toks;
}

// Unified: the wave's tokens in order, n_batch at a time.
std::vector<std::vector<uint32_t>> unified_batches(size_t n_tokens, uint32_t n_batch) {
  std::vector<std::vector<uint32_t>> batches;
  for (size_t start = 0; start < n_tokens; start += n_batch) {
    std::vector<uint32_t>& sel = batches.emplace_back();
    for (size_t i = start; i < std::min(n_tokens, start + n_batch); i++) sel.push_back(static_cast<uint32_t>(i));
  }
  return batches;
}

// Per-sequence: llama.cpp splits a batch into ubatches with the same number of tokens from each
// sequence (the fewest any of them has left), and its CPU flash attention accumulates in f16 when
// a stream has fewer than 64 query rows in a ubatch (f32 from 64). Batches are therefore made of
// pieces of equal size from consecutive sequences (the wave is sorted longest first): each
// sequence is cut into pieces of T = batch / sequences tokens with the last two balanced, so no
// piece is short unless its request is, and the results match the unified layout's.
std::vector<std::vector<uint32_t>> per_sequence_batches(const std::vector<Group>& wave, const std::vector<ScoreRequest>& reqs, uint32_t n_batch) {
  const size_t n = wave.size();
  const size_t T = std::max<size_t>(1, n_batch / n);
  std::vector<size_t> off(n + 1, 0);
  std::vector<std::vector<size_t>> pieces(n);
  for (size_t k = 0; k < n; k++) {
    const size_t len = wave[k].cells(reqs);
    off[k + 1] = off[k] + len;
    const size_t p = (len + T - 1) / T;
    for (size_t i = 0; i + 2 < p; i++) pieces[k].push_back(T);
    if (p == 1) {
      pieces[k].push_back(len);
    } else {
      const size_t rest = len - (p - 2) * T, a = (rest + 1) / 2;
      pieces[k].push_back(a);
      pieces[k].push_back(rest - a);
    }
  }
  std::vector<std::vector<uint32_t>> batches;
  std::vector<size_t> done(n, 0);  // tokens of each sequence planned so far
  for (size_t round = 0;; round++) {
    bool any = false;
    for (size_t k = 0; k < n;) {
      if (round >= pieces[k].size()) {
        k++;
        continue;
      }
      any = true;
      // A run of consecutive sequences whose piece this round has the same size.
      const size_t size = pieces[k][round];
      size_t e = k;
      std::vector<uint32_t>& sel = batches.emplace_back();
      while (e < n && round < pieces[e].size() && pieces[e][round] == size) {
        for (size_t i = 0; i < size; i++) sel.push_back(static_cast<uint32_t>(off[e] + done[e] + i));
        done[e] += size;
        e++;
      }
      k = e;
    }
    if (!any) break;
  }
  return batches;
}

uint32_t longest_request(const std::vector<ScoreRequest>& reqs) {
  uint32_t longest = 0;
  for (const auto& r : reqs) longest = std::max<uint32_t>(longest, static_cast<uint32_t>(r.prompt.size() + r.continuation.size() - 1));
  return longest;
}

}  // namespace

LayoutChoice choose_layout(const std::vector<ScoreRequest>& reqs, const ScorerLayoutState& st) {
  LayoutChoice c;
  c.longest = longest_request(reqs) + st.spare_cells;
  if (st.layout != KvLayout::Auto) {
    c.per_seq = st.layout == KvLayout::PerSequence;
    return c;
  }
  for (const Group& g : group_by_prompt(reqs, st.n_seq, st.n_ctx)) {
    if (g.members.size() > 1) return c;
  }
  const uint32_t want = (c.longest + 255) / 256 * 256;
  if (st.per_seq_context && st.stream_cells >= want) {
    c.per_seq = true;
  } else if (reqs.size() > 1) {
    c.per_seq = st.n_ctx / want >= 2 && st.n_seq >= 2;
  }
  return c;
}

ScorePlan plan_score(const std::vector<ScoreRequest>& reqs, const ScoreGeometry& g, bool all_logits) {
  std::vector<Group> groups = group_by_prompt(reqs, g.group_seqs, g.group_cells);
  // Per-sequence, longest first: waves hold requests of similar lengths, and pieces of equal size
  // from consecutive sequences decode together (per_sequence_batches).
  if (g.per_seq) std::stable_sort(groups.begin(), groups.end(), [&](const Group& a, const Group& b) { return a.cells(reqs) > b.cells(reqs); });
  ScorePlan plan;
  size_t gi = 0;
  while (gi < groups.size()) {
    // Fill one wave with whole groups while cells and sequence slots last.
    std::vector<Group> wave;
    size_t cells = 0, seqs = 0;
    while (gi < groups.size()) {
      const size_t c = groups[gi].cells(reqs), q = groups[gi].members.size();
      if (!wave.empty() && (cells + c > g.wave_cells || seqs + q > g.wave_seqs)) break;
      wave.push_back(groups[gi++]);
      cells += c;
      seqs += q;
    }
    PlannedWave& w = plan.waves.emplace_back();
    w.tokens = wave_tokens(wave, reqs, all_logits);
    w.batches = g.per_seq ? per_sequence_batches(wave, reqs, g.n_batch) : unified_batches(w.tokens.size(), g.n_batch);
  }
  return plan;
}

}  // namespace msr
