#include "scorer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "fused_ce.h"
#include "model.h"

namespace msr {

ScorerState::~ScorerState() {
  if (ctx) {
    llama_context* c = ctx;
    free_under_model_lock(model, [c] { llama_free(c); });
  }
}

// The context is made by the first call's worker, under the model's lock, rather than by the
// constructor on the JS thread: creating it allocates the KV cache and reserves compute graphs,
// and the lock may be held by another object's running call. Caller holds model->mutex.
void ScorerState::ensure_context(const char* what) {
  if (ctx && !ctx_per_seq) return;
  if (ctx) {
    llama_free(ctx);
    ctx = nullptr;
  }
  take_llama_errors();
  ctx = llama_init_from_model(model->model, cparams);
  if (!ctx) {
    throw UserError(std::string(what) + ": could not create the scorer's context (" + take_llama_errors() +
                    "); create the scorer with a smaller contextSize or batchSize");
  }
  ctx_per_seq = false;
  streams = stream_cells = 0;
  n_ctx = llama_n_ctx(ctx);
  n_batch = llama_n_batch(ctx);
  n_wave = std::min<uint32_t>(n_wave, n_ctx);
}

void ScorerState::ensure_per_sequence_context(const char* what, uint32_t cells) {
  const uint32_t want = (std::max<uint32_t>(cells, 1) + 255) / 256 * 256;  // llama.cpp pads streams to 256 cells
  if (ctx && ctx_per_seq && stream_cells >= want) return;
  if (ctx) {
    llama_free(ctx);
    ctx = nullptr;
  }
  const uint32_t n = std::clamp<uint32_t>(n_ctx / want, 1, n_seq);
  llama_context_params p = cparams;
  p.kv_unified = false;
  p.n_seq_max = n;
  p.n_ctx = n * want;  // llama.cpp splits n_ctx evenly: n_ctx_seq = want exactly
  take_llama_errors();
  ctx = llama_init_from_model(model->model, p);
  if (!ctx) {
    throw UserError(std::string(what) + ": could not create the scorer's per-sequence context (" + take_llama_errors() +
                    "); create the scorer with a smaller contextSize or batchSize, or kvLayout: \"unified\"");
  }
  ctx_per_seq = true;
  streams = n;
  stream_cells = llama_n_ctx_seq(ctx);
}

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

// One token of a wave: where it goes and which (request, continuation index) its logits predict.
struct WaveToken {
  llama_token token;
  llama_pos pos;
  std::vector<llama_seq_id> seqs;
  // For an output row: the requests and continuation positions it predicts (several for a shared
  // prompt's last token, one otherwise). Empty = no logits needed.
  std::vector<std::pair<size_t, size_t>> predicts;
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

// Per call: the per-sequence layout when no two requests share a prompt (a shared prompt's tokens
// carry several sequence ids, which only a unified cache can hold; forcing per-sequence then
// re-evaluates the prompt for each request) and at least two streams of the longest request fit
// the context's cells; kept for later calls it fits, so one-request calls do not remake it.
bool use_per_sequence(const ScorerState& s, const std::vector<ScoreRequest>& reqs, const std::vector<Group>& groups, uint32_t longest) {
  if (s.layout == KvLayout::Unified) return false;
  if (s.layout == KvLayout::PerSequence) return true;
  for (const Group& g : groups) {
    if (g.members.size() > 1) return false;
  }
  const uint32_t want = (longest + 255) / 256 * 256;
  if (s.ctx && s.ctx_per_seq && s.stream_cells >= want) return true;
  if (reqs.size() == 1) return false;
  return s.n_ctx / want >= 2 && s.n_seq >= 2;
}

std::vector<WaveToken> wave_tokens(const std::vector<Group>& wave, const std::vector<ScoreRequest>& reqs, bool all_logits) {
  std::vector<WaveToken> toks;
  llama_seq_id next_seq = 0;
  for (const Group& g : wave) {
    std::vector<llama_seq_id> seqs;
    for (size_t k = 0; k < g.members.size(); k++) seqs.push_back(next_seq + static_cast<llama_seq_id>(k));
    const auto& p = *g.prompt;
    for (size_t j = 0; j < p.size(); j++) {
      WaveToken t{p[j], static_cast<llama_pos>(j), seqs, {}};
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

// Sums each request's log-probs and computes its PPL; a NaN or infinite value anywhere is an error
// naming its cause rather than a number handed to the caller.
void check_finite_results(std::vector<ScoreResult>& results, const std::vector<LoraChoice>& loras) {
  for (size_t i = 0; i < results.size(); i++) {
    ScoreResult& r = results[i];
    double sum = 0.0;
    for (size_t j = 0; j < r.token_logprobs.size(); j++) {
      if (!std::isfinite(r.token_logprobs[j])) {
        throw UserError("scorer.score: request " + std::to_string(i) + ", continuation token " + std::to_string(j) +
                        " got a non-finite log-prob (the model's logits overflowed to inf/NaN)" +
                        (loras.empty() ? "; the model's weights may be damaged" : "; lower the LoRA scale"));
      }
      sum += r.token_logprobs[j];
    }
    r.logprob = sum;
    r.ppl = std::exp(-sum / static_cast<double>(r.token_logprobs.size()));
    if (!std::isfinite(r.ppl)) {
      throw UserError("scorer.score: request " + std::to_string(i) + " has a mean log-prob of " + std::to_string(sum / r.token_logprobs.size()) +
                      ", whose PPL overflows a double; compare log-probs instead of PPL");
    }
  }
}

}  // namespace

std::vector<ScoreResult> score_requests(ScorerState& s, const std::vector<ScoreRequest>& reqs, const std::vector<LoraChoice>& loras,
                                        bool reduce, ScoreProfile* profile) {
  std::vector<ScoreResult> results(reqs.size());
  for (size_t i = 0; i < reqs.size(); i++) results[i].token_logprobs.assign(reqs[i].continuation.size(), 0.f);
  const ModelState& m = *s.model;
  std::lock_guard<std::mutex> lock(s.model->mutex);
  s.model->check_alive("scorer.score");
  if (s.disposed) throw UserError("scorer.score: the scorer was disposed; create a new one with model.createScorer()");
  uint32_t longest = 0;
  for (const auto& r : reqs) longest = std::max<uint32_t>(longest, static_cast<uint32_t>(r.prompt.size() + r.continuation.size() - 1));
  std::vector<Group> groups = group_by_prompt(reqs, s.n_seq, s.n_ctx);
  const bool per_seq = use_per_sequence(s, reqs, groups, longest);
  // Per-sequence: one request per stream (a shared prompt is evaluated once per member), a wave is
  // as many requests as there are streams, and attention never spans requests, so no cell cap.
  uint32_t wave_seqs = s.n_seq, wave_cells = s.n_wave;
  if (per_seq) {
    s.ensure_per_sequence_context("scorer.score", longest);
    groups = group_by_prompt(reqs, 1, s.stream_cells);
    // Longest first: waves hold requests of similar lengths, and pieces of equal size from
    // consecutive sequences decode together (see the wave loop).
    std::stable_sort(groups.begin(), groups.end(), [&](const Group& a, const Group& b) { return a.cells(reqs) > b.cells(reqs); });
    wave_seqs = s.streams;
    wave_cells = UINT32_MAX;
  } else {
    s.ensure_context("scorer.score");
  }
  for (size_t i = 0; i < reqs.size(); i++) {
    if (reqs[i].prompt.size() + reqs[i].continuation.size() - 1 > s.n_ctx) {
      throw UserError("scorer.score: requests[" + std::to_string(i) + "] does not fit the context of " + std::to_string(s.n_ctx) +
                      " cells llama.cpp made; create the scorer with a larger contextSize");
    }
  }
  const uint32_t n_batch = llama_n_batch(s.ctx);
  ScopedLoras scoped_loras(s.ctx, loras);
  llama_memory_t mem = llama_get_memory(s.ctx);
  llama_batch batch = llama_batch_init(static_cast<int32_t>(n_batch), 0, static_cast<int32_t>(s.n_seq));
  std::vector<int32_t> targets;
  std::vector<float> lps;

  using clock = std::chrono::steady_clock;
  const auto t_call = clock::now();
  double t_decode = 0, t_reduce = 0;
  size_t n_decodes = 0, n_waves = 0;
  // Decodes one batch (tokens of the current wave) and reduces its output rows.
  auto run_batch = [&](const std::vector<const WaveToken*>& sel) {
    batch.n_tokens = 0;
    std::vector<const WaveToken*> rows;
    for (const WaveToken* tp : sel) {
      const WaveToken& t = *tp;
      int32_t b = batch.n_tokens++;
      batch.token[b] = t.token;
      batch.pos[b] = t.pos;
      batch.n_seq_id[b] = static_cast<int32_t>(t.seqs.size());
      for (size_t k = 0; k < t.seqs.size(); k++) batch.seq_id[b][k] = t.seqs[k];
      batch.logits[b] = !t.predicts.empty();
      if (!t.predicts.empty()) rows.push_back(&t);
    }
    const auto t0 = clock::now();
    int32_t rc = llama_decode(s.ctx, batch);
    if (rc != 0) {
      throw UserError("scorer.score: llama_decode failed (code " + std::to_string(rc) + "): " + take_llama_errors() +
                      "; try a larger contextSize or a smaller batch");
    }
    const auto t1 = clock::now();
    t_decode += std::chrono::duration<double>(t1 - t0).count();
    n_decodes++;
    if (!reduce || rows.empty()) return;
    // One fused pass over all output rows, each with its first target; extra targets of a
    // shared prompt row reuse that row's log-sum-exp: lp_k = x[t_k] - x[t_0] + lp_0.
    const float* logits = llama_get_logits(s.ctx);
    targets.resize(rows.size());
    lps.resize(rows.size());
    for (size_t r = 0; r < rows.size(); r++) {
      auto [req, j] = rows[r]->predicts[0];
      targets[r] = reqs[req].continuation[j];
    }
    fused_ce_cpu(logits, static_cast<int64_t>(rows.size()), m.n_vocab, m.n_vocab, targets.data(), nullptr, lps.data(), nullptr, 0,
                 m.n_threads);
    for (size_t r = 0; r < rows.size(); r++) {
      const float* x = logits + r * static_cast<size_t>(m.n_vocab);
      for (size_t k = 0; k < rows[r]->predicts.size(); k++) {
        auto [req, j] = rows[r]->predicts[k];
        float lp = k == 0 ? lps[r] : x[reqs[req].continuation[j]] - x[targets[r]] + lps[r];
        results[req].token_logprobs[j] = lp;
      }
    }
    t_reduce += std::chrono::duration<double>(clock::now() - t1).count();
  };

  try {
    size_t gi = 0;
    std::vector<const WaveToken*> sel;
    while (gi < groups.size()) {
      // Fill one wave with whole groups while cells and sequence slots last.
      std::vector<Group> wave;
      size_t cells = 0, seqs = 0;
      while (gi < groups.size()) {
        size_t c = groups[gi].cells(reqs), q = groups[gi].members.size();
        if (!wave.empty() && (cells + c > wave_cells || seqs + q > wave_seqs)) break;
        wave.push_back(groups[gi++]);
        cells += c;
        seqs += q;
      }
      llama_memory_clear(mem, true);
      n_waves++;
      std::vector<WaveToken> toks = wave_tokens(wave, reqs, !reduce);
      if (!per_seq) {
        for (size_t start = 0; start < toks.size(); start += n_batch) {
          sel.clear();
          for (size_t i = start; i < std::min(toks.size(), start + n_batch); i++) sel.push_back(&toks[i]);
          run_batch(sel);
        }
        continue;
      }
      // Per-sequence: llama.cpp splits a batch into ubatches with the same number of tokens from
      // each sequence (the fewest any of them has left), and its CPU flash attention accumulates
      // in f16 when a stream has fewer than 64 query rows in a ubatch (f32 from 64). Batches are
      // therefore made of pieces of equal size from consecutive sequences (the wave is sorted
      // longest first): each sequence is cut into pieces of T = batch / sequences tokens with the
      // last two balanced, so no piece is short unless its request is, and the results match
      // the unified layout's.
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
      std::vector<size_t> done(n, 0);  // tokens of each sequence decoded so far
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
          sel.clear();
          while (e < n && round < pieces[e].size() && pieces[e][round] == size) {
            for (size_t i = 0; i < size; i++) sel.push_back(&toks[off[e] + done[e] + i]);
            done[e] += size;
            e++;
          }
          run_batch(sel);
          k = e;
        }
        if (!any) break;
      }
    }
    if (profile) {
      const double total = std::chrono::duration<double>(clock::now() - t_call).count();
      *profile = ScoreProfile{per_seq, n_waves, n_decodes, 1e3 * t_decode, 1e3 * t_reduce, 1e3 * (total - t_decode - t_reduce)};
    }
  } catch (...) {
    llama_batch_free(batch);
    throw;
  }
  llama_batch_free(batch);
  if (reduce) check_finite_results(results, loras);
  return results;
}

// ---- JS surface ---------------------------------------------------------------------------

Napi::Function Scorer::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Scorer",
                                    {
                                        Method<&Scorer::Score>("score"),
                                        Method<&Scorer::Dispose>("dispose"),
                                        Getter<&Scorer::GetConfig>("config"),
                                    });
  addon_data(env).scorer = Napi::Persistent(ctor);
  return ctor;
}

