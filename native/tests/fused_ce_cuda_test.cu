// Checks fused_ce_cuda against the naive CPU reference (fused_ce_reference) on random logits,
// rows of ±1e4 and all-equal rows, for vocab sizes 32000 and 128256, with and without weights,
// and with the gradient written in place over the logits. Prints one line per case and the
// kernel's bandwidth; exits 1 on any mismatch.
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

int main() {
  int fails = 0;
  fails += run_case("random", 512, 32000, 0, false, false);
  fails += run_case("random weighted", 512, 32000, 0, true, false);
  fails += run_case("random in place", 256, 128256, 0, true, true);
  fails += run_case("+-1e4", 64, 32000, 1, true, false);
  fails += run_case("all equal", 64, 32000, 2, false, false);
  fails += run_case("large (warm)", 4096, 32000, 0, true, false);
  fails += run_case("large 128k", 1024, 128256, 0, true, false);
  std::printf(fails ? "FAILED %d\n" : "all ok\n", fails);
  return fails ? 1 : 0;
}
