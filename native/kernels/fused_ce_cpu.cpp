// CPU implementation of fused_ce (see fused_ce.h for the math). Rows are split across threads.
//
// Per row, one pass over the logits computes the max and the sum of exponentials together, in
// blocks of 64: a block's max is taken first; if it exceeds the running max, the running sum is
// rescaled once by exp(old − new); then the block's exp(x − max) are summed in float (SIMD lanes)
// and the block sum is added into a double accumulator, which keeps the log-sum-exp accurate to
// ~1e-7 relative even for a 128k vocabulary. The gradient pass (needed only for training) reads
// the row a second time and writes w·exp(x − lse), minus w at the target. The exponential is a
// branch-free polynomial (Cody–Waite range reduction, degree-6 minimax on [−ln2/2, ln2/2],
// relative error < 2e-7) that the compiler vectorises; target_clones builds AVX2/FMA and AVX-512
// variants picked at load time, since the addon itself is compiled for baseline x86-64.
//
// fused_policy_cpu is the same pass for the policy-gradient loss (policy_loss.h): the first pass
// also yields the row's entropy, the row's weight is computed from its log-prob, then the same
// gradient pass runs with that weight.
#include "fused_ce.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MSR_SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define MSR_SIMD_CLONES
#endif

namespace msr {

namespace {

// exp(x) for x <= 0 (all uses here subtract a max first); returns 0 below −87.
inline float exp_nonpos(float x) {
  x = std::max(x, -87.0f);
  const float t = x * 1.44269504088896341f;
  const float n = (t + 12582912.f) - 12582912.f;  // round to nearest via 1.5·2^23
  float r = x - n * 0.693145751953125f;           // Cody–Waite: ln2 = hi + lo
  r = r - n * 1.428606765330187045e-06f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t e = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, sizeof(scale));
  return p * scale;
}

constexpr int kBlock = 64;

constexpr int kLanes = 16;  // independent accumulators, so the reductions vectorise without -ffast-math

MSR_SIMD_CLONES
float block_max(const float* x, int n) {
  float lane[kLanes];
  for (int k = 0; k < kLanes; k++) lane[k] = -std::numeric_limits<float>::infinity();
  int j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int k = 0; k < kLanes; k++) lane[k] = x[j + k] > lane[k] ? x[j + k] : lane[k];
  }
  float m = lane[0];
  for (int k = 1; k < kLanes; k++) m = lane[k] > m ? lane[k] : m;
  for (; j < n; j++) m = x[j] > m ? x[j] : m;
  return m;
}

MSR_SIMD_CLONES
float block_sum_exp(const float* x, int n, float m) {
  float lane[kLanes] = {};
  int j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int k = 0; k < kLanes; k++) lane[k] += exp_nonpos(x[j + k] - m);
  }
  float s = 0.f;
  for (int k = 0; k < kLanes; k++) s += lane[k];
  for (; j < n; j++) s += exp_nonpos(x[j] - m);
  return s;
}

MSR_SIMD_CLONES
void write_grad(const float* x, float* g, int64_t n, float lse, float w) {
  for (int64_t j = 0; j < n; j++) g[j] = w * exp_nonpos(x[j] - lse);
}

// Log-sum-exp of one row in a single pass (online max with one rescale per block).
double row_lse(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  double sum = 0.0;
  for (int64_t j = 0; j < n; j += kBlock) {
    const int len = static_cast<int>(std::min<int64_t>(kBlock, n - j));
    const float bm = block_max(x + j, len);
    if (bm > m) {
      if (sum > 0.0) sum *= std::exp(static_cast<double>(m) - static_cast<double>(bm));
      m = bm;
    }
    sum += block_sum_exp(x + j, len, m);
  }
  return static_cast<double>(m) + std::log(sum);
}

void rows_range(const float* logits, int64_t r0, int64_t r1, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                const float* weights, float* logprobs_out, float* grad, int64_t grad_stride, double* lse_out, double* loss_out) {
  double loss = 0.0;
  for (int64_t r = r0; r < r1; r++) {
    const float* x = logits + r * row_stride;
    const int32_t t = targets[r];
    const float w = weights ? weights[r] : 1.f;
    const double lse = row_lse(x, n_vocab);
    if (lse_out) lse_out[r] = lse;
    const float xt = x[t];  // read before an aliased gradient overwrites it
    const double lp = static_cast<double>(xt) - lse;
    if (logprobs_out) logprobs_out[r] = static_cast<float>(lp);
    loss -= static_cast<double>(w) * lp;
    if (grad) {
      float* g = grad + r * grad_stride;
      if (w == 0.f) {
        std::fill(g, g + n_vocab, 0.f);
        continue;
      }
      write_grad(x, g, n_vocab, static_cast<float>(lse), w);
      g[t] = w * static_cast<float>(std::exp(lp)) - w;
    }
  }
  *loss_out = loss;
}

