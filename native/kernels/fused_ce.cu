// CUDA fused cross-entropy (same contract as fused_ce_cpu, see fused_ce.h).
//
// One thread block per row of logits [n_rows, n_vocab]:
//   pass 1: each thread keeps an online (max, sum of exp(x - max)) over its strided elements;
//           the pairs are merged across the block (warp shuffles, then one value per warp in
//           shared memory) into the row's log-sum-exp lse = max + log(sum);
//   then  : logprob = x[target] - lse; loss += -w·logprob (one double atomicAdd per row);
//   pass 2: grad[j] = w·exp(x[j] - lse) - w·[j == target], written in place (grad may alias logits).
// Never materialised: the softmax matrix or any [rows × vocab] temporary; extra memory is
// O(rows) (logprobs) plus one double for the loss. Each logit is read twice (pass 1 and 2) and the
// gradient written once, the minimum for a kernel that must know lse before writing.
// Barriers: one __syncthreads after the warp partials are stored (so warp 0 reads them all) and one
// after warp 0 publishes lse (so every thread reads it before pass 2 overwrites an aliased row).
//
// fused_policy_kernel is the policy-gradient form (policy_loss.h), a transcription of the CPU
// fused_policy_cpu: pass 1 on z = x/temperature also carries D = Σ e^(z−m)·(z−m) for the row's
// entropy (merged like the sums: D = Σ e^(m_i−m)·(D_i + (m_i−m)·S_i)); warp 0's lane 0 then turns
// the row's log-prob into its loss and weight w (policy_term_row, in double), published in shared
// memory with lse before the barrier that precedes pass 2, which writes w·(softmax − onehot)/T.
#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "fused_ce.h"

