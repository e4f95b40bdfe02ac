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

void ScorerState::check_alive(const std::string& what) const {
  if (disposed) throw disposed_error(what);
  model->check_alive(what);
}

UserError ScorerState::disposed_error(const std::string& what) {
  return UserError(what + ": the scorer was disposed; create a new one with model.createScorer()");
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
  ctx = init_context(*model, cparams, numerics);
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
  ctx = init_context(*model, p, numerics);
  if (!ctx) {
    throw UserError(std::string(what) + ": could not create the scorer's per-sequence context (" + take_llama_errors() +
                    "); create the scorer with a smaller contextSize or batchSize, or kvLayout: \"unified\"");
  }
  ctx_per_seq = true;
  streams = n;
  stream_cells = llama_n_ctx_seq(ctx);
}

namespace {

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

ScorerLayoutState layout_state(const ScorerState& s) {
  return {s.layout, s.ctx && s.ctx_per_seq, s.stream_cells, s.n_ctx, s.n_seq, s.spare_cells()};
}

// The geometry of the context the call runs in (ensure_context / ensure_per_sequence_context made it).
ScoreGeometry geometry(const ScorerState& s, bool per_seq) {
  ScoreGeometry g;
  g.per_seq = per_seq;
  g.n_batch = llama_n_batch(s.ctx);
  if (per_seq) {
    g.group_seqs = 1, g.group_cells = s.stream_cells;
    g.wave_seqs = s.streams, g.wave_cells = UINT32_MAX;
  } else {
    g.group_seqs = s.n_seq, g.group_cells = s.n_ctx - s.spare_cells();
    g.wave_seqs = s.n_seq, g.wave_cells = std::min(s.n_wave.load(), s.n_ctx - s.spare_cells());
  }
  return g;
}

// Runs the plan on the scorer's context: each wave from an empty cache, each batch decoded and its
// output rows reduced into `results` (when `reduce`). Caller holds the model's lock.
void execute_plan(ScorerState& s, const ScorePlan& plan, const std::vector<ScoreRequest>& reqs, bool reduce, std::vector<ScoreResult>& results,
                  ScoreProfile& prof) {
  using clock = std::chrono::steady_clock;
  const ModelState& m = *s.model;
  llama_memory_t mem = llama_get_memory(s.ctx);
  // One more token than a batch holds: decode_batch's pad token.
  ScopedBatch scoped(static_cast<int32_t>(llama_n_batch(s.ctx)) + 1, static_cast<int32_t>(s.n_seq));
  llama_batch& batch = scoped.batch;
  std::vector<const PlannedToken*> rows;
  int32_t first_row = -1;  // batch index of rows[0]
  std::vector<int32_t> targets;
  std::vector<float> lps;
  std::vector<double> lse;
  for (const PlannedWave& wave : plan.waves) {
    llama_memory_clear(mem, true);
    for (const std::vector<uint32_t>& sel : wave.batches) {
      batch.n_tokens = 0;
      rows.clear();
      first_row = -1;
      for (uint32_t i : sel) {
        const PlannedToken& t = wave.tokens[i];
        int32_t b = batch.n_tokens++;
        batch.token[b] = t.token;
        batch.pos[b] = t.pos;
        batch.n_seq_id[b] = static_cast<int32_t>(t.seqs.size());
        for (size_t k = 0; k < t.seqs.size(); k++) batch.seq_id[b][k] = t.seqs[k];
        batch.logits[b] = !t.predicts.empty();
        if (!t.predicts.empty()) {
          if (rows.empty()) first_row = b;
          rows.push_back(&t);
        }
      }
      const auto t0 = clock::now();
      int32_t rc = decode_batch(s.ctx, batch, s.numerics);
      if (rc != 0) {
        throw UserError("scorer.score: llama_decode failed (code " + std::to_string(rc) + "): " + take_llama_errors() +
                        "; try a larger contextSize or a smaller batch");
      }
      const auto t1 = clock::now();
      prof.decode_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
      prof.decodes++;
      if (!reduce || rows.empty()) continue;
      // One fused pass over all output rows, each with its first target; extra targets of a
      // shared prompt row take the row's log-sum-exp: the same bits as a row of their own. The rows
      // are contiguous from rows[0]'s (a lone row may follow decode_batch's extra output row).
      const float* logits = llama_get_logits_ith(s.ctx, first_row);
      targets.resize(rows.size());
      lps.resize(rows.size());
      lse.resize(rows.size());
      for (size_t r = 0; r < rows.size(); r++) {
        auto [req, j] = rows[r]->predicts[0];
        targets[r] = reqs[req].continuation[j];
      }
      fused_ce_cpu(logits, static_cast<int64_t>(rows.size()), m.n_vocab, m.n_vocab, targets.data(), nullptr, lps.data(), nullptr, 0, m.n_threads,
                   lse.data());
      for (size_t r = 0; r < rows.size(); r++) {
        const float* x = logits + r * static_cast<size_t>(m.n_vocab);
        for (size_t k = 0; k < rows[r]->predicts.size(); k++) {
          auto [req, j] = rows[r]->predicts[k];
          float lp = k == 0 ? lps[r] : static_cast<float>(static_cast<double>(x[reqs[req].continuation[j]]) - lse[r]);
          results[req].token_logprobs[j] = lp;
        }
      }
      prof.reduce_ms += std::chrono::duration<double, std::milli>(clock::now() - t1).count();
    }
  }
}

}  // namespace

