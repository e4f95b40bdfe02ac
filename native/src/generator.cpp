#include "generator.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <deque>

namespace msr {

namespace {

struct SamplerDeleter {
  void operator()(llama_sampler* s) const { llama_sampler_free(s); }
};
using SamplerPtr = std::unique_ptr<llama_sampler, SamplerDeleter>;

SamplerPtr make_sampler(const ModelState& m, const GenerateOptions& opt, size_t prompt, uint32_t seed) {
  SamplerPtr chain(llama_sampler_chain_init(llama_sampler_chain_default_params()));
  const std::string& grammar = opt.grammars.empty() ? opt.grammar : opt.grammars[prompt];
  if (!grammar.empty()) {
    llama_sampler* g = llama_sampler_init_grammar(m.vocab, grammar.c_str(), "root");
    if (!g) {
      const std::string which = opt.grammars.empty() ? "the grammar" : "grammars[" + std::to_string(prompt) + "]";
      throw UserError("generate: " + which + " is not valid GBNF (" + take_llama_errors() + "); it needs a `root` rule");
    }
    llama_sampler_chain_add(chain.get(), g);
  }
  if (opt.temperature <= 0.f) {
    llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
    return chain;
  }
  // Hugging Face's order (the paper's implementation): temperature first, so top-p keeps the
  // nucleus of the tempered distribution.
  llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(opt.temperature));
  if (opt.top_k > 0) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(opt.top_k));
  if (opt.top_p < 1.f) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(opt.top_p, 1));
  if (opt.min_p > 0.f) llama_sampler_chain_add(chain.get(), llama_sampler_init_min_p(opt.min_p, 1));
  llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(seed));
  return chain;
}

struct Slot {
  int64_t req = -1;  // prompt index, -1 = free
  size_t fed = 0;    // prompt tokens already in the batch
  llama_pos pos = 0;
  SamplerPtr sampler;
  std::string text;                // the sampled tokens' pieces, concatenated
  std::vector<size_t> piece_ends;  // where each token's piece ends in `text`
  int32_t batch_index = -1;  // where this slot's logits are in the current batch
  bool pending_token = false;
  llama_token next = 0;
};

// Returns the position of the earliest stop string in `text`, or npos.
size_t find_stop(const std::string& text, const std::vector<std::string>& stop) {
  size_t best = std::string::npos;
  for (const auto& s : stop) {
    if (s.empty()) continue;
    size_t p = text.find(s);
    if (p != std::string::npos) best = std::min(best, p);
  }
  return best;
}

// Prompt i is sampled with seed + i; llama.cpp reads LLAMA_DEFAULT_SEED (0xFFFFFFFF) as "pick a
// random seed", so the sum wraps modulo 0xFFFFFFFF and never reaches it: the run stays reproducible.
uint32_t prompt_seed(uint32_t seed, size_t i) {
  return static_cast<uint32_t>((static_cast<uint64_t>(seed) + i) % 0xFFFFFFFFull);
}

// A stop string was found in the concatenated pieces at `p`: `tokens` keep only the tokens whose
// pieces end before it, and `text` is the detokenized text cut at the same place. Detokenizing
// may drop the first piece's leading space (SentencePiece), which shifts positions by that much.
void trim_at_stop(const ModelState& m, const Slot& s, size_t p, GenerateResult& r) {
  size_t keep = 0;
  while (keep < s.piece_ends.size() && s.piece_ends[keep] <= p) keep++;
  std::string detok = detokenize(m, r.tokens, false);
  const size_t shift = s.text.size() >= detok.size() ? s.text.size() - detok.size() : 0;
  if (s.text.compare(shift, std::string::npos, detok) == 0) {
    r.text = detok.substr(0, p > shift ? p - shift : 0);
  } else {
    r.text = s.text.substr(0, p);
  }
  r.tokens.resize(keep);
}

