// Batched generation (see generator.h): samplers, the decoding loop that follows a call's plan
// (generate_plan.h), and the JS entry point.
#include "generator.h"

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <climits>
#include <cmath>
#include <set>
#include <utility>

#include "fused_ce.h"
#include "grammar_guard.h"
#include "llama-cpp.h"
#include "samplers.h"

namespace msr {

namespace {

using TokenSamplerPtr = std::unique_ptr<TokenSampler>;

TokenSamplerPtr make_sampler(const ModelState& m, const GenerateOptions& opt, size_t prompt, uint32_t seed) {
  const std::string& grammar = opt.grammars.empty() ? opt.grammar : opt.grammars[prompt];
  llama_sampler* g = nullptr;
  if (!grammar.empty()) {
    g = llama_sampler_init_grammar(m.vocab, grammar.c_str(), "root");
    if (!g) {
      const std::string which = opt.grammars.empty() ? "the grammar" : "grammars[" + std::to_string(prompt) + "]";
      throw UserError("generate: " + which + " is not valid GBNF (" + take_llama_errors() + "); it needs a `root` rule");
    }
  }
  return std::make_unique<TokenSampler>(m, g, SamplingOptions{opt.temperature, opt.top_k, opt.top_p, opt.min_p}, seed);
}

struct Slot {
  int64_t req = -1;  // prompt index, -1 = free
  size_t fed = 0;    // prompt tokens already in the batch
  llama_pos pos = 0;
  TokenSamplerPtr sampler;
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
  if (r.token_logprobs.size() > keep) r.token_logprobs.resize(keep);
}

// NaN or +inf logits (an overflowing LoRA scale, damaged weights) end the call with an error
// (check_row); returns the row and its largest finite |logit|, for the sampler.
std::pair<const float*, float> checked_logits(const ModelState& m, llama_context* ctx, int32_t row, int64_t req, size_t at) {
  const float* x = llama_get_logits_ith(ctx, row);
  if (!x) throw UserError("generate: llama.cpp returned no logits for prompt " + std::to_string(req));
  float largest_abs = 0.f;
  if (!check_row(x, m.n_vocab, largest_abs)) {
    throw UserError("generate: prompt " + std::to_string(req) + " got non-finite logits (NaN/inf) at generated token " + std::to_string(at) +
                    "; with LoRA adapters lower their scale, otherwise the model's weights may be damaged");
  }
  return {x, largest_abs};
}

// One generate call's decoding loop on the context its plan made: prompts are admitted into free
// slots, each step's batch is built from the slots' pending tokens (and, in the unified cache,
// prompt prefill), decoded, and every slot with a logits row samples its next token.
class GenerationRun {
 public:
  GenerationRun(const ModelState& m, llama_context* ctx, const ContextPlan& plan, const std::vector<std::vector<llama_token>>& prompts,
                const GenerateOptions& opt, std::vector<TokenSamplerPtr>& samplers, std::vector<GenerateResult>& results)
      : m_(m), ctx_(ctx), mem_(llama_get_memory(ctx)), plan_(plan), prompts_(prompts), opt_(opt), samplers_(samplers), results_(results),
        slots_(plan.slots), scoped_batch_(static_cast<int32_t>(plan.n_batch) + 1, 1), batch_(scoped_batch_.batch) {}  // + decode_batch's pad

  // Until every prompt has finished.
  void run() {
    while (finished_ < prompts_.size()) {
      admit();
      if (plan_.per_seq) step_per_sequence();
      else step_unified();
    }
  }

  size_t decodes = 0;
  size_t shared_prompts = 0;  // prompts that took a copy of an identical prompt's stream instead of a decode
  double decode_seconds = 0, sample_seconds = 0;

 private:
  using clock = std::chrono::steady_clock;

  llama_seq_id seq_of(const Slot& s) const { return static_cast<llama_seq_id>(&s - slots_.data()); }

  // A unified cache under invariant numerics runs prompts in waves (see admit).
  bool waves() const { return !plan_.per_seq && opt_.numerics == Numerics::Invariant; }