// ---- policy-gradient rows (fused_policy_cpu) ----
// The same single pass over a row, on z = x·s (s = 1/temperature), also accumulating
// Σ e^(z−m)·(z−m): with the sum of exponentials S it gives the entropy of the row's softmax,
// H = Σ p·(lse − z) = log S − (Σ e^(z−m)·(z−m)) / S, without a second pass. When the running max
// moves from m to m', both sums are rescaled: S' = f·S and D' = f·(D + (m − m')·S), f = e^(m−m').

MSR_SIMD_CLONES
float block_sum_exp_dz(const float* x, int n, float s, float m, float* dz_sum) {
  float lane[kLanes] = {}, lane_dz[kLanes] = {};
  int j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int k = 0; k < kLanes; k++) {
      const float dz = x[j + k] * s - m;
      const float e = exp_nonpos(dz);
      lane[k] += e;
      lane_dz[k] += e * dz;
    }
  }
  float sum = 0.f, sdz = 0.f;
  for (int k = 0; k < kLanes; k++) sum += lane[k], sdz += lane_dz[k];
  for (; j < n; j++) {
    const float dz = x[j] * s - m;
    const float e = exp_nonpos(dz);
    sum += e;
    sdz += e * dz;
  }
  *dz_sum = sdz;
  return sum;
}

MSR_SIMD_CLONES
void write_grad_scaled(const float* x, float* g, int64_t n, float s, float lse, float w) {
  for (int64_t j = 0; j < n; j++) g[j] = w * exp_nonpos(x[j] * s - lse);
}

struct LseEntropy {
  double lse, entropy;
};

LseEntropy row_lse_entropy(const float* x, int64_t n, float s) {
  float m = -std::numeric_limits<float>::infinity();
  double sum = 0.0, sum_dz = 0.0;
  for (int64_t j = 0; j < n; j += kBlock) {
    const int len = static_cast<int>(std::min<int64_t>(kBlock, n - j));
    const float bm = block_max(x + j, len) * s;  // s > 0: the max of x·s is (max x)·s, rounded alike
    if (bm > m) {
      if (sum > 0.0) {
        const double shift = static_cast<double>(m) - static_cast<double>(bm);
        const double f = std::exp(shift);
        sum_dz = f * (sum_dz + shift * sum);
        sum *= f;
      }
      m = bm;
    }
    float bdz = 0.f;
    sum += block_sum_exp_dz(x + j, len, s, m, &bdz);
    sum_dz += bdz;
  }
  const double log_sum = std::log(sum);
  return {static_cast<double>(m) + log_sum, log_sum - sum_dz / sum};
}

void policy_rows_range(const float* logits, int64_t r0, int64_t r1, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                       const PolicyRows& in, const PolicyParams& p, float* logprobs_out, float* entropy_out, float* grad,
                       int64_t grad_stride, double* loss_out) {
  const float s = 1.f / p.temperature;
  double loss = 0.0;
  for (int64_t r = r0; r < r1; r++) {
    const float* x = logits + r * row_stride;
    const int32_t t = targets[r];
    const LseEntropy le = row_lse_entropy(x, n_vocab, s);
    const float zt = x[t] * s;  // read before an aliased gradient overwrites it
    const double lp = static_cast<double>(zt) - le.lse;
    logprobs_out[r] = static_cast<float>(lp);
    if (entropy_out) entropy_out[r] = static_cast<float>(le.entropy);
    const PolicyTerm term = policy_term_row(lp, in, r, p);
    const double c = in.coefs[r];
    loss += c * term.loss;
    if (!grad) continue;
    float* g = grad + r * grad_stride;
    // d(c·loss)/dx_j = s·w·(softmax_j − [j == t]) with w = −c·dloss/dlp (policy_loss.h).
    const float ws = static_cast<float>(-c * term.dloss_dlp * s);
    if (ws == 0.f) {
      std::fill(g, g + n_vocab, 0.f);
      continue;
    }
    write_grad_scaled(x, g, n_vocab, s, static_cast<float>(le.lse), ws);
    g[t] = ws * static_cast<float>(std::exp(lp)) - ws;
  }
  *loss_out = loss;
}