// NaN or +inf logits (an overflowing LoRA scale, damaged weights) would be sampled silently or
// trip an assertion inside a sampler: they end the call with an error instead.
void check_logits(const ModelState& m, llama_context* ctx, int32_t row, int64_t req, size_t at) {
  const float* x = llama_get_logits_ith(ctx, row);
  if (!x) throw UserError("generate: llama.cpp returned no logits for prompt " + std::to_string(req));
  for (int32_t j = 0; j < m.n_vocab; j++) {
    if (std::isnan(x[j]) || x[j] == INFINITY) {
      throw UserError("generate: prompt " + std::to_string(req) + " got non-finite logits (NaN/inf) at generated token " + std::to_string(at) +
                      "; with LoRA adapters lower their scale, otherwise the model's weights may be damaged");
    }
  }
}

}  // namespace

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
    throw UserError("generate: a prompt of " + std::to_string(longest) + " tokens plus maxTokens " + std::to_string(opt.max_tokens) +
                    " needs " + std::to_string(need_one) + " context cells but contextSize is " + std::to_string(opt.context_size) +
                    "; raise contextSize or lower maxTokens");
  }
  // More slots than sequences the context holds at once could never run together: cap them.
  if (opt.context_size > 0) slots = std::max<int32_t>(1, std::min<int32_t>(slots, static_cast<int32_t>(opt.context_size / need_one)));
  const uint32_t n_ctx = opt.context_size > 0 ? static_cast<uint32_t>(std::min<size_t>(opt.context_size, need_one * slots))
                                              : static_cast<uint32_t>(need_one * slots);
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
    // Unified when it is as cheap: one slot (nothing to separate), or sequences so short that a
    // stream would be mostly padding (the whole unified cache then spans a few hundred cells), or a
    // contextSize that holds fewer streams than the unified cache holds sequences.
    per_seq = slots >= 2 && need_one >= 128 && ps_slots == slots;
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

