// Fused cross-entropy over rows of logits: one pass per row gives the max, the log-sum-exp
// (accumulated in double), the target's log-probability, the weighted loss and, optionally, the
// gradient  d(loss)/d(logit_j) = w * (softmax_j - [j == target])  written in place.
//
// Shapes: logits  [n_rows, n_vocab] with row stride `row_stride` floats (rows may be padded)
//         targets [n_rows] token ids, weights [n_rows] (null = all 1)
//         logprobs_out [n_rows] (null = not needed)
//         grad    [n_rows, n_vocab] with stride `grad_stride` (null = no gradient; may alias logits)
// Never materialised: the softmax matrix, a one-hot label matrix or any [rows x vocab] temporary;
// extra memory is O(n_rows). Rows with weight 0 still get their log-prob; their gradient is 0.
// Returns sum over rows of -w * logprob (double). lse_out [n_rows] (null = not needed) receives each
// row's log-sum-exp, so another target t of row r has the log-prob float(double(x[t]) - lse_out[r]),
// the same bits this function gives t as a row's own target.
//
// The scorer uses it without a gradient for its log-prob reduction; the trainer with one.
#pragma once
#include <cstdint>

#include "policy_loss.h"

namespace msr {

double fused_ce_cpu(const float* logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                    const float* weights, float* logprobs_out, float* grad, int64_t grad_stride, int n_threads,
                    double* lse_out = nullptr);

// Plain two-pass reference (max, then log-sum-exp in double; gradient from a second softmax pass).
// Slow on purpose: it is what the fast kernels are tested against.
double fused_ce_reference(const float* logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                          const float* weights, float* logprobs_out, float* grad, int64_t grad_stride);

// The policy-gradient form (policy_loss.h): row r's loss is coefs[r]·loss_r(lp_r), where lp_r is
// the target's log-prob under softmax(logits / temperature) and loss_r the clipped surrogate plus
// the KL term; its gradient w_r·(softmax − onehot)/temperature with w_r = −coefs[r]·dloss_r/dlp_r,
// whose sign varies by row, is written in the same two passes (the first also gives each row's
// entropy). Extra memory O(n_rows). logprobs_out is required, entropy_out and grad may be null.
// Returns Σ coefs[r]·loss_r.
double fused_policy_cpu(const float* logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                        const PolicyRows& in, const PolicyParams& p, float* logprobs_out, float* entropy_out, float* grad,
                        int64_t grad_stride, int n_threads);
// Its plain double-precision reference (three passes, a softmax vector per row).
double fused_policy_reference(const float* logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                              const PolicyRows& in, const PolicyParams& p, float* logprobs_out, float* entropy_out, float* grad,
                              int64_t grad_stride);

#ifdef MSR_REC_CUDA
// Same contract on device pointers; returns the loss via a device-side reduction copied back.
double fused_ce_cuda(const float* d_logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* d_targets,
                     const float* d_weights, float* d_logprobs_out, float* d_grad, int64_t grad_stride, void* cuda_stream);

// The trainer's form: logits and grad in device memory, the per-row arrays (targets, weights,
// logprobs_out) in host memory; runs on the legacy default stream and returns when done.
double fused_ce_cuda_rows(const float* d_logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                          const float* weights, float* logprobs_out, float* d_grad, int64_t grad_stride);

// fused_policy_cpu's contract on device pointers (logits, targets, the PolicyRows arrays, the outputs
// and grad all in device memory), on `cuda_stream`.
double fused_policy_cuda(const float* d_logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* d_targets,
                         const PolicyRows& d_in, const PolicyParams& p, float* d_logprobs_out, float* d_entropy_out, float* d_grad,
                         int64_t grad_stride, void* cuda_stream);
// The trainer's form: logits and grad in device memory, every per-row array in host memory.
double fused_policy_cuda_rows(const float* d_logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                              const PolicyRows& in, const PolicyParams& p, float* logprobs_out, float* entropy_out, float* d_grad,
                              int64_t grad_stride);
#endif

}  // namespace msr
