// What a trainer is asked to train and how: the mode, the LoRA shape, the device, the memory the
// backward may keep, and the settings only the development hooks set.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace msr {

enum class TrainMode { Lora, Full };

// Settings only the development hooks set (native/dev: dev.buildTrainSession), for tests and
// measurements; the product leaves them at their defaults.
struct TrainDevSettings {
  // CPU: the GPU's backward (dx = Wᵀ dy as a mul_mat on F32 transposes of the frozen weights,
  // cached within the transpose budget or made inside the graph) instead of out_prod_cpu, so that
  // tests on a machine without a GPU cover that path too.
  bool transposed_backward = false;
  // F32 bytes per slice of a weight transposed inside the graph (sliced_transposed_products):
  // tests use small slices to get several from tiny weights.
  double slice_mb = 32;
  // Runs each node of the graph alone (no fusion) and reports the time per kind of node in the
  // pass profile: where a pass's time goes, at the cost of the fused kernels.
  bool profile_nodes = false;
};

struct TrainConfig {
  TrainMode mode = TrainMode::Lora;
  int rank = 8;
  float lora_alpha = 32.f;
  std::vector<std::string> targets{"q", "k", "v", "o", "gate", "up", "down"};
  uint64_t seed = 0;
  int n_ctx = 0;  // longest packed sample allowed (0 = the model's training context)
  int n_threads = 1;
  // Run the graph on the first GPU backend ggml was built with (CUDA) instead of the CPU.
  bool gpu = false;
  // Full mode on a quantized model: train F32 copies of its weights (refused otherwise).
  bool dequantize = false;
  // LoRA mode: MiB of F32 transposes of the frozen weights the backward keeps (GPU; < 0: half of
  // the GPU's free memory). The weights that do not fit are transposed inside the graph, a slice
  // at a time, and freed after use: slower, but no memory held between passes.
  double transpose_budget_mb = -1;
  // Each pass reports its phase times, graph sizes and how the backward's products ran (PassProfile).
  bool profile = false;
  TrainDevSettings dev;
};

}  // namespace msr