  // Free slots take the next prompts. Unified: only while the cells reserved by running prompts
  // leave room for the next one's (reserved_cells); per-sequence: every stream holds any prompt.
  //
  // Invariant numerics, unified: in waves. The reference attention kernel sums a row's cells in
  // cell order, which is position order only while no sequence fills cells another one freed: a
  // wave is admitted into an empty cache, its finished sequences keep their cells (masked from the
  // others) until the whole wave has finished, and the cache is cleared before the next wave.
  void admit() {
    if (waves()) {
      if (std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.req >= 0; })) return;
      if (next_req_ < prompts_.size()) llama_memory_clear(mem_, false);
    }
    for (Slot& s : slots_) {
      if (s.req >= 0 || next_req_ >= prompts_.size()) continue;
      if (!plan_.per_seq && reserved_ + reserved_cells(prompts_[next_req_].size(), opt_, plan_) > plan_.n_ctx) continue;
      s.req = static_cast<int64_t>(next_req_);
      s.sampler = std::move(samplers_[next_req_]);
      s.fed = 0;
      s.pos = 0;
      s.text.clear();
      s.piece_ends.clear();
      s.pending_token = false;
      reserved_ += reserved_cells(prompts_[s.req].size(), opt_, plan_);
      next_req_++;
    }
  }

  // Per-sequence: new prompts are decoded first (prefill_new_prompts) and sampled, then one token
  // per running slot (a new prompt mixed into that step would split it into several ubatches).
  void step_per_sequence() {
    if (next_req_ == prompts_.size()) make_running_slots_contiguous();
    prefill_new_prompts();
    if (opt_.numerics == Numerics::Invariant) {
      decode_step_in_runs();
      return;
    }
    batch_.n_tokens = 0;
    for (Slot& s : slots_) {
      if (s.req >= 0 && s.pending_token) {
        push(s, s.next, true);
        s.pending_token = false;
      }
    }
    if (batch_.n_tokens == 0) return;  // every new prompt ended at its first token
    decode();
    sample_all();
  }

  // The new prompts of the running slots, decoded together: each batch takes an equal piece of
  // every prompt in a run of consecutive slots with prompt tokens left, within one ubatch, which is
  // how llama.cpp cuts a batch over several streams (split_equal), so each batch is one ubatch and
  // invariant numerics pad it as they pad any (decode_batch). A prompt ends in the batch that
  // feeds its last token and is sampled from that batch's rows. A new prompt equal to the
  // previous new one (several samples of one prompt, as reinforcement learning draws them) is not
  // decoded: its slot gets a copy of that stream (llama.cpp copies it at the next decode, before
  // anything is written) and samples from the same row, which its own decode would have computed
  // bit for bit under invariant numerics.
  void prefill_new_prompts() {
    std::vector<Slot*> fresh;                // prompts to decode, in slot order
    std::vector<std::vector<Slot*>> copies;  // per entry of `fresh`: the slots sharing its prompt
    for (Slot& s : slots_) {
      if (s.req < 0 || s.fed == prompts_[s.req].size()) continue;
      if (!fresh.empty() && prompts_[fresh.back()->req] == prompts_[s.req]) {
        copies.back().push_back(&s);
        continue;
      }
      fresh.push_back(&s);
      copies.emplace_back();
    }
    const size_t ubatch = std::max<size_t>(1, std::min<size_t>(plan_.n_batch, llama_n_ubatch(ctx_)));
    std::vector<size_t> left(fresh.size());  // prompt tokens not yet in a batch (a sampled slot may end and free itself)
    for (size_t k = 0; k < fresh.size(); k++) left[k] = prompts_[fresh[k]->req].size() - fresh[k]->fed;
    for (bool more = !fresh.empty(); more;) {
      more = false;
      for (size_t i = 0; i < fresh.size();) {
        if (left[i] == 0) {
          i++;
          continue;
        }
        size_t j = i + 1;
        while (j < fresh.size() && j - i < ubatch && left[j] > 0 && seq_of(*fresh[j]) == seq_of(*fresh[j - 1]) + 1) j++;
        size_t piece = ubatch / (j - i);
        for (size_t k = i; k < j; k++) piece = std::min(piece, left[k]);
        batch_.n_tokens = 0;
        for (size_t k = i; k < j; k++) {
          Slot& s = *fresh[k];
          const auto& p = prompts_[s.req];
          for (size_t t = 0; t < piece; t++) {
            s.fed++;
            push(s, p[s.fed - 1], s.fed == p.size());
          }
          left[k] -= piece;
        }
        decode();
        for (size_t k = i; k < j; k++) {
          Slot& s = *fresh[k];
          if (left[k] > 0) {
            more = true;
            continue;
          }
          for (Slot* c : copies[k]) {
            llama_memory_seq_cp(mem_, seq_of(s), seq_of(*c), -1, -1);
            c->fed = s.fed;
            c->pos = s.pos;
            c->batch_index = s.batch_index;
            shared_prompts++;
          }
          sample(s);  // the copies are queued: ending s now clears only its own cells' entries
          for (Slot* c : copies[k]) sample(*c);
        }
        i = j;
      }
    }
  }