// Runs `range(r0, r1, &loss)` over row chunks on up to n_threads threads (the calling thread
// included) and returns the sum of the chunks' losses.
template <typename Range>
double parallel_rows(int64_t n_rows, int64_t n_vocab, int n_threads, const Range& range) {
  if (n_rows <= 0) return 0.0;
  // A thread needs enough work to pay for its start-up (~20 us): at least ~256k logits each.
  const int64_t per_thread_min = std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, n_vocab));
  int n = static_cast<int>(std::min<int64_t>(std::max(1, n_threads), (n_rows + per_thread_min - 1) / per_thread_min));
  std::vector<double> losses(n, 0.0);
  if (n == 1) {
    range(int64_t{0}, n_rows, &losses[0]);
    return losses[0];
  }
  std::vector<std::thread> threads;
  threads.reserve(n);
  const int64_t chunk = (n_rows + n - 1) / n;
  // A thread that cannot start (thread limit, memory) must not terminate the process: the chunks
  // that got no thread run here on the calling thread instead.
  int started = 0;
  for (int i = 0; i < n; i++) {
    int64_t r0 = i * chunk, r1 = std::min(n_rows, r0 + chunk);
    if (r0 >= r1) break;
    try {
      threads.emplace_back(range, r0, r1, &losses[i]);
      started = i + 1;
    } catch (const std::system_error&) {
      break;
    }
  }
  double rest = 0.0;
  if (started * chunk < n_rows) range(started * chunk, n_rows, &rest);
  for (auto& th : threads) th.join();
  double total = rest;
  for (double l : losses) total += l;
  return total;
}

}  // namespace

double fused_ce_cpu(const float* logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                    const float* weights, float* logprobs_out, float* grad, int64_t grad_stride, int n_threads, double* lse_out) {
  return parallel_rows(n_rows, n_vocab, n_threads, [=](int64_t r0, int64_t r1, double* loss) {
    rows_range(logits, r0, r1, n_vocab, row_stride, targets, weights, logprobs_out, grad, grad_stride, lse_out, loss);
  });
}

double fused_ce_reference(const float* logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                          const float* weights, float* logprobs_out, float* grad, int64_t grad_stride) {
  double loss = 0.0;
  for (int64_t r = 0; r < n_rows; r++) {
    const float* x = logits + r * row_stride;
    double m = -INFINITY;
    for (int64_t j = 0; j < n_vocab; j++) m = std::max(m, static_cast<double>(x[j]));
    double s = 0.0;
    for (int64_t j = 0; j < n_vocab; j++) s += std::exp(static_cast<double>(x[j]) - m);
    const double lse = m + std::log(s);
    const double w = weights ? weights[r] : 1.0;
    const double lp = static_cast<double>(x[targets[r]]) - lse;
    if (logprobs_out) logprobs_out[r] = static_cast<float>(lp);
    loss -= w * lp;
    if (grad) {
      std::vector<double> p(n_vocab);
      for (int64_t j = 0; j < n_vocab; j++) p[j] = std::exp(static_cast<double>(x[j]) - lse);
      float* g = grad + r * grad_stride;
      for (int64_t j = 0; j < n_vocab; j++) g[j] = static_cast<float>(w * (p[j] - (j == targets[r] ? 1.0 : 0.0)));
    }
  }
  return loss;
}

double fused_policy_cpu(const float* logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                        const PolicyRows& in, const PolicyParams& p, float* logprobs_out, float* entropy_out, float* grad,
                        int64_t grad_stride, int n_threads) {
  return parallel_rows(n_rows, n_vocab, n_threads, [=, &in, &p](int64_t r0, int64_t r1, double* loss) {
    policy_rows_range(logits, r0, r1, n_vocab, row_stride, targets, in, p, logprobs_out, entropy_out, grad, grad_stride, loss);
  });
}

double fused_policy_reference(const float* logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                              const PolicyRows& in, const PolicyParams& p, float* logprobs_out, float* entropy_out, float* grad,
                              int64_t grad_stride) {
  double loss = 0.0;
  const double s = 1.0 / p.temperature;
  std::vector<double> z(n_vocab), prob(n_vocab);
  for (int64_t r = 0; r < n_rows; r++) {
    const float* x = logits + r * row_stride;
    double m = -INFINITY;
    for (int64_t j = 0; j < n_vocab; j++) m = std::max(m, z[j] = static_cast<double>(x[j]) * s);
    double sum = 0.0;
    for (int64_t j = 0; j < n_vocab; j++) sum += std::exp(z[j] - m);
    const double lse = m + std::log(sum);
    double entropy = 0.0;
    for (int64_t j = 0; j < n_vocab; j++) {
      prob[j] = std::exp(z[j] - lse);
      entropy += prob[j] * (lse - z[j]);
    }
    const int32_t t = targets[r];
    const double lp = z[t] - lse;
    logprobs_out[r] = static_cast<float>(lp);
    if (entropy_out) entropy_out[r] = static_cast<float>(entropy);
    const PolicyTerm term = policy_term_row(lp, in, r, p);
    loss += in.coefs[r] * term.loss;
    if (grad) {
      float* g = grad + r * grad_stride;
      const double w = -in.coefs[r] * term.dloss_dlp * s;
      for (int64_t j = 0; j < n_vocab; j++) g[j] = static_cast<float>(w * (prob[j] - (j == t ? 1.0 : 0.0)));
    }
  }
  return loss;
}

}  // namespace msr
