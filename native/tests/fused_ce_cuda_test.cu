// Checks fused_ce_cuda against the naive CPU reference (fused_ce_reference) on random logits,
// rows of ±1e4 and all-equal rows, for vocab sizes 32000 and 128256, with and without weights,
// and with the gradient written in place over the logits. Prints one line per case and the
// kernel's bandwidth; exits 1 on any mismatch. Then the policy-gradient kernel (fused_policy_cuda)
// against fused_policy_reference: advantages of both signs, with and without reference and old
// log-probs (some tokens clipped), a temperature, and the gradient in place.
// Build: nvcc -O2 -std=c++17 -DMSR_REC_CUDA=1 -Inative/kernels native/tests/fused_ce_cuda_test.cu \
//          native/kernels/fused_ce.cu native/kernels/fused_ce_cpu.cpp -o fused_ce_cuda_test
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "fused_ce.h"

static bool close(double a, double b, double abs_tol, double rel_tol) { return std::fabs(a - b) <= abs_tol + rel_tol * std::fabs(b); }

static int run_case(const char* name, int64_t rows, int64_t vocab, int kind, bool weighted, bool in_place) {
  std::mt19937 rng(1234 + kind);
  std::normal_distribution<float> nd(0.f, 3.f);
  std::vector<float> x(rows * vocab);
  for (auto& v : x) v = nd(rng);
  if (kind == 1) for (int64_t r = 0; r < rows; r++) for (int64_t j = 0; j < vocab; j++) x[r * vocab + j] = (j % 7 == 0) ? 1e4f : -1e4f;
  if (kind == 2) for (auto& v : x) v = 0.5f;
  std::vector<int32_t> t(rows);
  std::vector<float> w(rows);
  for (int64_t r = 0; r < rows; r++) t[r] = static_cast<int32_t>(rng() % vocab), w[r] = weighted ? (r % 5) * 0.25f : 1.f;
  std::vector<float> ref_lp(rows), ref_g(rows * vocab);
  const double ref_loss = msr::fused_ce_reference(x.data(), rows, vocab, vocab, t.data(), weighted ? w.data() : nullptr, ref_lp.data(), ref_g.data(), vocab);

  float *dx, *dg, *dw, *dlp; int32_t* dt;
  cudaMalloc(&dx, x.size() * 4); cudaMalloc(&dg, x.size() * 4); cudaMalloc(&dw, rows * 4); cudaMalloc(&dlp, rows * 4); cudaMalloc(&dt, rows * 4);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dw, w.data(), rows * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dt, t.data(), rows * 4, cudaMemcpyHostToDevice);
  float* grad_ptr = in_place ? dx : dg;
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  cudaEventRecord(e0);
  const double loss = msr::fused_ce_cuda(dx, rows, vocab, vocab, dt, weighted ? dw : nullptr, dlp, grad_ptr, vocab, nullptr);
  cudaEventRecord(e1); cudaEventSynchronize(e1);
  float ms = 0; cudaEventElapsedTime(&ms, e0, e1);
  std::vector<float> lp(rows), g(rows * vocab);
  cudaMemcpy(lp.data(), dlp, rows * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(g.data(), grad_ptr, g.size() * 4, cudaMemcpyDeviceToHost);
  int bad = 0;
  // Tolerances: float32 exp/log over up to 128k terms; the reference runs in double.
  if (!close(loss, ref_loss, 1e-3, 1e-5) || !std::isfinite(loss)) bad++, std::printf("  loss %.9g vs %.9g\n", loss, ref_loss);
  for (int64_t r = 0; r < rows; r++) if (!close(lp[r], ref_lp[r], 1e-4, 1e-5) || !std::isfinite(lp[r])) { if (bad++ < 3) std::printf("  lp[%ld] %g vs %g\n", (long)r, lp[r], ref_lp[r]); }
  for (size_t i = 0; i < g.size(); i++) if (!close(g[i], ref_g[i], 1e-6, 1e-4) || !std::isfinite(g[i])) { if (bad++ < 3) std::printf("  g[%zu] %g vs %g\n", i, g[i], ref_g[i]); }
  std::printf("%-28s rows %5ld vocab %6ld  %s  %.3f ms  %.1f GB/s\n", name, (long)rows, (long)vocab, bad ? "FAIL" : "ok", ms,
              ms > 0 ? (3.0 * x.size() * 4) / (ms * 1e6) : 0.0);
  cudaFree(dx); cudaFree(dg); cudaFree(dw); cudaFree(dlp); cudaFree(dt);
  return bad ? 1 : 0;
}