  // Invariant numerics, per-sequence: one decode per run of consecutive slots with a pending token.
  // A batch over non-consecutive streams would be split by llama.cpp into ubatches of one run
  // each, and a run of one slot into a one-row ubatch that decode_batch cannot pad.
  void decode_step_in_runs() {
    for (size_t i = 0; i < slots_.size();) {
      auto pending = [&](size_t k) { return k < slots_.size() && slots_[k].req >= 0 && slots_[k].pending_token; };
      if (!pending(i)) {
        i++;
        continue;
      }
      const size_t first = i;
      batch_.n_tokens = 0;
      for (; pending(i); i++) {
        push(slots_[i], slots_[i].next, true);
        slots_[i].pending_token = false;
      }
      decode();
      for (size_t k = first; k < i; k++) {
        if (slots_[k].req >= 0 && slots_[k].batch_index >= 0) sample(slots_[k]);
      }
    }
  }

  // llama.cpp splits a multi-stream batch into ubatches of equal token counts from consecutive
  // sequence ids, so a decode step (one token per running slot) is one ubatch only when the
  // running slots are contiguous: once no request waits, the last running slot moves into the
  // first free one (a copy of its stream, made by the next decode).
  void make_running_slots_contiguous() {
    for (;;) {
      auto free_it = std::find_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.req < 0; });
      auto last_it = std::find_if(slots_.rbegin(), slots_.rend(), [](const Slot& s) { return s.req >= 0; });
      if (free_it == slots_.end() || last_it == slots_.rend() || free_it > last_it.base() - 1) break;
      Slot& to = *free_it;
      Slot& from = *(last_it.base() - 1);
      llama_memory_seq_cp(mem_, seq_of(from), seq_of(to), -1, -1);
      llama_memory_seq_rm(mem_, seq_of(from), -1, -1);
      std::swap(to, from);
    }
  }

  // Unified: decoding slots first (one token each), then prompt prefill with what room is left.
  void step_unified() {
    batch_.n_tokens = 0;
    for (Slot& s : slots_) {
      s.batch_index = -1;
      if (s.req >= 0 && s.pending_token) {
        push(s, s.next, true);
        s.pending_token = false;
      }
    }
    for (Slot& s : slots_) {
      if (s.req < 0) continue;
      const auto& p = prompts_[s.req];
      while (s.fed < p.size() && batch_.n_tokens < static_cast<int32_t>(plan_.n_batch)) {
        s.fed++;
        push(s, p[s.fed - 1], s.fed == p.size());
      }
    }
    if (batch_.n_tokens == 0) throw UserError("generate: internal scheduling error (no work while prompts remain)");
    decode();
    sample_all();
  }

  void push(Slot& s, llama_token t, bool logits) {
    int32_t b = batch_.n_tokens++;
    batch_.token[b] = t;
    batch_.pos[b] = s.pos++;
    batch_.n_seq_id[b] = 1;
    batch_.seq_id[b][0] = seq_of(s);
    batch_.logits[b] = logits;
    if (logits) s.batch_index = b;
  }

  void decode() {
    const auto t0 = clock::now();
    int32_t rc = decode_batch(ctx_, batch_, opt_.numerics);
    decode_seconds += std::chrono::duration<double>(clock::now() - t0).count();
    decodes++;
    if (rc != 0) throw UserError("generate: llama_decode failed (code " + std::to_string(rc) + "): " + take_llama_errors());
  }

  void sample_all() {
    for (Slot& s : slots_) {
      if (s.req >= 0 && s.batch_index >= 0) sample(s);
    }
  }

  // Samples the slot's next token from its logits row of the last decode.
  void sample(Slot& s) {
    struct AddTime {
      double& t;
      clock::time_point t0;
      ~AddTime() { t += std::chrono::duration<double>(clock::now() - t0).count(); }
    } add{sample_seconds, clock::now()};
    auto& r = results_[s.req];
    const auto [logits, largest_abs] = checked_logits(m_, ctx_, s.batch_index, s.req, r.tokens.size());
    llama_token t = s.sampler->sample(logits, m_.n_vocab, largest_abs);
    s.batch_index = -1;
    if (llama_vocab_is_eog(m_.vocab, t)) {
      finish(s, "eos");
      return;
    }
    if (opt_.logprobs) {
      // The row as the model gave it (the sampler chain works on its own copy): the scorer's
      // reduction of it, so the same bits as scoring this token after the same prefix.
      float lp = 0.f;
      fused_ce_cpu(logits, 1, m_.n_vocab, m_.n_vocab, &t, nullptr, &lp, nullptr, 0, 1);
      r.token_logprobs.push_back(lp);
    }
    r.tokens.push_back(t);
    s.text += token_piece(m_, t);
    s.piece_ends.push_back(s.text.size());
    const size_t stop_at = opt_.stop.empty() ? std::string::npos : find_stop(s.text, opt_.stop);
    if (stop_at != std::string::npos) {
      finish(s, "stop", stop_at);
    } else if (static_cast<int32_t>(r.tokens.size()) >= opt_.max_tokens || prompts_[s.req].size() + r.tokens.size() >= plan_.n_train) {
      finish(s, "length");
    } else {
      s.next = t;
      s.pending_token = true;
    }
  }

  void finish(Slot& s, const char* reason, size_t stop_at = std::string::npos) {
    auto& r = results_[s.req];
    r.finish_reason = reason;
    if (stop_at != std::string::npos) {
      trim_at_stop(m_, s, stop_at, r);
    } else {
      r.text = detokenize(m_, r.tokens, false);
    }
    if (!waves()) llama_memory_seq_rm(mem_, seq_of(s), -1, -1);  // waves: cleared with the wave (admit)
    reserved_ -= reserved_cells(prompts_[s.req].size(), opt_, plan_);
    s.req = -1;
    s.sampler.reset();
    finished_++;
  }

  const ModelState& m_;
  llama_context* ctx_;
  llama_memory_t mem_;
  const ContextPlan& plan_;
  const std::vector<std::vector<llama_token>>& prompts_;
  const GenerateOptions& opt_;
  std::vector<TokenSamplerPtr>& samplers_;
  std::vector<GenerateResult>& results_;
  std::vector<Slot> slots_;
  ScopedBatch scoped_batch_;
  llama_batch& batch_;
  size_t next_req_ = 0, finished_ = 0;
  size_t reserved_ = 0;  // unified: cells reserved by running prompts (reserved_cells)
};

}  // namespace