std::vector<GenerateResult> generate_batch(const ModelPtr& model, const std::vector<std::vector<llama_token>>& prompts,
                                           const GenerateOptions& opt, GenerateProfile* profile) {
  const ModelState& m = *model;
  const size_t n = prompts.size();
  std::vector<GenerateResult> results(n);
  const ContextPlan plan = plan_context(m, prompts, opt);
  const int32_t slots = plan.slots;
  const uint32_t n_ctx = plan.n_ctx, n_batch = plan.n_batch;
  const size_t n_train = plan.n_train;

  // Build every sampler up front so a bad grammar fails before any work.
  std::vector<SamplerPtr> samplers;
  samplers.reserve(n);
  for (size_t i = 0; i < n; i++) samplers.push_back(make_sampler(m, opt, i, prompt_seed(opt.seed, i)));

  std::lock_guard<std::mutex> lock(model->mutex);
  model->check_alive("generate");
  auto cparams = llama_context_default_params();
  cparams.n_ctx = n_ctx;
  cparams.n_seq_max = static_cast<uint32_t>(slots);
  cparams.n_batch = n_batch;
  cparams.n_ubatch = std::min<uint32_t>(n_batch, 512);
  cparams.kv_unified = !plan.per_seq;
  cparams.n_threads = m.n_threads;
  cparams.n_threads_batch = m.n_threads;
  cparams.no_perf = true;
  take_llama_errors();
  llama_context* ctx = llama_init_from_model(m.model, cparams);
  if (!ctx) {
    throw UserError("generate: could not create a context (" + take_llama_errors() + "); try a smaller contextSize or parallel" +
                    (plan.per_seq ? ", or kvLayout \"unified\"" : ""));
  }
  if (plan.per_seq && llama_n_ctx_seq(ctx) < plan.stream_cells) {
    const uint32_t made = llama_n_ctx_seq(ctx);
    llama_free(ctx);
    throw UserError("generate: llama.cpp made streams of " + std::to_string(made) + " cells, fewer than the " +
                    std::to_string(plan.stream_cells) + " a request needs; use kvLayout \"unified\"");
  }
  llama_batch batch = llama_batch_init(static_cast<int32_t>(n_batch), 0, 1);
  using clock = std::chrono::steady_clock;
  const auto t_call = clock::now();
  double t_decode = 0, t_sample = 0;
  size_t n_decodes = 0;
  try {
    ScopedLoras scoped_loras(ctx, opt.loras);
    llama_memory_t mem = llama_get_memory(ctx);
    std::vector<Slot> slot(slots);
    auto seq_of = [&](const Slot& s) { return static_cast<llama_seq_id>(&s - slot.data()); };
    size_t next_req = 0, finished = 0;
    // Unified: cells reserved by running sequences (prompt + max_tokens each): admission control
    // keeps the shared cache from overflowing whatever order sequences finish in. Per-sequence:
    // every stream holds any request, so a free slot is enough.
    size_t reserved = 0;
    auto reserve_of = [&](int64_t req) { return std::min(prompts[req].size() + static_cast<size_t>(opt.max_tokens), n_train); };
    auto finish = [&](Slot& s, const char* reason, size_t stop_at = std::string::npos) {
      auto& r = results[s.req];
      r.finish_reason = reason;
      if (stop_at != std::string::npos) {
        trim_at_stop(m, s, stop_at, r);
      } else {
        r.text = detokenize(m, r.tokens, false);
      }
      llama_memory_seq_rm(mem, seq_of(s), -1, -1);
      reserved -= reserve_of(s.req);
      s.req = -1;
      s.sampler.reset();
      finished++;
    };
    // Samples the slot's next token from its logits row of the last decode.
    auto sample = [&](Slot& s) {
      const auto t0 = clock::now();
      struct Add {
        double& t;
        clock::time_point t0;
        ~Add() { t += std::chrono::duration<double>(clock::now() - t0).count(); }
      } add{t_sample, t0};
      auto& r = results[s.req];
      check_logits(m, ctx, s.batch_index, s.req, r.tokens.size());
      llama_token t = llama_sampler_sample(s.sampler.get(), ctx, s.batch_index);
      s.batch_index = -1;
      if (llama_vocab_is_eog(m.vocab, t)) {
        finish(s, "eos");
        return;
      }
      r.tokens.push_back(t);
      s.text += token_piece(m, t);
      s.piece_ends.push_back(s.text.size());
      const size_t stop_at = opt.stop.empty() ? std::string::npos : find_stop(s.text, opt.stop);
      if (stop_at != std::string::npos) {
        finish(s, "stop", stop_at);
      } else if (static_cast<int32_t>(r.tokens.size()) >= opt.max_tokens || prompts[s.req].size() + r.tokens.size() >= n_train) {
        finish(s, "length");
      } else {
        s.next = t;
        s.pending_token = true;
      }
    };
    auto push = [&](Slot& s, llama_token t, bool logits) {
      int32_t b = batch.n_tokens++;
      batch.token[b] = t;
      batch.pos[b] = s.pos++;
      batch.n_seq_id[b] = 1;
      batch.seq_id[b][0] = seq_of(s);
      batch.logits[b] = logits;
      if (logits) s.batch_index = b;
    };
    auto decode = [&]() {
      const auto t0 = clock::now();
      int32_t rc = llama_decode(ctx, batch);
      t_decode += std::chrono::duration<double>(clock::now() - t0).count();
      n_decodes++;
      if (rc != 0) throw UserError("generate: llama_decode failed (code " + std::to_string(rc) + "): " + take_llama_errors());
    };

    while (finished < n) {
      for (Slot& s : slot) {
        if (s.req < 0 && next_req < n && (plan.per_seq || reserved + reserve_of(static_cast<int64_t>(next_req)) <= n_ctx)) {
          s.req = static_cast<int64_t>(next_req);
          s.sampler = std::move(samplers[next_req]);
          s.fed = 0;
          s.pos = 0;
          s.text.clear();
          s.piece_ends.clear();
          s.pending_token = false;
          reserved += reserve_of(s.req);
          next_req++;
        }
      }
      if (plan.per_seq) {
        // llama.cpp splits a multi-stream batch into ubatches of equal token counts from
        // consecutive sequence ids, so a decode step (one token per running slot) is one ubatch
        // only when the running slots are contiguous: once no request waits, the last running slot
        // moves into the first free one (a copy of its stream, made by the next decode).
        if (next_req == n) {
          for (;;) {
            auto free_it = std::find_if(slot.begin(), slot.end(), [](const Slot& s) { return s.req < 0; });
            auto last_it = std::find_if(slot.rbegin(), slot.rend(), [](const Slot& s) { return s.req >= 0; });
            if (free_it == slot.end() || last_it == slot.rend() || free_it > last_it.base() - 1) break;
            Slot& to = *free_it;
            Slot& from = *(last_it.base() - 1);
            llama_memory_seq_cp(mem, seq_of(from), seq_of(to), -1, -1);
            llama_memory_seq_rm(mem, seq_of(from), -1, -1);
            std::swap(to, from);
          }
        }
        // A new prompt is decoded on its own (one stream, up to a batch per ubatch), then sampled;
        // mixed into the step it would split the step into several ubatches.
        for (Slot& s : slot) {
          if (s.req < 0 || s.fed == prompts[s.req].size()) continue;
          const auto& p = prompts[s.req];
          while (s.fed < p.size()) {
            batch.n_tokens = 0;
            while (s.fed < p.size() && batch.n_tokens < static_cast<int32_t>(n_batch)) {
              s.fed++;
              push(s, p[s.fed - 1], s.fed == p.size());
            }
            decode();
          }
          sample(s);
        }
        batch.n_tokens = 0;
        for (Slot& s : slot) {
          if (s.req >= 0 && s.pending_token) {
            push(s, s.next, true);
            s.pending_token = false;
          }
        }
        if (batch.n_tokens == 0) continue;  // every new prompt ended at its first token
        decode();
        for (Slot& s : slot) {
          if (s.req >= 0 && s.batch_index >= 0) sample(s);
        }
        continue;
      }
      batch.n_tokens = 0;
      // Decoding slots first (one token each), then prompt prefill with what room is left.
      for (Slot& s : slot) {
        s.batch_index = -1;
        if (s.req >= 0 && s.pending_token) {
          push(s, s.next, true);
          s.pending_token = false;
        }
      }
      for (Slot& s : slot) {
        if (s.req < 0) continue;
        const auto& p = prompts[s.req];
        while (s.fed < p.size() && batch.n_tokens < static_cast<int32_t>(n_batch)) {
          s.fed++;
          push(s, p[s.fed - 1], s.fed == p.size());
        }
      }
      if (batch.n_tokens == 0) throw UserError("generate: internal scheduling error (no work while prompts remain)");
      decode();
      for (Slot& s : slot) {
        if (s.req >= 0 && s.batch_index >= 0) sample(s);
      }
    }
    if (profile) {
      const double total = std::chrono::duration<double>(clock::now() - t_call).count();
      *profile = GenerateProfile{slots, plan.per_seq, n_decodes, 1e3 * t_decode, 1e3 * t_sample, 1e3 * (total - t_decode - t_sample)};
    }
  } catch (...) {
    llama_batch_free(batch);
    llama_free(ctx);
    throw;
  }
  llama_batch_free(batch);
  llama_free(ctx);
  return results;
}