Scorer::Scorer(const Napi::CallbackInfo& info) : Wrap<Scorer>(info) { guard(info.Env(), [&] { init(info); }); }

void Scorer::init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "new Scorer(model, {contextSize?, sequences?, batchSize?, waveTokens?, kvLayout?})");
  ModelPtr model = model_from_js(info[0]);
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  double n_ctx = get_number(opts, "contextSize", 2048);
  double n_seq = get_number(opts, "sequences", 32);
  double n_batch = get_number(opts, "batchSize", std::min(512.0, n_ctx));
  if (!(n_ctx >= 16 && n_ctx <= 1 << 20)) throw Napi::RangeError::New(env, "contextSize must be between 16 and 1048576");
  if (!(n_seq >= 1 && n_seq <= 256)) throw Napi::RangeError::New(env, "sequences must be between 1 and 256");
  if (!(n_batch >= 1 && n_batch <= n_ctx)) throw Napi::RangeError::New(env, "batchSize must be between 1 and contextSize");
  // llama.cpp sizes its output rows for max(outputs, sequences) and asserts that fits in the
  // batch, so more sequences than batch tokens could never be used: cap them.
  n_seq = std::min(n_seq, n_batch);
  auto cparams = llama_context_default_params();
  cparams.n_ctx = static_cast<uint32_t>(n_ctx);
  cparams.n_seq_max = static_cast<uint32_t>(n_seq);
  cparams.n_batch = static_cast<uint32_t>(n_batch);
  cparams.n_ubatch = static_cast<uint32_t>(n_batch);
  cparams.kv_unified = true;  // every sequence may use any cell: waves pack requests of any length
  cparams.n_threads = model->n_threads;
  cparams.n_threads_batch = model->n_threads;
  cparams.no_perf = true;
  auto st = std::make_shared<ScorerState>();
  st->model = model;
  st->cparams = cparams;
  // What llama.cpp will make (ensure_context reads the real values): a unified cache padded to 256
  // cells, and the batch as asked (it is at most the context).
  st->n_ctx = (cparams.n_ctx + 255) / 256 * 256;
  st->n_seq = cparams.n_seq_max;
  st->n_batch = cparams.n_batch;
  // A wave's tokens attend over every cell the wave has filled so far, so on narrow models long
  // waves spend more on attention than batching saves; about 4 cells per embedding dimension
  // (but at least one batch) measured best: +20% on the small and tiny presets against waves the
  // size of the context, and no cap in practice for 4096-wide models.
  const double n_embd = llama_model_n_embd(model->model);
  const double wave = get_number(opts, "waveTokens", std::max<double>(st->n_batch, std::min<double>(st->n_ctx, 4 * n_embd)));
  if (!(wave >= 1)) throw Napi::RangeError::New(env, "waveTokens must be at least 1");
  st->n_wave = static_cast<uint32_t>(std::min<double>(wave, st->n_ctx));
  Napi::Value layout = opts.Get("kvLayout");
  if (!layout.IsUndefined() && !layout.IsNull()) {
    std::string l = get_string(layout, "kvLayout");
    if (l == "auto") st->layout = KvLayout::Auto;
    else if (l == "unified") st->layout = KvLayout::Unified;
    else if (l == "per-sequence") st->layout = KvLayout::PerSequence;
    else throw Napi::RangeError::New(env, "kvLayout must be \"auto\", \"unified\" or \"per-sequence\" (got \"" + l + "\")");
  }
  // The f16 KV cache plus the logits rows of a full batch: what this context holds beyond the model.
  st->native_bytes = kv_cache_bytes(*model, st->n_ctx) + static_cast<int64_t>(st->n_batch) * model->n_vocab * 4;
  state_ = st;
  reported_bytes_ = st->native_bytes;
  adjust_external_memory(env, reported_bytes_);
}