namespace msr {

namespace {

constexpr int kThreads = 256;

struct MaxSum {
  float m, s;
};

__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  const float m = fmaxf(a.m, b.m);
  return {m, a.s * __expf(a.m - m) + b.s * __expf(b.m - m)};
}

__global__ void fused_ce_kernel(const float* __restrict__ logits, int64_t n_vocab, int64_t row_stride, const int32_t* __restrict__ targets,
                                const float* __restrict__ weights, float* __restrict__ logprobs_out, float* grad, int64_t grad_stride,
                                double* loss) {
  const int64_t row = blockIdx.x;
  const float* x = logits + row * row_stride;
  MaxSum acc{-INFINITY, 0.f};
  for (int64_t j = threadIdx.x; j < n_vocab; j += blockDim.x) acc = merge(acc, MaxSum{x[j], 1.f});
  for (int off = 16; off > 0; off >>= 1) {
    MaxSum o{__shfl_down_sync(0xffffffff, acc.m, off), __shfl_down_sync(0xffffffff, acc.s, off)};
    acc = merge(acc, o);
  }
  __shared__ MaxSum warp_acc[kThreads / 32];
  __shared__ float lse_shared;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_acc[warp] = acc;
  __syncthreads();
  if (warp == 0) {
    acc = lane < blockDim.x / 32 ? warp_acc[lane] : MaxSum{-INFINITY, 0.f};
    for (int off = 16; off > 0; off >>= 1) {
      MaxSum o{__shfl_down_sync(0xffffffff, acc.m, off), __shfl_down_sync(0xffffffff, acc.s, off)};
      acc = merge(acc, o);
    }
    if (lane == 0) lse_shared = acc.m + logf(acc.s);
  }
  __syncthreads();
  const float lse = lse_shared;
  const int32_t t = targets[row];
  const float w = weights ? weights[row] : 1.f;
  const float xt = x[t];
  if (threadIdx.x == 0) {
    const float lp = xt - lse;
    if (logprobs_out) logprobs_out[row] = lp;
    atomicAdd(loss, -static_cast<double>(w) * lp);
  }
  if (!grad) return;
  float* g = grad + row * grad_stride;
  // Every thread has read x[t] above; when grad aliases logits the target entry is rewritten
  // from xt, so no thread depends on a value another thread may already have overwritten.
  __syncthreads();
  for (int64_t j = threadIdx.x; j < n_vocab; j += blockDim.x) {
    const float p = __expf(x[j] - lse);
    g[j] = w * (p - (j == t ? 1.f : 0.f));
  }
}

struct MaxSumDz {
  float m, s, d;  // running max, Σ e^(z−m), Σ e^(z−m)·(z−m)
};

__device__ __forceinline__ MaxSumDz merge(MaxSumDz a, MaxSumDz b) {
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  const float m = fmaxf(a.m, b.m);
  const float da = a.m - m, db = b.m - m;
  const float fa = __expf(da), fb = __expf(db);
  return {m, a.s * fa + b.s * fb, fa * (a.d + da * a.s) + fb * (b.d + db * b.s)};
}

__device__ __forceinline__ MaxSumDz shfl_down(MaxSumDz v, int off) {
  return {__shfl_down_sync(0xffffffff, v.m, off), __shfl_down_sync(0xffffffff, v.s, off), __shfl_down_sync(0xffffffff, v.d, off)};
}

__global__ void fused_policy_kernel(const float* __restrict__ logits, int64_t n_vocab, int64_t row_stride, const int32_t* __restrict__ targets,
                                    PolicyRows in, PolicyParams p, float* __restrict__ logprobs_out, float* __restrict__ entropy_out, float* grad,
                                    int64_t grad_stride, double* loss) {
  const int64_t row = blockIdx.x;
  const float* x = logits + row * row_stride;
  const float sc = 1.f / p.temperature;
  MaxSumDz acc{-INFINITY, 0.f, 0.f};
  for (int64_t j = threadIdx.x; j < n_vocab; j += blockDim.x) acc = merge(acc, MaxSumDz{x[j] * sc, 1.f, 0.f});
  for (int off = 16; off > 0; off >>= 1) acc = merge(acc, shfl_down(acc, off));
  __shared__ MaxSumDz warp_acc[kThreads / 32];
  __shared__ float lse_shared, ws_shared;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_acc[warp] = acc;
  __syncthreads();
  if (warp == 0) {
    acc = lane < blockDim.x / 32 ? warp_acc[lane] : MaxSumDz{-INFINITY, 0.f, 0.f};
    for (int off = 16; off > 0; off >>= 1) acc = merge(acc, shfl_down(acc, off));
    if (lane == 0) {
      const double log_sum = log(static_cast<double>(acc.s));
      const double lse = acc.m + log_sum;
      const int32_t t = targets[row];
      const double lp = static_cast<double>(x[t] * sc) - lse;
      const PolicyTerm term = policy_term_row(lp, in, row, p);
      const double c = in.coefs[row];
      logprobs_out[row] = static_cast<float>(lp);
      if (entropy_out) entropy_out[row] = static_cast<float>(log_sum - acc.d / acc.s);
      atomicAdd(loss, c * term.loss);
      lse_shared = static_cast<float>(lse);
      ws_shared = static_cast<float>(-c * term.dloss_dlp * sc);
    }
  }
  // Publishes lse and w; lane 0 of warp 0 read x[t] before it, so pass 2 may overwrite an aliased row.
  __syncthreads();
  if (!grad) return;
  const float lse = lse_shared, ws = ws_shared;
  const int32_t t = targets[row];
  float* g = grad + row * grad_stride;
  for (int64_t j = threadIdx.x; j < n_vocab; j += blockDim.x) {
    const float pj = ws == 0.f ? 0.f : __expf(x[j] * sc - lse);
    g[j] = ws * (pj - (j == t ? 1.f : 0.f));
  }
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("fused_ce_cuda: ") + what + ": " + cudaGetErrorString(e));
}

}  // namespace

