// The training backward's rewrites of ggml's autodiff graph, made before allocation so that the
// products with frozen weights run well on each device (same shapes, same values):
//  - CPU: every out_prod of the backward (dx = Wᵀ dy of each frozen projection and of the output
//    matrix, the LoRA and attention gradients) runs as out_prod_cpu (train_out_prod.h), which reads
//    W as stored and the other operand in place: no transposed copy, no F32 copy of any weight;
//  - GPU (or the transposed_backward development setting): dx = Wᵀ dy of a frozen W runs as a
//    mul_mat on W's F32 transpose, cached by TrainWeights or made inside the graph a slice at a
//    time; the other F32 out_prods run as mul_mats of contiguous transposes (ggml's out_prod is a
//    slow loop on the CPU, takes only F32 on CUDA and aborts on BF16).
#pragma once
#include <vector>

#include "ggml.h"
#include "train_profile.h"
#include "train_weights.h"

namespace msr {

// How a trainer's backward multiplies with the frozen weights (decided once, from its config).
struct BackwardSettings {
  bool gpu = false;
  bool out_prod_cpu = true;               // CPU: out_prod_cpu for every out_prod it supports
  double slice_bytes = 32.0 * 1048576.0;  // F32 bytes per slice of a weight transposed in the graph
};

// dLoss/dh = Woutᵀ G (n_embd, R), for the output matrix as the graph uses it.
ggml_tensor* output_backward(ggml_context* ctx, const BackwardSettings& s, const TrainWeights& weights, ggml_tensor* w_out, ggml_tensor* G);

// CPU: the forward multiplied with repacked weights (TrainWeights::for_product); backward nodes
// [n_fwd, end) read their stored bytes instead (the host copies).
void read_stored_weights(ggml_cgraph* g, int n_fwd, const TrainWeights& weights);

// Rewrites backward nodes dx = out_prod(W, transpose(dy)) with a frozen W into mul_mat(Wᵀ, dy),
// on the cached transpose when there is one, else on one made in the graph. Returns whether
// nodes were added (the graph must then be rebuilt so they come before their users).
bool use_transposed_weights(ggml_context* ctx, const BackwardSettings& s, const TrainWeights& weights, ggml_cgraph* g, int n_fwd, PassProfile& prof);

// The last step: CPU out_prods become out_prod_cpu (or mul_mats of transposes), and the graph is
// rebuilt in dependency order when nodes were added (`added`, or here).
ggml_cgraph* finish_backward(ggml_context* ctx, const BackwardSettings& s, ggml_cgraph* g, int n_fwd, bool added, PassProfile& prof);

}  // namespace msr