std::vector<ScoreResult> score_requests(ScorerState& s, const std::vector<ScoreRequest>& reqs, const std::vector<LoraChoice>& loras,
                                        bool reduce, ScoreProfile* profile) {
  std::vector<ScoreResult> results(reqs.size());
  for (size_t i = 0; i < reqs.size(); i++) results[i].token_logprobs.assign(reqs[i].continuation.size(), 0.f);
  std::lock_guard<std::mutex> lock(s.model->mutex);
  s.check_alive("scorer.score");
  const auto t_call = std::chrono::steady_clock::now();
  // The layout first (it decides the context), then the context, then the plan on its geometry.
  if (s.numerics == Numerics::Invariant) check_repacked_weights(*s.model, "scorer.score");
  const LayoutChoice layout = choose_layout(reqs, layout_state(s));
  if (layout.per_seq) s.ensure_per_sequence_context("scorer.score", layout.longest);
  else s.ensure_context("scorer.score");
  for (size_t i = 0; i < reqs.size(); i++) {
    if (reqs[i].prompt.size() + reqs[i].continuation.size() - 1 + s.spare_cells() > s.n_ctx) {
      throw UserError("scorer.score: requests[" + std::to_string(i) + "] does not fit the context of " + std::to_string(s.n_ctx) +
                      " cells llama.cpp made; create the scorer with a larger contextSize");
    }
  }
  const ScorePlan plan = plan_score(reqs, geometry(s, layout.per_seq), !reduce);
  ScoreProfile prof;
  prof.per_sequence = layout.per_seq;
  prof.waves = plan.waves.size();
  {
    ScopedLoras scoped_loras(s.ctx, loras);
    execute_plan(s, plan, reqs, reduce, results, prof);
  }
  if (profile) {
    const double total = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_call).count();
    prof.other_ms = total - prof.decode_ms - prof.reduce_ms;
    *profile = prof;
  }
  if (reduce) check_finite_results(results, loras);
  return results;
}

// ---- JS surface ---------------------------------------------------------------------------

Napi::Function Scorer::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Scorer",
                                    {
                                        Method<&Scorer::Score>("score"),
                                        Plain<&Scorer::Dispose>("dispose"),
                                        Getter<&Scorer::GetConfig>("config"),
                                    });
  addon_data(env).scorer = Napi::Persistent(ctor);
  return ctor;
}

Scorer::Scorer(const Napi::CallbackInfo& info) : Wrap<Scorer, ScorerState>(info) { guard(info.Env(), [&] { init(info); }); }