// Policy-gradient rows: old log-probs are the reference's own log-probs shifted by ±0.4, so with
// ε = 0.2 some rows are clipped on each side and some are not.
static int run_policy_case(const char* name, int64_t rows, int64_t vocab, bool with_ref, bool with_old, float temperature, bool in_place) {
  std::mt19937 rng(99);
  std::normal_distribution<float> nd(0.f, 3.f);
  std::uniform_real_distribution<float> ud(-1.f, 1.f);
  std::vector<float> x(rows * vocab);
  for (auto& v : x) v = nd(rng);
  std::vector<int32_t> t(rows);
  std::vector<float> adv(rows), coef(rows), ref(rows), old(rows);
  for (int64_t r = 0; r < rows; r++) {
    t[r] = static_cast<int32_t>(rng() % vocab);
    adv[r] = r % 7 == 0 ? 0.f : ud(rng) * 2.f;
    coef[r] = 0.5f + static_cast<float>(r % 4) * 0.25f;
  }
  msr::PolicyParams p;
  p.kl_coef = 0.3f;
  p.eps_low = 0.2f;
  p.eps_high = 0.28f;
  p.temperature = temperature;
  // The current log-probs, to place ref and old around them.
  std::vector<float> lp0(rows);
  msr::PolicyRows plain{adv.data(), coef.data(), nullptr, nullptr};
  msr::fused_policy_reference(x.data(), rows, vocab, vocab, t.data(), plain, p, lp0.data(), nullptr, nullptr, vocab);
  for (int64_t r = 0; r < rows; r++) ref[r] = lp0[r] + ud(rng), old[r] = lp0[r] + (r % 3 == 0 ? 0.4f : r % 3 == 1 ? -0.4f : 0.01f);
  msr::PolicyRows in{adv.data(), coef.data(), with_ref ? ref.data() : nullptr, with_old ? old.data() : nullptr};
  std::vector<float> ref_lp(rows), ref_h(rows), ref_g(rows * vocab);
  const double ref_loss = msr::fused_policy_reference(x.data(), rows, vocab, vocab, t.data(), in, p, ref_lp.data(), ref_h.data(), ref_g.data(), vocab);

  float *dx, *dg, *drows, *dlp, *dh;
  int32_t* dt;
  cudaMalloc(&dx, x.size() * 4); cudaMalloc(&dg, x.size() * 4); cudaMalloc(&drows, 4 * rows * 4); cudaMalloc(&dlp, rows * 4);
  cudaMalloc(&dh, rows * 4); cudaMalloc(&dt, rows * 4);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dt, t.data(), rows * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(drows, adv.data(), rows * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(drows + rows, coef.data(), rows * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(drows + 2 * rows, ref.data(), rows * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(drows + 3 * rows, old.data(), rows * 4, cudaMemcpyHostToDevice);
  msr::PolicyRows d_in{drows, drows + rows, with_ref ? drows + 2 * rows : nullptr, with_old ? drows + 3 * rows : nullptr};
  float* grad_ptr = in_place ? dx : dg;
  const double loss = msr::fused_policy_cuda(dx, rows, vocab, vocab, dt, d_in, p, dlp, dh, grad_ptr, vocab, nullptr);
  std::vector<float> lp(rows), h(rows), g(rows * vocab);
  cudaMemcpy(lp.data(), dlp, rows * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(h.data(), dh, rows * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(g.data(), grad_ptr, g.size() * 4, cudaMemcpyDeviceToHost);
  // The host-array form the trainer uses, on a fresh copy of the logits: the same numbers.
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  std::vector<float> lp_rows(rows);
  const double loss_rows = msr::fused_policy_cuda_rows(dx, rows, vocab, vocab, t.data(), in, p, lp_rows.data(), nullptr, dg, vocab);
  int bad = 0;
  // Tolerances as for the cross-entropy cases above (w is of the same size here).
  if (!close(loss, ref_loss, 1e-3, 1e-5) || !std::isfinite(loss)) bad++, std::printf("  loss %.9g vs %.9g\n", loss, ref_loss);
  if (!close(loss_rows, loss, 1e-9, 1e-9)) bad++, std::printf("  rows-form loss %.9g vs %.9g\n", loss_rows, loss);
  for (int64_t r = 0; r < rows; r++) {
    if (!close(lp[r], ref_lp[r], 1e-4, 1e-5) || lp_rows[r] != lp[r]) { if (bad++ < 3) std::printf("  lp[%ld] %g vs %g\n", (long)r, lp[r], ref_lp[r]); }
    if (!close(h[r], ref_h[r], 1e-3, 1e-4)) { if (bad++ < 3) std::printf("  entropy[%ld] %g vs %g\n", (long)r, h[r], ref_h[r]); }
  }
  for (size_t i = 0; i < g.size(); i++) if (!close(g[i], ref_g[i], 1e-6, 1e-4) || !std::isfinite(g[i])) { if (bad++ < 3) std::printf("  g[%zu] %g vs %g\n", i, g[i], ref_g[i]); }
  std::printf("%-28s rows %5ld vocab %6ld  %s\n", name, (long)rows, (long)vocab, bad ? "FAIL" : "ok");
  cudaFree(dx); cudaFree(dg); cudaFree(drows); cudaFree(dlp); cudaFree(dh); cudaFree(dt);
  return bad ? 1 : 0;
}

int main() {
  int fails = 0;
  fails += run_case("random", 512, 32000, 0, false, false);
  fails += run_case("random weighted", 512, 32000, 0, true, false);
  fails += run_case("random in place", 256, 128256, 0, true, true);
  fails += run_case("+-1e4", 64, 32000, 1, true, false);
  fails += run_case("all equal", 64, 32000, 2, false, false);
  fails += run_case("large (warm)", 4096, 32000, 0, true, false);
  fails += run_case("large 128k", 1024, 128256, 0, true, false);
  fails += run_policy_case("policy plain", 256, 32000, false, false, 1.f, false);
  fails += run_policy_case("policy ref+old", 256, 32000, true, true, 1.f, false);
  fails += run_policy_case("policy T=0.7 in place", 128, 128256, true, true, 0.7f, true);
  std::printf(fails ? "FAILED %d\n" : "all ok\n", fails);
  return fails ? 1 : 0;
}