namespace Generator {

Napi::Value Generate(const Napi::CallbackInfo& info, const ModelPtr& model) {
  Napi::Env env = info.Env();
  require_args(info, 1, "generate(prompts: Int32Array[], options?)");
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "prompts must be an array of token arrays");
  Napi::Array arr = info[0].As<Napi::Array>();
  if (arr.Length() == 0) throw Napi::Error::New(env, "generate: the prompt list is empty; pass at least one prompt");
  auto prompts = std::make_shared<std::vector<std::vector<llama_token>>>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    auto toks = get_tokens(arr.Get(i), "prompt");
    std::string where = "prompts[" + std::to_string(i) + "]";
    if (toks.empty()) throw Napi::Error::New(env, where + " has no tokens; give at least one (tokenize with addBos: true)");
    try {
      check_token_range(*model, toks, where.c_str());
    } catch (const UserError& e) {
      throw Napi::RangeError::New(env, e.what());
    }
    prompts->push_back(std::move(toks));
  }
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  GenerateOptions opt;
  opt.max_tokens = static_cast<int32_t>(get_int(o, "maxTokens", opt.max_tokens, 1, INT32_MAX));
  opt.temperature = static_cast<float>(get_number(o, "temperature", opt.temperature));
  opt.top_p = static_cast<float>(get_number(o, "topP", opt.top_p));
  opt.top_k = static_cast<int32_t>(get_int(o, "topK", opt.top_k, INT32_MIN, INT32_MAX));  // <= 0: off
  opt.min_p = static_cast<float>(get_number(o, "minP", opt.min_p));
  // 0xFFFFFFFF is llama.cpp's "random seed"; prompt seeds wrap below it (see prompt_seed).
  opt.seed = static_cast<uint32_t>(get_int(o, "seed", 0, 0, 0xFFFFFFFEll));
  opt.parallel = static_cast<int32_t>(get_int(o, "parallel", opt.parallel, 1, 256));
  opt.context_size = static_cast<int32_t>(get_int(o, "contextSize", 0, 0, 1 << 24));
  if (!std::isfinite(opt.temperature) || opt.temperature < 0) throw Napi::RangeError::New(env, "temperature must be a finite number >= 0");
  if (!(opt.top_p > 0 && opt.top_p <= 1)) throw Napi::RangeError::New(env, "topP must be in (0, 1]");
  if (!(opt.min_p >= 0 && opt.min_p <= 1)) throw Napi::RangeError::New(env, "minP must be in [0, 1]");
  Napi::Value stop = o.Get("stop");
  if (stop.IsArray()) {
    Napi::Array s = stop.As<Napi::Array>();
    for (uint32_t i = 0; i < s.Length(); i++) opt.stop.push_back(get_string(s.Get(i), "stop[i]"));
  } else if (!stop.IsUndefined() && !stop.IsNull()) {
    throw Napi::TypeError::New(env, "stop must be an array of strings");
  }
  Napi::Value grammar = o.Get("grammar");
  if (!grammar.IsUndefined() && !grammar.IsNull()) opt.grammar = get_string(grammar, "grammar");
  Napi::Value grammars = o.Get("grammars");
  if (!grammars.IsUndefined() && !grammars.IsNull()) {
    if (!grammars.IsArray()) throw Napi::TypeError::New(env, "grammars must be an array with one GBNF string (or null) per prompt");
    if (!opt.grammar.empty()) throw Napi::TypeError::New(env, "give either grammar (one for every prompt) or grammars (one per prompt), not both");
    Napi::Array g = grammars.As<Napi::Array>();
    if (g.Length() != prompts->size()) {
      throw Napi::RangeError::New(env, "grammars has " + std::to_string(g.Length()) + " entries for " + std::to_string(prompts->size()) + " prompts; give one per prompt");
    }
    for (uint32_t i = 0; i < g.Length(); i++) {
      Napi::Value v = g.Get(i);
      opt.grammars.push_back(v.IsUndefined() || v.IsNull() ? std::string() : get_string(v, "grammars[i]"));
    }
  }
  Napi::Value layout = o.Get("kvLayout");
  if (!layout.IsUndefined() && !layout.IsNull()) {
    const std::string l = get_string(layout, "kvLayout");
    if (l == "auto") opt.kv_layout = KvLayout::Auto;
    else if (l == "unified") opt.kv_layout = KvLayout::Unified;
    else if (l == "per-sequence") opt.kv_layout = KvLayout::PerSequence;
    else throw Napi::RangeError::New(env, "kvLayout must be \"auto\", \"unified\" or \"per-sequence\" (got \"" + l + "\")");
  }
  opt.loras = parse_lora_option(o, model);
  opt.profile = get_bool(o, "profile", false);
  auto results = std::make_shared<std::vector<GenerateResult>>();
  auto profile = opt.profile ? std::make_shared<GenerateProfile>() : nullptr;
  // The call's own context (KV cache and the logits rows of its slots), reported while it runs; a
  // plan that fails here fails the same way in the worker, with its message.
  int64_t call_bytes = 0;
  try {
    const ContextPlan plan = plan_context(*model, *prompts, opt);
    call_bytes = kv_cache_bytes(*model, plan.n_ctx) + static_cast<int64_t>(plan.slots) * model->n_vocab * 4;
  } catch (const UserError&) {
  }
  return PromiseWorker::Run(
      env, [model, prompts, opt, results, profile]() { *results = generate_batch(model, *prompts, opt, profile.get()); },
      [results, profile](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, results->size());
        for (size_t i = 0; i < results->size(); i++) {
          const auto& r = (*results)[i];
          Napi::Object obj = Napi::Object::New(env);
          obj.Set("text", r.text);
          obj.Set("tokens", to_int32_array(env, r.tokens));
          obj.Set("finishReason", r.finish_reason);
          out.Set(static_cast<uint32_t>(i), obj);
        }
        if (profile) {
          Napi::Object p = Napi::Object::New(env);
          p.Set("slots", profile->slots);
          p.Set("layout", profile->per_sequence ? "per-sequence" : "unified");
          p.Set("decodes", static_cast<double>(profile->decodes));
          p.Set("decodeMs", profile->decode_ms);
          p.Set("sampleMs", profile->sample_ms);
          p.Set("otherMs", profile->other_ms);
          out.Set("profile", p);
        }
        return out;
      },
      call_bytes);
}

}  // namespace Generator
}  // namespace msr
