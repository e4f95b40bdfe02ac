// The numerics of the scorer's and the generator's contexts.
//
// Invariant (the default on the CPU): a request's logits, and so its token log-probs, PPL, greedy
// tokens and sampled tokens under its seed, are bitwise the same whatever else is in the call, how
// the call is cut into waves and batches, which KV layout it runs in and how many threads decode
// it. llama.cpp's CPU kernels make a row's bits depend on its batch in three places, each removed
// here:
//   - flash attention picks a kernel by the query rows per stream (< 64: one chunk, F16
//     accumulation; >= 64: 64-cell tiles whose boundaries move with other requests' cells; one row
//     over >= 512 cells: split by thread count). The reference kernel (use_ref on the CPU backend)
//     is the one-chunk kernel for every batch: a row's online softmax runs over its own visible
//     cells in order, nothing else. With an F32 KV cache (kept F32 under flash attention by
//     native/patches/llama-graph-f32-kv-cache.patch) it accumulates in F32, exact to ~1e-5.
//   - a matrix product of one row takes ggml's vec_dot instead of llamafile's tinyBLAS (another
//     summation order for F32/F16/BF16 weights): decode_batch never lets a batch or its last layer
//     have one row (a lone token gets a pad token after it, a lone output row a second one).
//   - a CUDA build offloads batches of >= 32 rows to the GPU even without GPU layers (op_offload).
// Repacked quantized weights run rows in groups of 4 (gemm) and the rest one by one (gemv); on some
// CPUs and types the two disagree, which check_repacked_weights finds once per model.
//
// Fast: llama.cpp's default kernels (F16 KV cache, the kernel choice above), bit for bit what
// node-llama-cpp computes for the same batch; a request's scores then depend on its batch in the
// last digits (up to ~1e-2 in token log-prob on F16 or quantized weights). With GPU layers only
// fast numerics exist.
#pragma once
#include "common.h"

namespace msr {

enum class Numerics { Invariant, Fast };

// The `numerics` option of a scorer or a generate call ("invariant" | "fast"; default invariant,
// or fast on a model with GPU layers, which cannot be invariant: asking for it there is an error).
Numerics get_numerics(const Napi::Object& opts, const ModelState& m);

// llama.cpp context parameters for these numerics: invariant adds an F32 KV cache and no op
// offload, and a batch of at least 2 tokens (decode_batch's pad token must fit).
void apply_numerics(llama_context_params& p, Numerics n);

// llama_init_from_model (null on failure, as it is), then, for invariant numerics, the reference
// kernels on the context's CPU backend. Caller holds the model's lock.
llama_context* init_context(const ModelState& m, const llama_context_params& p, Numerics n);

// Bytes of the KV cache of n_ctx cells under these numerics (F32 cells are twice F16's).
int64_t kv_bytes(const ModelState& m, uint32_t n_ctx, Numerics n);

// llama_decode of `batch`, whose arrays hold at least n_tokens + 1 tokens. Invariant numerics: a
// batch of one token gets a pad token (same sequence, next position, removed after the decode), and
// a batch with one output row gets a second one, so no matrix product runs on one row. Read logits
// with llama_get_logits_ith (row order may include the extra row). Returns llama_decode's code.
int32_t decode_batch(llama_context* ctx, llama_batch& batch, Numerics n);

// Invariant numerics on repacked quantized weights: for each repacked weight type of the model,
// multiplies the same activation row alone and among 5 rows and compares the results (once per
// model; the result is kept). Throws UserError naming the type and the fix when they differ.
void check_repacked_weights(ModelState& m, const char* what);

}  // namespace msr