void Scorer::Finalize(Napi::Env env) { release(env); }

void Scorer::release(Napi::Env env) {
  adjust_external_memory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

Napi::Value Scorer::GetConfig(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  if (!state_) return info.Env().Null();
  o.Set("contextSize", state_->n_ctx.load());
  o.Set("sequences", state_->n_seq.load());
  o.Set("batchSize", state_->n_batch.load());
  o.Set("waveTokens", state_->n_wave.load());
  o.Set("kvLayout", state_->layout == KvLayout::Unified ? "unified" : state_->layout == KvLayout::PerSequence ? "per-sequence" : "auto");
  return o;
}

namespace {

// {layout, waves, decodes, decodeMs, logprobMs, otherMs} (NativeScoreProfile in src/engine/bindings.ts).
Napi::Object profile_to_js(Napi::Env env, const ScoreProfile& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("layout", p.per_sequence ? "per-sequence" : "unified");
  o.Set("waves", static_cast<double>(p.waves));
  o.Set("decodes", static_cast<double>(p.decodes));
  o.Set("decodeMs", p.decode_ms);
  o.Set("logprobMs", p.reduce_ms);
  o.Set("otherMs", p.other_ms);
  return o;
}

}  // namespace

ScorerPtr Scorer::alive(Napi::Env env, const char* what) const {
  if (!state_) throw Napi::Error::New(env, std::string(what) + ": the scorer was disposed; create a new one with model.createScorer()");
  if (state_->model->disposed) throw Napi::Error::New(env, std::string(what) + ": the model was disposed; load it again with loadModel()");
  return state_;
}

ScorerPtr scorer_from_js(const Napi::Value& v, const char* what) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).scorer.Value())) {
    throw Napi::TypeError::New(v.Env(), "expected a Scorer (from model.createScorer)");
  }
  return Scorer::Unwrap(v.As<Napi::Object>())->alive(v.Env(), what);
}

