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

namespace msr {

double fused_ce_cpu(const float* logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                    const float* weights, float* logprobs_out, float* grad, int64_t grad_stride, int n_threads,
                    double* lse_out = nullptr);

// Plain two-pass reference (max, then log-sum-exp in double; gradient from a second softmax pass).
// Slow on purpose: it is what the fast kernels are tested against.
double fused_ce_reference(const float* logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                          const float* weights, float* logprobs_out, float* grad, int64_t grad_stride);

#ifdef MSR_REC_CUDA
// Same contract on device pointers; returns the loss via a device-side reduction copied back.
double fused_ce_cuda(const float* d_logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* d_targets,
                     const float* d_weights, float* d_logprobs_out, float* d_grad, int64_t grad_stride, void* cuda_stream);

// The trainer's form: logits and grad in device memory, the per-row arrays (targets, weights,
// logprobs_out) in host memory; runs on the legacy default stream and returns when done.
double fused_ce_cuda_rows(const float* d_logits, int64_t n_rows, int64_t n_vocab, int64_t row_stride, const int32_t* targets,
                          const float* weights, float* logprobs_out, float* d_grad, int64_t grad_stride);
#endif

}  // namespace msr
