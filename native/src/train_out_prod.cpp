// See train_out_prod.h. The kernel (train_out_prod_kernel.inc) is compiled three times: for AVX-512,
// for AVX2+FMA+F16C (function-level target regions, so the addon needs no -march flag) and as
// plain C++ for every other CPU; the best one the CPU supports is picked once.
#include "train_out_prod.h"

// struct ggml_custom_op_params (to turn a node into this op in place) is internal to ggml.
#include "../ggml/src/ggml-impl.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's avx512fintrin.h starts some intrinsics from an _mm512_undefined_*() value initialised
// from itself, which -Wmaybe-uninitialized reports wherever the AVX-512 kernel inlines them (GCC
// bug 105593, fixed in GCC 13): silenced for the intrinsics' headers only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#define MSR_WTP_X86 1
#else
#define MSR_WTP_X86 0
#endif

namespace msr {

#define WTP_NS op_generic
#define WTP_VL 4
#define WTP_NV 2
#define WTP_TT 6
#define WTP_X86 0
#include "train_out_prod_kernel.inc"

#if MSR_WTP_X86
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#define WTP_NS op_avx2
#define WTP_VL 8
#define WTP_NV 2
#define WTP_TT 6
#define WTP_X86 2
#include "train_out_prod_kernel.inc"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#endif
#define WTP_NS op_avx512
#define WTP_VL 16
#define WTP_NV 4
#define WTP_TT 6
#define WTP_X86 3
#include "train_out_prod_kernel.inc"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // MSR_WTP_X86

namespace {

using ComputeFn = void (*)(ggml_type, const void*, int64_t, int64_t, size_t, const float*, int64_t, int64_t, int64_t, float*, int, int);

struct Isa {
  const char* name;
  ComputeFn fn;
};

// The kernel named `w` if this CPU runs it, else the best one it runs that is not above `w`.
Isa pick(const std::string& w) {
#if MSR_WTP_X86
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (w != "generic" && w != "avx2" && avx512) return {"avx512", op_avx512::compute};
  if (w != "generic" && avx2) return {"avx2", op_avx2::compute};
#endif
  return {"generic", op_generic::compute};
}

// The best kernel this CPU runs (tests run the others through out_prod_compute_isa).
const Isa& isa() {
  static const Isa chosen = pick("");
  return chosen;
}

// Each (i2, i3) of dst is one 2-D product; a is broadcast over dst's dims 2 and 3 as in ggml's
// out_prod (grouped-query attention: one K/V head for several query heads).
void out_prod_op(ggml_tensor* dst, int ith, int nth, void*) {
  const ggml_tensor* a = dst->src[0];
  const ggml_tensor* b = dst->src[1];
  const int64_t r2 = dst->ne[2] / a->ne[2], r3 = dst->ne[3] / a->ne[3];
  for (int64_t i3 = 0; i3 < dst->ne[3]; i3++) {
    for (int64_t i2 = 0; i2 < dst->ne[2]; i2++) {
      const char* ap = static_cast<const char*>(a->data) + (i2 / r2) * a->nb[2] + (i3 / r3) * a->nb[3];
      const char* bp = static_cast<const char*>(b->data) + i2 * b->nb[2] + i3 * b->nb[3];
      char* op = static_cast<char*>(dst->data) + i2 * dst->nb[2] + i3 * dst->nb[3];
      isa().fn(a->type, ap, a->ne[0], a->ne[1], a->nb[1], reinterpret_cast<const float*>(bp), static_cast<int64_t>(b->nb[1] / sizeof(float)),
               static_cast<int64_t>(b->nb[0] / sizeof(float)), b->ne[0], reinterpret_cast<float*>(op), ith, nth);
    }
  }
}

}  // namespace

bool out_prod_supported(const ggml_tensor* a, const ggml_tensor* b) {
  if (a->ne[1] != b->ne[1] || b->ne[2] % a->ne[2] != 0 || b->ne[3] % a->ne[3] != 0 || b->type != GGML_TYPE_F32) return false;
  if (a->nb[0] != ggml_type_size(a->type) || a->ne[0] % ggml_blck_size(a->type) != 0) return false;
  if (b->nb[0] % sizeof(float) != 0 || b->nb[1] % sizeof(float) != 0) return false;
  if (a->type == GGML_TYPE_F32) return true;
  const auto* traits = ggml_get_type_traits(a->type);
  return traits && traits->to_float;
}

ggml_tensor* out_prod_cpu(ggml_context* ctx, ggml_tensor* a, ggml_tensor* b) {
  GGML_ASSERT(out_prod_supported(a, b));
  ggml_tensor* args[2] = {a, b};
  return ggml_custom_4d(ctx, GGML_TYPE_F32, a->ne[0], b->ne[0], b->ne[2], b->ne[3], args, 2, out_prod_op, GGML_N_TASKS_MAX, nullptr);
}

void make_out_prod_cpu(ggml_tensor* node) {
  GGML_ASSERT(node->op == GGML_OP_OUT_PROD && node->type == GGML_TYPE_F32 && ggml_is_contiguous(node));
  GGML_ASSERT(out_prod_supported(node->src[0], node->src[1]) && node->ne[0] == node->src[0]->ne[0] && node->ne[1] == node->src[1]->ne[0] &&
              node->ne[2] == node->src[1]->ne[2] && node->ne[3] == node->src[1]->ne[3]);
  ggml_custom_op_params p{};
  p.fun = out_prod_op;
  p.n_tasks = GGML_N_TASKS_MAX;
  p.userdata = nullptr;
  node->op = GGML_OP_CUSTOM;
  std::memset(node->op_params, 0, sizeof(node->op_params));
  std::memcpy(node->op_params, &p, sizeof(p));
}

void out_prod_compute(ggml_type type, const void* a, int64_t M, int64_t K, size_t row_bytes, const float* b, int64_t sk, int64_t sn, int64_t N,
                      float* out, int ith, int nth) {
  isa().fn(type, a, M, K, row_bytes, b, sk, sn, N, out, ith, nth);
}

const char* out_prod_isa() { return isa().name; }

bool out_prod_isa_available(const char* name) { return std::strcmp(pick(name).name, name) == 0; }

void out_prod_compute_isa(const char* name, ggml_type type, const void* a, int64_t M, int64_t K, size_t row_bytes, const float* b, int64_t sk,
                          int64_t sn, int64_t N, float* out, int ith, int nth) {
  pick(name).fn(type, a, M, K, row_bytes, b, sk, sn, N, out, ith, nth);
}

}  // namespace msr