std::vector<GenerateResult> generate_batch(const ModelPtr& model, const std::vector<std::vector<llama_token>>& prompts,
                                           const GenerateOptions& opt, GenerateProfile* profile) {
  const ModelState& m = *model;
  const size_t n = prompts.size();
  std::vector<GenerateResult> results(n);
  const ContextPlan plan = plan_context(m, prompts, opt);

  // Build every sampler up front so a bad grammar fails before any work.
  std::vector<TokenSamplerPtr> samplers;
  samplers.reserve(n);
  for (size_t i = 0; i < n; i++) samplers.push_back(make_sampler(m, opt, i, prompt_seed(opt.seed, i)));

  std::lock_guard<std::mutex> lock(model->mutex);
  model->check_alive("generate");
  take_llama_errors();
  if (opt.numerics == Numerics::Invariant) check_repacked_weights(*model, "generate");
  llama_context_ptr ctx(init_context(m, context_params(m, plan, opt), opt.numerics));
  if (!ctx) {
    throw UserError("generate: could not create a context (" + take_llama_errors() + "); try a smaller contextSize or parallel" +
                    (plan.per_seq ? ", or kvLayout \"unified\"" : ""));
  }
  if (plan.per_seq && llama_n_ctx_seq(ctx.get()) < plan.stream_cells) {
    throw UserError("generate: llama.cpp made streams of " + std::to_string(llama_n_ctx_seq(ctx.get())) + " cells, fewer than the " +
                    std::to_string(plan.stream_cells) + " a request needs; use kvLayout \"unified\"");
  }
  const auto t_call = std::chrono::steady_clock::now();
  ScopedLoras scoped_loras(ctx.get(), opt.loras);
  GenerationRun run(m, ctx.get(), plan, prompts, opt, samplers, results);
  run.run();
  if (profile) {
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_call).count();
    *profile = GenerateProfile{plan.slots, plan.per_seq, run.decodes, 1e3 * run.decode_seconds, 1e3 * run.sample_seconds,
                               1e3 * (total - run.decode_seconds - run.sample_seconds)};
    profile->shared_prompts = run.shared_prompts;
  }
  return results;
}

