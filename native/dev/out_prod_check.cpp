// outProdCheck (see dev.h): the CPU out_prod op (train_out_prod.h) on random operands against
// float64 sums and against ggml's own F32 path (the weight dequantized, transposed and multiplied
// with ggml_mul_mat), for test/train-out-prod.test.ts and quick benchmarks.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "dev.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpp.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "train_out_prod.h"

namespace msr::dev {

namespace {

struct Split {
  uint64_t s;
  float next() {  // uniform in [-1, 1)
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(static_cast<int64_t>(s >> 11) - (int64_t{1} << 52)) / static_cast<float>(int64_t{1} << 52);
  }
};

// A weight type the check can make operands of: F32, or one ggml both quantizes without an
// importance matrix (ggml_quantize_chunk aborts on any other) and dequantizes (what the op reads).
bool checkable(ggml_type t) {
  const auto* traits = ggml_get_type_traits(t);
  return t == GGML_TYPE_F32 || (traits->to_float && traits->from_float_ref && !ggml_quantize_requires_imatrix(t));
}

ggml_type type_by_name(const std::string& name) {
  for (int t = 0; t < GGML_TYPE_COUNT; t++) {
    const char* n = ggml_type_name(static_cast<ggml_type>(t));
    if (n && ggml_get_type_traits(static_cast<ggml_type>(t))->blck_size > 0 && name.size() == std::strlen(n)) {
      bool same = true;
      for (size_t i = 0; i < name.size(); i++) same = same && std::tolower(name[i]) == std::tolower(n[i]);
      if (!same) continue;
      if (!checkable(static_cast<ggml_type>(t))) {
        throw UserError("outProdCheck: weight type " + name +
                        " cannot be made from random values here (ggml quantizes it only with an importance "
                        "matrix, or does not dequantize it); use F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, IQ4_NL or another such type");
      }
      return static_cast<ggml_type>(t);
    }
  }
  throw UserError("outProdCheck: unknown weight type " + name);
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string get_optional_string(const Napi::Object& o, const char* key, const char* fallback) {
  const Napi::Value v = o.Get(key);
  return v.IsUndefined() || v.IsNull() ? fallback : get_string(v, key);
}

}  // namespace

Napi::Value OutProdCheck(const Napi::CallbackInfo& info) {
  require_args(info, 1, "outProdCheck({type, m, k, n, threads?, layout?, isa?, seed?, runs?, batches?, groups?})");
  if (!info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "outProdCheck takes an options object {type, m, k, n, ...}");
  Napi::Object o = info[0].As<Napi::Object>();
  const ggml_type type = type_by_name(get_string(o.Get("type"), "type"));
  constexpr int64_t kMaxDim = int64_t{1} << 40;  // sizes beyond any memory, still exact in a double
  const int64_t M = get_int(o, "m", 256, 1, kMaxDim), K = get_int(o, "k", 64, 1, kMaxDim), N = get_int(o, "n", 8, 1, kMaxDim);
  const double threads_in = get_number(o, "threads", 1);
  if (!(threads_in >= 1 && threads_in <= kMaxThreads)) throw UserError("outProdCheck: threads must be 1.." + std::to_string(kMaxThreads));
  const int threads = static_cast<int>(threads_in);
  const int runs = static_cast<int>(get_int(o, "runs", 1, 1, 1000));
  // batches: b's (and out's) dim 2; groups: a's, each a matrix shared by batches / groups of them
  // (grouped-query attention's broadcast).
  const int64_t HB = get_int(o, "batches", 1, 1, 1 << 20);
  const int64_t GA = get_int(o, "groups", 1, 1, 1 << 20);
  if (HB % GA != 0) throw UserError("outProdCheck: batches must be a multiple of groups");
  // layout "dy": b = transpose(dy) with dy (K, N) contiguous (dx = Wᵀ dy); "act": b (N, K) contiguous (dA = x gᵀ).
  const std::string layout = get_optional_string(o, "layout", "dy");
  if (layout != "dy" && layout != "act") throw UserError("outProdCheck: layout must be \"dy\" or \"act\"");
  const std::string isa = get_optional_string(o, "isa", "");
  if (!isa.empty() && isa != "avx512" && isa != "avx2" && isa != "generic")
    throw UserError("outProdCheck: isa must be \"avx512\", \"avx2\" or \"generic\"");
  Split rng{static_cast<uint64_t>(get_int(o, "seed", 1, 0, int64_t{1} << 53))};
  if (M % ggml_blck_size(type) != 0) throw UserError("outProdCheck: m, k, n must be positive and m a multiple of the type's block size");
  // Refused before any size product can overflow or any allocation is tried.
  const double largest = std::max({static_cast<double>(M) * K * GA, static_cast<double>(K) * N * HB, static_cast<double>(M) * N * HB});
  if (largest > 1e12)
    throw UserError("outProdCheck: out of memory: an operand would hold " + std::to_string(largest) + " values; use smaller m, k, n");

  // a: GA matrices of K rows of M values in `type`; af: the same values as F32 (what the op must use).
  std::vector<float> src(static_cast<size_t>(M * K * GA));
  for (auto& x : src) x = 0.05f * rng.next();
  const size_t row_bytes = ggml_row_size(type, M);
  std::vector<uint8_t> a(row_bytes * K * GA);
  std::vector<float> af(src.size());
  if (type == GGML_TYPE_F32) {
    std::memcpy(a.data(), src.data(), a.size());
    af = src;
  } else {
    ggml_quantize_chunk(type, src.data(), a.data(), 0, K * GA, M, nullptr);
    ggml_get_type_traits(type)->to_float(a.data(), af.data(), M * K * GA);
  }
  // b(k, n) of batch h at b[h·K·N + k·sk + n·sn]; gradients of mixed sizes, some far below F16's normal range.
  std::vector<float> b(static_cast<size_t>(K * N * HB));
  for (size_t i = 0; i < b.size(); i++) b[i] = rng.next() * (i % 7 == 0 ? 1e-6f : 1e-2f);
  const bool dy = layout == "dy";
  const int64_t sk = dy ? 1 : N, sn = dy ? K : 1;

  std::vector<double> ref(static_cast<size_t>(M * N * HB)), scale(ref.size());
  for (int64_t h = 0; h < HB; h++) {
    for (int64_t n = 0; n < N; n++) {
      for (int64_t k = 0; k < K; k++) {
        const double bv = b[h * K * N + k * sk + n * sn];
        const float* ar = af.data() + (h / (HB / GA)) * M * K + k * M;
        double* r = ref.data() + h * M * N + n * M;
        double* sc = scale.data() + h * M * N + n * M;
        for (int64_t m = 0; m < M; m++) {
          r[m] += static_cast<double>(ar[m]) * bv;
          sc[m] += std::fabs(static_cast<double>(ar[m]) * bv);
        }
      }
    }
  }
  const auto compare = [&](const float* got, double* rel_terms, double* rel_max) {
    double e = 0, big = 0, d = 0;
    for (size_t i = 0; i < ref.size(); i++) {
      const double diff = std::fabs(static_cast<double>(got[i]) - ref[i]);
      if (!std::isfinite(got[i])) e = INFINITY;
      if (scale[i] > 0) e = std::max(e, diff / scale[i]);
      d = std::max(d, diff);
      big = std::max(big, std::fabs(ref[i]));
    }
    *rel_terms = e;
    *rel_max = big > 0 ? d / big : d;
  };

  std::vector<float> out(ref.size());
  double op_ms = INFINITY, ggml_ms = INFINITY;
  std::string used = out_prod_isa();
  if (!isa.empty() && HB == 1) {
    // One kernel called directly, on `threads` std::threads.
    if (!out_prod_isa_available(isa.c_str())) throw UserError("outProdCheck: this CPU cannot run the " + isa + " kernel");
    used = isa;
    for (int r = 0; r < runs; r++) {
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> th;
      for (int i = 0; i < threads; i++) {
        th.emplace_back([&, i] { out_prod_compute_isa(isa.c_str(), type, a.data(), M, K, row_bytes, b.data(), sk, sn, N, out.data(), i, threads); });
      }
      for (auto& t : th) t.join();
      op_ms = std::min(op_ms, ms_since(t0));
    }
  }

  // Through ggml graphs on the CPU backend: the op as the trainer uses it, and ggml's F32 path.
  ggml_backend_ptr backend_owner(ggml_backend_cpu_init());
  ggml_backend_t backend = backend_owner.get();
  if (!backend) throw UserError("outProdCheck: could not start ggml's CPU backend");
  ggml_backend_cpu_set_n_threads(backend, threads);
  ggml_init_params ip{ggml_tensor_overhead() * 32 + ggml_graph_overhead() * 2, nullptr, true};
  ggml_context_ptr ctx_owner(ggml_init(ip));
  ggml_context* ctx = ctx_owner.get();
  ggml_tensor* ta = ggml_new_tensor_3d(ctx, type, M, K, GA);
  ggml_tensor* tb = dy ? ggml_new_tensor_3d(ctx, GGML_TYPE_F32, K, N, HB) : ggml_new_tensor_3d(ctx, GGML_TYPE_F32, N, K, HB);
  ggml_backend_buffer_ptr buf(ggml_backend_alloc_ctx_tensors(ctx, backend));
  if (!buf) throw UserError("outProdCheck: out of memory for the operands");
  ggml_backend_tensor_set(ta, a.data(), 0, a.size());
  ggml_backend_tensor_set(tb, b.data(), 0, b.size() * sizeof(float));
  ggml_tensor* bt = dy ? ggml_transpose(ctx, tb) : tb;  // (N, K) as out_prod takes it
  ggml_tensor* mine = out_prod_cpu(ctx, ta, bt);
  // ggml: Aᵀ as F32 (dequantized, transposed, contiguous), times bᵀ: mul_mat contracts over K.
  ggml_tensor* at = ggml_cont(ctx, ggml_transpose(ctx, type == GGML_TYPE_F32 ? ta : ggml_cast(ctx, ta, GGML_TYPE_F32)));  // (K, M, GA)
  ggml_tensor* theirs = ggml_mul_mat(ctx, at, ggml_cont(ctx, ggml_transpose(ctx, bt)));                                   // (M, N, HB)
  ggml_gallocr_ptr galloc_owner(ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend)));
  ggml_gallocr_t galloc = galloc_owner.get();
  ggml_cgraph* g1 = ggml_new_graph(ctx);
  ggml_build_forward_expand(g1, mine);
  ggml_cgraph* g2 = ggml_new_graph(ctx);
  ggml_build_forward_expand(g2, theirs);
  std::vector<float> via_graph(ref.size()), via_ggml(ref.size());
  double graph_ms = INFINITY;
  bool ok = ggml_gallocr_alloc_graph(galloc, g1);
  for (int r = 0; ok && r < runs; r++) {
    const auto t0 = std::chrono::steady_clock::now();
    ok = ggml_backend_graph_compute(backend, g1) == GGML_STATUS_SUCCESS;
    graph_ms = std::min(graph_ms, ms_since(t0));
  }
  if (ok) ggml_backend_tensor_get(mine, via_graph.data(), 0, via_graph.size() * sizeof(float));
  ok = ok && ggml_gallocr_alloc_graph(galloc, g2);
  for (int r = 0; ok && r < runs; r++) {
    const auto t0 = std::chrono::steady_clock::now();
    ok = ggml_backend_graph_compute(backend, g2) == GGML_STATUS_SUCCESS;
    ggml_ms = std::min(ggml_ms, ms_since(t0));
  }
  if (ok) ggml_backend_tensor_get(theirs, via_ggml.data(), 0, via_ggml.size() * sizeof(float));
  if (!ok) throw UserError("outProdCheck: ggml failed to compute");

  Napi::Object res = Napi::Object::New(info.Env());
  double e1, m1, e2, m2, e3, m3;
  compare(via_graph.data(), &e1, &m1);
  compare(via_ggml.data(), &e2, &m2);
  res.Set("isa", out_prod_isa());
  if (!isa.empty()) res.Set("kernel", used);
  res.Set("errTerms", e1);  // max |op - exact| / Σ|terms| over the output
  res.Set("errMax", m1);    // max |op - exact| / max |exact|
  res.Set("ggmlErrTerms", e2);
  res.Set("ggmlErrMax", m2);
  res.Set("ms", graph_ms);
  res.Set("ggmlMs", ggml_ms);
  if (!isa.empty() && HB == 1) {
    compare(out.data(), &e3, &m3);
    res.Set("isaErrTerms", e3);
    res.Set("isaErrMax", m3);
    res.Set("isaMs", op_ms);
  }
  return res;
}

}  // namespace msr::dev