std::vector<ScoreRequest> get_score_requests(const Napi::Value& v, const ScorerState& s) {
  Napi::Env env = v.Env();
  if (!v.IsArray()) throw Napi::TypeError::New(env, "requests must be an array of {prompt, continuation}");
  Napi::Array arr = v.As<Napi::Array>();
  if (arr.Length() == 0) throw Napi::Error::New(env, "scorer.score: the request list is empty; pass at least one {prompt, continuation}");
  std::vector<ScoreRequest> reqs(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e = arr.Get(i);
    if (!e.IsObject()) throw Napi::TypeError::New(env, "requests[" + std::to_string(i) + "] must be {prompt, continuation}");
    Napi::Object o = e.As<Napi::Object>();
    auto& r = reqs[i];
    r.prompt = get_tokens(o.Get("prompt"), "prompt");
    r.continuation = get_tokens(o.Get("continuation"), "continuation");
    std::string where = "requests[" + std::to_string(i) + "]";
    if (r.prompt.empty()) throw Napi::Error::New(env, where + ": the prompt has no tokens; give at least one (e.g. tokenize with addBos: true)");
    if (r.continuation.empty()) throw Napi::Error::New(env, where + ": the continuation is empty; there is nothing to score");
    size_t len = r.prompt.size() + r.continuation.size() - 1;
    if (len > static_cast<size_t>(s.model->n_ctx_train)) {
      throw Napi::RangeError::New(env, where + " spans " + std::to_string(len) + " positions but the model's training context is " +
                                           std::to_string(s.model->n_ctx_train) + " (model.info.contextLength); shorten the prompt or continuation");
    }
    if (len > s.n_ctx) {
      throw Napi::RangeError::New(env, where + " needs " + std::to_string(len) + " context cells but the scorer's context holds " +
                                           std::to_string(s.n_ctx) + "; create the scorer with a larger contextSize or shorten the request");
    }
    try {
      check_token_range(*s.model, r.prompt, (where + ".prompt").c_str());
      check_token_range(*s.model, r.continuation, (where + ".continuation").c_str());
    } catch (const UserError& e) {
      throw Napi::RangeError::New(env, e.what());
    }
  }
  return reqs;
}