double fused_ce_cuda(const float* d_logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* d_targets,
                     const float* d_weights, float* d_logprobs_out, float* d_grad, int64_t grad_stride, void* cuda_stream) {
  if (n_rows <= 0) return 0.0;
  cudaStream_t stream = static_cast<cudaStream_t>(cuda_stream);
  double* d_loss = nullptr;
  check(cudaMallocAsync(&d_loss, sizeof(double), stream), "cudaMallocAsync");
  check(cudaMemsetAsync(d_loss, 0, sizeof(double), stream), "cudaMemsetAsync");
  fused_ce_kernel<<<static_cast<unsigned>(n_rows), kThreads, 0, stream>>>(d_logits, n_vocab, row_stride, d_targets, d_weights,
                                                                          d_logprobs_out, d_grad, grad_stride, d_loss);
  check(cudaGetLastError(), "kernel launch");
  double loss = 0.0;
  check(cudaMemcpyAsync(&loss, d_loss, sizeof(double), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
  check(cudaFreeAsync(d_loss, stream), "cudaFreeAsync");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return loss;
}

double fused_ce_cuda_rows(const float* d_logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                          const float* weights, float* logprobs_out, float* d_grad, int64_t grad_stride) {
  if (n_rows <= 0) return 0.0;
  cudaStream_t stream = nullptr;
  int32_t* d_targets = nullptr;
  float* d_weights = nullptr;
  float* d_logprobs = nullptr;
  const size_t n = static_cast<size_t>(n_rows);
  check(cudaMallocAsync(&d_targets, n * sizeof(int32_t), stream), "cudaMallocAsync");
  check(cudaMallocAsync(&d_logprobs, n * sizeof(float), stream), "cudaMallocAsync");
  check(cudaMemcpyAsync(d_targets, targets, n * sizeof(int32_t), cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
  if (weights) {
    check(cudaMallocAsync(&d_weights, n * sizeof(float), stream), "cudaMallocAsync");
    check(cudaMemcpyAsync(d_weights, weights, n * sizeof(float), cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
  }
  const double loss = fused_ce_cuda(d_logits, n_rows, n_vocab, row_stride, d_targets, d_weights, d_logprobs, d_grad, grad_stride, stream);
  if (logprobs_out) check(cudaMemcpy(logprobs_out, d_logprobs, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaFreeAsync(d_targets, stream), "cudaFreeAsync");
  check(cudaFreeAsync(d_logprobs, stream), "cudaFreeAsync");
  if (d_weights) check(cudaFreeAsync(d_weights, stream), "cudaFreeAsync");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return loss;
}

double fused_policy_cuda(const float* d_logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* d_targets,
                         const PolicyRows& d_in, const PolicyParams& p, float* d_logprobs_out, float* d_entropy_out, float* d_grad,
                         int64_t grad_stride, void* cuda_stream) {
  if (n_rows <= 0) return 0.0;
  cudaStream_t stream = static_cast<cudaStream_t>(cuda_stream);
  double* d_loss = nullptr;
  check(cudaMallocAsync(&d_loss, sizeof(double), stream), "cudaMallocAsync");
  check(cudaMemsetAsync(d_loss, 0, sizeof(double), stream), "cudaMemsetAsync");
  fused_policy_kernel<<<static_cast<unsigned>(n_rows), kThreads, 0, stream>>>(d_logits, n_vocab, row_stride, d_targets, d_in, p,
                                                                              d_logprobs_out, d_entropy_out, d_grad, grad_stride, d_loss);
  check(cudaGetLastError(), "kernel launch");
  double loss = 0.0;
  check(cudaMemcpyAsync(&loss, d_loss, sizeof(double), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
  check(cudaFreeAsync(d_loss, stream), "cudaFreeAsync");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return loss;
}

double fused_policy_cuda_rows(const float* d_logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                              const PolicyRows& in, const PolicyParams& p, float* logprobs_out, float* entropy_out, float* d_grad,
                              int64_t grad_stride) {
  if (n_rows <= 0) return 0.0;
  cudaStream_t stream = nullptr;
  const size_t n = static_cast<size_t>(n_rows);
  // One device block for the per-row arrays: targets, then advantages, coefs, ref, old (when
  // given), then log-probs and entropies out.
  float* d_rows = nullptr;
  check(cudaMallocAsync(&d_rows, 7 * n * sizeof(float), stream), "cudaMallocAsync");
  int32_t* d_targets = reinterpret_cast<int32_t*>(d_rows);
  auto upload = [&](const float* host, int slot) -> const float* {
    if (!host) return nullptr;
    float* d = d_rows + slot * n;
    check(cudaMemcpyAsync(d, host, n * sizeof(float), cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
    return d;
  };
  check(cudaMemcpyAsync(d_targets, targets, n * sizeof(int32_t), cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
  PolicyRows d_in;
  d_in.advantages = upload(in.advantages, 1);
  d_in.coefs = upload(in.coefs, 2);
  d_in.ref_logprobs = upload(in.ref_logprobs, 3);
  d_in.old_logprobs = upload(in.old_logprobs, 4);
  float* d_lp = d_rows + 5 * n;
  float* d_entropy = d_rows + 6 * n;
  const double loss =
      fused_policy_cuda(d_logits, n_rows, n_vocab, row_stride, d_targets, d_in, p, d_lp, entropy_out ? d_entropy : nullptr, d_grad, grad_stride, stream);
  check(cudaMemcpy(logprobs_out, d_lp, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  if (entropy_out) check(cudaMemcpy(entropy_out, d_entropy, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaFreeAsync(d_rows, stream), "cudaFreeAsync");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return loss;
}

}  // namespace msr
