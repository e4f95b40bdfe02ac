// See samplers.h.
#include "samplers.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "common.h"

namespace msr {

namespace {

// llama.cpp's temperature sampler divides every logit by the temperature; this one first checks
// that no finite logit overflows (|logit| / t > FLT_MAX) and otherwise keeps only the best
// candidate, as llama.cpp's own temperature 0 does (the first of equal maxima).
struct Temperature {
  float t;
};

void temperature_apply(llama_sampler* smpl, llama_token_data_array* cur) {
  const double t = static_cast<const Temperature*>(smpl->ctx)->t;
  double largest = 0;
  for (size_t i = 0; i < cur->size; i++) {
    if (std::isfinite(cur->data[i].logit)) largest = std::max(largest, std::fabs(static_cast<double>(cur->data[i].logit)));
  }
  if (largest / t <= FLT_MAX) {
    for (size_t i = 0; i < cur->size; i++) cur->data[i].logit = static_cast<float>(cur->data[i].logit / t);
    return;
  }
  size_t best = 0;
  for (size_t i = 1; i < cur->size; i++) {
    if (cur->data[i].logit > cur->data[best].logit) best = i;
  }
  for (size_t i = 0; i < cur->size; i++) {
    if (i != best) cur->data[i].logit = -INFINITY;
  }
}

const char* temperature_name(const llama_sampler*) { return "msr-temperature"; }
llama_sampler* temperature_clone(const llama_sampler* smpl);
void temperature_free(llama_sampler* smpl) { delete static_cast<Temperature*>(smpl->ctx); }

llama_sampler_i temperature_iface() {
  llama_sampler_i i{};
  i.name = temperature_name;
  i.apply = temperature_apply;
  i.clone = temperature_clone;
  i.free = temperature_free;
  return i;
}

llama_sampler_i kTemperatureIface = temperature_iface();

llama_sampler* temperature_clone(const llama_sampler* smpl) { return temperature_sampler(static_cast<const Temperature*>(smpl->ctx)->t); }

}  // namespace

llama_sampler* temperature_sampler(float t) { return llama_sampler_init(&kTemperatureIface, new Temperature{t}); }

bool check_row(const float* x, int32_t n, float& largest_abs) {
  bool bad = false;
  float largest = 0.f;
  for (int32_t j = 0; j < n; j++) {
    const float v = x[j];
    bad |= !(v <= FLT_MAX) && v != -INFINITY;  // NaN or +inf
    largest = std::max(largest, v == -INFINITY ? 0.f : std::fabs(v));
  }
  largest_abs = largest;
  return !bad;
}

namespace {

// (logit desc, id asc): the order greedy picks in, and a total order for ties.
bool better(const llama_token_data& a, const llama_token_data& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

// The k best finite logits of a row in that order, in one pass: a buffer of up to 4k entries
// above a threshold, cut back to the best k when full (the threshold becomes the k-th logit; a
// later token equal to it has a larger id, so it ranks below all k and stays out).
void best_tokens(const float* x, int32_t n, size_t k, std::vector<llama_token_data>& out) {
  out.clear();
  const size_t cap = std::max<size_t>(4 * k, 64);
  float threshold = -INFINITY;
  auto cut = [&] {
    std::nth_element(out.begin(), out.begin() + (k - 1), out.end(), better);
    out.resize(k);
    threshold = out[k - 1].logit;  // the smallest of the k (nth_element puts none below it before it)
  };
  for (int32_t j = 0; j < n; j++) {
    if (x[j] > threshold) {
      out.push_back({j, x[j], 0.f});
      if (out.size() == cap) cut();
    }
  }
  std::sort(out.begin(), out.end(), better);
  if (out.size() > k) out.resize(k);
}

// The EOG tokens and the tokens whose piece (as llama.cpp's grammar reads it) starts with a UTF-8
// continuation byte, by id: all a grammar can accept in the middle of a character. Found once per
// model, on first use.
const std::vector<llama_token>& mid_char_tokens(const ModelState& m) {
  std::call_once(m.mid_char_once, [&m] {
    for (llama_token t = 0; t < m.n_vocab; t++) {
      // The piece llama.cpp's grammar reads: token_to_piece with special tokens rendered.
      const std::string piece = token_piece(m, t, true);
      if (llama_vocab_is_eog(m.vocab, t) || (!piece.empty() && (static_cast<uint8_t>(piece[0]) >> 6) == 2)) m.mid_char.push_back(t);
    }
  });
  return m.mid_char;
}

// How many continuation bytes the character being decoded still needs after `piece` is read from a
// state needing `n_remain` (0 between characters), as llama.cpp's decode_utf8 counts them; -1 for
// an invalid sequence. The piece ends at its first NUL byte, as there.
int utf8_remaining_after(int n_remain, const std::string& piece) {
  // Sequence length by the high 4 bits of a first byte; 0 for a continuation byte (invalid there).
  static const int kLength[16] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4};
  size_t i = 0;
  const size_t end = std::min(piece.size(), piece.find('\0'));
  for (; i < end && n_remain > 0; i++, n_remain--) {
    if ((static_cast<uint8_t>(piece[i]) >> 6) != 2) return -1;
  }
  while (i < end) {
    n_remain = kLength[static_cast<uint8_t>(piece[i]) >> 4] - 1;
    if (n_remain < 0) return -1;
    // decode_utf8 takes the next n_remain bytes as this character's without checking them.
    for (i++; i < end && n_remain > 0; i++) n_remain--;
  }
  return n_remain;
}

}  // namespace

TokenSampler::TokenSampler(const ModelState& m, llama_sampler* grammar, const SamplingOptions& o, uint32_t seed)
    : model_(m), grammar_(grammar), chain_(llama_sampler_chain_init(llama_sampler_chain_default_params())), temperature_(o.temperature) {
  if (o.temperature <= 0.f) {
    llama_sampler_chain_add(chain_.get(), llama_sampler_init_greedy());
    k_ = 1;
    return;
  }
  // Hugging Face's order (this project's choice: transformers' generate() applies them so):
  // temperature first, so top-p keeps the nucleus of the tempered distribution. A temperature so
  // small that logits would overflow is greedy (samplers.h).
  llama_sampler_chain_add(chain_.get(), temperature_sampler(o.temperature));
  if (o.top_k > 0) llama_sampler_chain_add(chain_.get(), llama_sampler_init_top_k(o.top_k));
  if (o.top_p < 1.f) llama_sampler_chain_add(chain_.get(), llama_sampler_init_top_p(o.top_p, 1));
  if (o.min_p > 0.f) llama_sampler_chain_add(chain_.get(), llama_sampler_init_min_p(o.min_p, 1));
  llama_sampler_chain_add(chain_.get(), llama_sampler_init_dist(seed));
  k_ = std::max(o.top_k, 0);
}

// Temperature is monotonic, so the k best tempered logits are the k best logits, unless the
// temperature sampler's overflow guard would fire over the whole row (it then keeps one token).
bool TokenSampler::fast_path_allowed(int32_t n, float largest_abs) const {
  if (k_ <= 0 || k_ >= n / 4) return false;
  return temperature_ <= 0.f || temperature_ >= 1.f || static_cast<double>(largest_abs) / static_cast<double>(temperature_) <= FLT_MAX;
}

llama_token TokenSampler::pick(std::vector<llama_token_data>& cur, bool sorted) {
  llama_token_data_array a{cur.data(), cur.size(), -1, sorted};
  llama_sampler_apply(chain_.get(), &a);
  if (a.selected < 0 || a.selected >= static_cast<int64_t>(a.size) || a.data[a.selected].logit == -INFINITY) {
    throw UserError("generate: no token can be sampled here (the grammar admits none: it can neither continue nor end; or every logit is -inf); check the grammar");
  }
  const llama_token t = a.data[a.selected].id;
  if (grammar_) {
    llama_sampler_accept(grammar_.get(), t);
    // The grammar ends at an EOG token without reading its piece.
    if (!llama_vocab_is_eog(model_.vocab, t)) utf8_remain_ = utf8_remaining_after(utf8_remain_, token_piece(model_, t, true));
  }
  llama_sampler_accept(chain_.get(), t);
  return t;
}

llama_token TokenSampler::sample(const float* x, int32_t n, float largest_abs) {
  if (grammar_ && utf8_remain_ > 0) return sample_mid_char(x, n, largest_abs);
  if (fast_path_allowed(n, largest_abs)) {
    const size_t k = static_cast<size_t>(k_);
    if (!grammar_) {
      best_tokens(x, n, k, cur_);
      if (cur_.size() == k) return pick(cur_, true);
    } else {
      // The grammar on the best m tokens, 4k at first (on llama3-1b, 64 parallel under a one-line
      // grammar, sampling took 1.8 s per 2,048 tokens against 2.3 s starting at 1.25k), widened
      // 16-fold while fewer than k of them pass.
      for (size_t m = std::max<size_t>(4 * k, 64); m < static_cast<size_t>(n) / 4; m *= 16) {
        best_tokens(x, n, m, best_);
        llama_token_data_array a{best_.data(), best_.size(), -1, true};
        llama_sampler_apply(grammar_.get(), &a);  // sets the logits of tokens it rejects to -inf
        cur_.clear();
        for (const llama_token_data& d : best_) {
          if (d.logit != -INFINITY && cur_.size() < k) cur_.push_back(d);
        }
        if (cur_.size() == k) return pick(cur_, true);
        if (best_.size() < m) break;  // the row has fewer finite logits than m
      }
    }
  }
  return sample_whole_vocabulary(x, n);
}

llama_token TokenSampler::sample_mid_char(const float* x, int32_t n, float largest_abs) {
  best_.clear();
  for (llama_token t : mid_char_tokens(model_)) best_.push_back({t, x[t], 0.f});
  llama_token_data_array a{best_.data(), best_.size(), -1, false};
  llama_sampler_apply(grammar_.get(), &a);  // every token not in best_ it would reject
  if (fast_path_allowed(n, largest_abs)) {
    cur_.clear();
    for (const llama_token_data& d : best_) {
      if (d.logit != -INFINITY) cur_.push_back(d);
    }
    const size_t k = static_cast<size_t>(k_);
    if (cur_.size() >= k) {
      std::partial_sort(cur_.begin(), cur_.begin() + static_cast<std::ptrdiff_t>(k), cur_.end(), better);
      cur_.resize(k);
      return pick(cur_, true);
    }
  }
  // The row sample_whole_vocabulary would give the chain, the grammar's verdicts in place.
  cur_.resize(static_cast<size_t>(n));
  for (int32_t j = 0; j < n; j++) cur_[j] = {j, -INFINITY, 0.f};
  for (const llama_token_data& d : best_) cur_[d.id].logit = d.logit;
  return pick(cur_, false);
}

llama_token TokenSampler::sample_whole_vocabulary(const float* x, int32_t n) {
  // As llama_sampler_sample builds it, grammar first.
  cur_.resize(static_cast<size_t>(n));
  for (int32_t j = 0; j < n; j++) cur_[j] = {j, x[j], 0.f};
  if (grammar_) {
    llama_token_data_array a{cur_.data(), cur_.size(), -1, false};
    llama_sampler_apply(grammar_.get(), &a);
  }
  return pick(cur_, false);
}

}  // namespace msr