namespace {

// Every distinct grammar of a call within grammar_guard.h's limits, before llama.cpp's grammar
// code sees it. Runs on the grammar stack: parsing is the recursion being bounded.
void check_grammars(const llama_vocab* vocab, const GenerateOptions& opt) {
  if (!opt.grammar.empty()) check_grammar(vocab, opt.grammar, "the grammar");
  std::set<std::string> checked;
  for (size_t i = 0; i < opt.grammars.size(); i++) {
    if (!opt.grammars[i].empty() && checked.insert(opt.grammars[i]).second) check_grammar(vocab, opt.grammars[i], "grammars[" + std::to_string(i) + "]");
  }
}

}  // namespace

namespace Generator {

Napi::Value Generate(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "generate(prompts: Int32Array[], options?)");
  const ModelState& m = pin.peek();  // plain fields only until the arguments are read
  const JsArray arr = get_array(info[0], "prompts", kMaxTokenArray, "prompts must be an array of token arrays");
  if (arr.n == 0) throw Napi::Error::New(env, "generate: the prompt list is empty; pass at least one prompt");
  auto prompts = std::make_shared<std::vector<std::vector<llama_token>>>();
  for (uint32_t i = 0; i < arr.n; i++) {
    std::string where = "prompts[" + std::to_string(i) + "]";
    auto toks = get_tokens(arr[i], where);
    if (toks.empty()) throw Napi::Error::New(env, where + " has no tokens; give at least one (tokenize with addBos: true)");
    try {
      check_token_range(m, toks, where.c_str());
    } catch (const UserError& e) {
      throw Napi::RangeError::New(env, e.what());
    }
    prompts->push_back(std::move(toks));
  }
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  GenerateOptions opt;
  opt.max_tokens = static_cast<int32_t>(get_int(o, "maxTokens", opt.max_tokens, 1, INT32_MAX));
  const double temperature = get_number(o, "temperature", opt.temperature);
  opt.top_p = static_cast<float>(get_number(o, "topP", opt.top_p));
  opt.top_k = static_cast<int32_t>(get_int(o, "topK", opt.top_k, INT32_MIN, INT32_MAX));  // <= 0: off
  opt.min_p = static_cast<float>(get_number(o, "minP", opt.min_p));
  // 0xFFFFFFFF is llama.cpp's "random seed"; prompt seeds wrap below it (see prompt_seed).
  opt.seed = static_cast<uint32_t>(get_int(o, "seed", 0, 0, 0xFFFFFFFEll));
  opt.parallel = static_cast<int32_t>(get_int(o, "parallel", opt.parallel, 1, 256));
  opt.context_size = static_cast<int32_t>(get_int(o, "contextSize", 0, 0, 1 << 24));
  // A temperature is a float in llama.cpp; a tiny one is greedy where it would overflow (samplers.h).
  if (!(temperature >= 0 && temperature <= FLT_MAX)) throw Napi::RangeError::New(env, "temperature must be a number between 0 and 3.4e38 (0 = greedy)");
  opt.temperature = static_cast<float>(temperature);
  if (!(opt.top_p > 0 && opt.top_p <= 1)) throw Napi::RangeError::New(env, "topP must be in (0, 1]");
  if (!(opt.min_p >= 0 && opt.min_p <= 1)) throw Napi::RangeError::New(env, "minP must be in [0, 1]");
  Napi::Value stop = o.Get("stop");
  if (!stop.IsUndefined() && !stop.IsNull()) {
    const JsArray s = get_array(stop, "stop", 1024, "stop must be an array of strings");
    for (uint32_t i = 0; i < s.n; i++) opt.stop.push_back(get_string(s[i], "stop[i]"));
  }
  Napi::Value grammar = o.Get("grammar");
  if (!grammar.IsUndefined() && !grammar.IsNull()) opt.grammar = get_string(grammar, "grammar");
  Napi::Value grammars = o.Get("grammars");
  if (!grammars.IsUndefined() && !grammars.IsNull()) {
    const JsArray g = get_array(grammars, "grammars", kMaxTokenArray, "grammars must be an array with one GBNF string (or null) per prompt");
    if (!opt.grammar.empty()) throw Napi::TypeError::New(env, "give either grammar (one for every prompt) or grammars (one per prompt), not both");
    if (g.n != prompts->size()) {
      throw Napi::RangeError::New(env, "grammars has " + std::to_string(g.n) + " entries for " + std::to_string(prompts->size()) + " prompts; give one per prompt");
    }
    for (uint32_t i = 0; i < g.n; i++) {
      Napi::Value v = g[i];
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
  opt.loras = parse_lora_option(o, m);
  opt.numerics = get_numerics(o, m);
  opt.logprobs = get_bool(o, "logprobs", false);
  opt.profile = get_bool(o, "profile", false);
  const ModelPtr model = pin.ready();  // the arguments are read: nothing below runs the caller's code
  auto results = std::make_shared<std::vector<GenerateResult>>();
  auto profile = opt.profile ? std::make_shared<GenerateProfile>() : nullptr;
  // The call's own context (KV cache and the logits rows of its slots), reported while it runs; a
  // plan that fails here fails the same way in the worker, with its message.
  int64_t call_bytes = 0;
  try {
    const ContextPlan plan = plan_context(*model, *prompts, opt);
    call_bytes = kv_bytes(*model, plan.n_ctx, opt.numerics) + static_cast<int64_t>(plan.slots) * model->n_vocab * 4;
  } catch (const UserError&) {
  }
  const bool grammars_used = !opt.grammar.empty() || std::any_of(opt.grammars.begin(), opt.grammars.end(), [](const std::string& g) { return !g.empty(); });
  return PromiseWorker::Run(
      env,
      [model, prompts, opt, results, profile, grammars_used]() {
        if (!grammars_used) {
          *results = generate_batch(model, *prompts, opt, profile.get());
          return;
        }
        run_on_grammar_stack([&] {  // llama.cpp's grammar code recurses (grammar_guard.h)
          check_grammars(model->vocab, opt);
          *results = generate_batch(model, *prompts, opt, profile.get());
        });
      },
      [results, profile, logprobs = opt.logprobs](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, results->size());
        for (size_t i = 0; i < results->size(); i++) {
          const auto& r = (*results)[i];
          Napi::Object obj = Napi::Object::New(env);
          obj.Set("text", r.text);
          obj.Set("tokens", to_int32_array(env, r.tokens));
          obj.Set("finishReason", r.finish_reason);
          if (logprobs) {
            auto lp = Napi::Float32Array::New(env, r.token_logprobs.size());
            std::copy(r.token_logprobs.begin(), r.token_logprobs.end(), lp.Data());
            obj.Set("tokenLogprobs", lp);
          }
          out.Set(static_cast<uint32_t>(i), obj);
        }
        if (profile) {
          Napi::Object p = Napi::Object::New(env);
          p.Set("slots", profile->slots);
          p.Set("layout", profile->per_sequence ? "per-sequence" : "unified");
          p.Set("decodes", static_cast<double>(profile->decodes));
          p.Set("sharedPrompts", static_cast<double>(profile->shared_prompts));
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