Napi::Value Scorer::Score(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "score(requests: {prompt: Int32Array, continuation: Int32Array}[], options?: {lora?, profile?})");
  ScorerPtr st = alive(env, "scorer.score");
  auto reqs = std::make_shared<std::vector<ScoreRequest>>(get_score_requests(info[0], *st));
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  auto loras = parse_lora_option(opts, st->model);
  auto results = std::make_shared<std::vector<ScoreResult>>();
  auto profile = get_bool(opts, "profile", false) ? std::make_shared<ScoreProfile>() : nullptr;
  return PromiseWorker::Run(
      env, [st, reqs, loras, results, profile]() { *results = score_requests(*st, *reqs, loras, true, profile.get()); },
      [results, profile](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, results->size());
        for (size_t i = 0; i < results->size(); i++) {
          const ScoreResult& r = (*results)[i];
          Napi::Object o = Napi::Object::New(env);
          auto lp = Napi::Float32Array::New(env, r.token_logprobs.size());
          std::copy(r.token_logprobs.begin(), r.token_logprobs.end(), lp.Data());
          o.Set("tokenLogprobs", lp);
          o.Set("logprob", r.logprob);
          o.Set("ppl", r.ppl);
          out.Set(static_cast<uint32_t>(i), o);
        }
        if (profile) out.Set("profile", profile_to_js(env, *profile));
        return out;
      });
}

Napi::Value Scorer::Dispose(const Napi::CallbackInfo& info) {
  if (state_) {
    state_->disposed = true;
    state_.reset();
  }
  release(info.Env());
  return info.Env().Undefined();
}

}  // namespace msr