void Scorer::init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "new Scorer(model, {contextSize?, sequences?, batchSize?, waveTokens?, kvLayout?, numerics?})");
  const Pinned<ModelState> pin = model_from_js(info[0], "createScorer");
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
  Napi::Value wave_v = opts.Get("waveTokens");  // read with the other options, used once the model is checked
  if (!wave_v.IsUndefined() && !wave_v.IsNull() && !wave_v.IsNumber()) throw Napi::TypeError::New(env, "waveTokens must be a number");
  KvLayout kv_layout = KvLayout::Auto;
  Napi::Value layout = opts.Get("kvLayout");
  if (!layout.IsUndefined() && !layout.IsNull()) {
    std::string l = get_string(layout, "kvLayout");
    if (l == "auto") kv_layout = KvLayout::Auto;
    else if (l == "unified") kv_layout = KvLayout::Unified;
    else if (l == "per-sequence") kv_layout = KvLayout::PerSequence;
    else throw Napi::RangeError::New(env, "kvLayout must be \"auto\", \"unified\" or \"per-sequence\" (got \"" + l + "\")");
  }
  const Numerics numerics = get_numerics(opts, pin.peek());
  const ModelPtr model = pin.ready();  // the options are read: nothing below runs the caller's code
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
  st->numerics = numerics;
  apply_numerics(cparams, st->numerics);
  st->cparams = cparams;
  st->layout = kv_layout;
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
  const double wave = wave_v.IsNumber() ? wave_v.As<Napi::Number>().DoubleValue()
                                        : std::max<double>(st->n_batch, std::min<double>(st->n_ctx, 4 * n_embd));
  if (!(wave >= 1)) throw Napi::RangeError::New(env, "waveTokens must be at least 1");
  st->n_wave = static_cast<uint32_t>(std::min<double>(wave, st->n_ctx));
  // The KV cache plus the logits rows of a full batch: what this context holds beyond the model.
  st->native_bytes = kv_bytes(*model, st->n_ctx, st->numerics) + static_cast<int64_t>(st->n_batch) * model->n_vocab * 4;
  hold(st);
  reported_bytes_ = st->native_bytes;
  adjust_external_memory(env, reported_bytes_);
}

void Scorer::Finalize(Napi::Env env) { release(env); }

void Scorer::release(Napi::Env env) {
  adjust_external_memory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

Napi::Value Scorer::GetConfig(const Napi::CallbackInfo& info) {
  const ScorerPtr& st = held();
  if (!st) return info.Env().Null();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("contextSize", st->n_ctx.load());
  o.Set("sequences", st->n_seq.load());
  o.Set("batchSize", st->n_batch.load());
  o.Set("waveTokens", st->n_wave.load());
  o.Set("kvLayout", st->layout == KvLayout::Unified ? "unified" : st->layout == KvLayout::PerSequence ? "per-sequence" : "auto");
  o.Set("numerics", st->numerics == Numerics::Invariant ? "invariant" : "fast");
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

Pinned<ScorerState> scorer_from_js(const Napi::Value& v, const std::string& what) {
  return Scorer::pin_js(v, what, "expected a Scorer (from model.createScorer)");
}

std::vector<ScoreRequest> get_score_requests(const Napi::Value& v, const ScorerState& s) {
  Napi::Env env = v.Env();
  const JsArray arr = get_array(v, "requests", kMaxTokenArray, "requests must be an array of {prompt, continuation}");
  if (arr.n == 0) throw Napi::Error::New(env, "scorer.score: the request list is empty; pass at least one {prompt, continuation}");
  std::vector<ScoreRequest> reqs(arr.n);
  for (uint32_t i = 0; i < arr.n; i++) {
    Napi::Value e = arr[i];
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
    if (len + s.spare_cells() > s.n_ctx) {
      throw Napi::RangeError::New(env, where + " needs " + std::to_string(len + s.spare_cells()) + " context cells but the scorer's context holds " +
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

Napi::Value Scorer::Score(const Napi::CallbackInfo& info, const Pinned<ScorerState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "score(requests: {prompt: Int32Array, continuation: Int32Array}[], options?: {lora?, profile?})");
  auto reqs = std::make_shared<std::vector<ScoreRequest>>(get_score_requests(info[0], pin.peek()));
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  auto loras = parse_lora_option(opts, *pin.peek().model);
  auto profile = get_bool(opts, "profile", false) ? std::make_shared<ScoreProfile>() : nullptr;
  ScorerPtr st = pin.ready();
  auto results = std::make_shared<std::vector<ScoreResult>>();
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
  if (ScorerPtr st = let_go()) st->disposed = true;
  release(info.Env());
  return info.Env().Undefined();
}

}  // namespace msr
