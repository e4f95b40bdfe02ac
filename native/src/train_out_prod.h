// ggml_out_prod for the CPU backward, reading its first operand as stored (F32, F16, BF16 or any
// quantized type ggml dequantizes) and its second in place whatever its strides, so that
//   dx = Wᵀ·dy     (out_prod(W, transpose(dy)): W a frozen weight, quantized or not)
//   dA = x·gᵀ      (the LoRA and full-mode weight gradients, contracted over the tokens)
// run without a transposed copy of anything: no F32 copy of a weight, no cont of an activation.
//
// out (M, N) F32, out[m, n] = Σ_k a[m, k]·b[n, k] (ggml's out_prod), with a (M, K) stored as K
// contiguous rows of M values (a weight's rows, or an activation's tokens) and b (N, K) F32 with
// any strides (a transposed view included). Each thread owns a range of out's rows (whole
// quantization blocks) or, when there are fewer of those than threads, of its columns: for every
// 64 rows of a it dequantizes its columns of them once into a small F32 panel (L1/L2-resident) and
// adds their products into its part of out with a register-tiled kernel (AVX-512, AVX2+FMA or
// plain C++, picked at run time), fetching the next rows while it computes. a is read once, sums
// are F32 as in ggml's F32 mul_mat.
#pragma once
#include <cstdint>

#include "ggml.h"

namespace msr {

// True when the CPU op computes ggml_out_prod(a, b) for these operands: a's rows contiguous and of
// a type ggml can dequantize, b F32 (any strides); dims 2 and 3 as ggml allows (a broadcast over b's).
bool out_prod_supported(const ggml_tensor* a, const ggml_tensor* b);

// CPU graph op: the same tensor (shape, values up to F32 rounding) as ggml_out_prod(ctx, a, b).
ggml_tensor* out_prod_cpu(ggml_context* ctx, ggml_tensor* a, ggml_tensor* b);

// Turns an existing GGML_OP_OUT_PROD node (with supported operands) into this op, in place.
void make_out_prod_cpu(ggml_tensor* node);

// The op's work on plain memory, for tests and benchmarks: out[m + n·M] = Σ_k A[k][m]·b[k·sk + n·sn]
// with A's row k at a + k·row_bytes, split over nth threads as the graph would (this is thread ith's part).
void out_prod_compute(ggml_type type, const void* a, int64_t M, int64_t K, size_t row_bytes, const float* b, int64_t sk, int64_t sn, int64_t N,
                      float* out, int ith, int nth);

// The same with a named kernel ("avx512", "avx2", "generic"), for tests; false if this CPU lacks it.
bool out_prod_isa_available(const char* isa);
void out_prod_compute_isa(const char* isa, ggml_type type, const void* a, int64_t M, int64_t K, size_t row_bytes, const float* b, int64_t sk,
                          int64_t sn, int64_t N, float* out, int ith, int nth);

// Which kernel the graph op runs: the best this CPU supports ("avx512", "avx2" or "generic").
const char* out_prod_isa();

}  // namespace msr
