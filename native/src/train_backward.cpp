// See train_backward.h.
#include "train_backward.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "common.h"
#include "train_out_prod.h"
// struct ggml_cgraph's size (to rebuild a graph of the same capacity) is internal to ggml.
#include "../ggml/src/ggml-impl.h"

namespace msr {

namespace {

// Each thread takes tiles of kRows rows of w (columns of dst): dequantizes them into a scratch
// buffer, then writes dst rows in slices of kCols, reading kRows × kCols of scratch (kept in L2).
void dequant_transpose_op(ggml_tensor* dst, int ith, int nth, void*) {
  constexpr int64_t kRows = 32, kCols = 256;
  const ggml_tensor* w = dst->src[0];
  const int64_t n_in = w->ne[0], n_out = w->ne[1];
  const auto* traits = ggml_get_type_traits(w->type);
  std::vector<float> scratch(static_cast<size_t>(kRows * n_in));
  auto* out = static_cast<float*>(dst->data);
  const int64_t n_tiles = (n_out + kRows - 1) / kRows;
  for (int64_t tile = ith; tile < n_tiles; tile += nth) {
    const int64_t r0 = tile * kRows, nr = std::min(kRows, n_out - r0);
    for (int64_t r = 0; r < nr; r++) {
      const char* row = static_cast<const char*>(w->data) + (r0 + r) * w->nb[1];
      float* s = scratch.data() + r * n_in;
      if (w->type == GGML_TYPE_F32) std::memcpy(s, row, n_in * sizeof(float));
      else traits->to_float(row, s, n_in);
    }
    for (int64_t c0 = 0; c0 < n_in; c0 += kCols) {
      const int64_t nc = std::min(kCols, n_in - c0);
      for (int64_t c = c0; c < c0 + nc; c++) {
        float* d = out + c * n_out + r0;
        for (int64_t r = 0; r < nr; r++) d[r] = scratch[r * n_in + c];
      }
    }
  }
}

// CPU graph op: dst (ne1, ne0) F32 = wᵀ, dequantizing w (any type ggml reads; rows contiguous, as
// for a weight or a view of whole rows) in one threaded, cache-tiled pass. Cheaper than the
// cast + strided transposed copy it replaces (one write of the F32 result instead of three passes
// over F32 data), which matters when the backward transposes every frozen weight each step.
ggml_tensor* dequant_transpose(ggml_context* ctx, ggml_tensor* w) {
  ggml_tensor* args[1] = {w};
  return ggml_custom_4d(ctx, GGML_TYPE_F32, w->ne[1], w->ne[0], 1, 1, args, 1, dequant_transpose_op, GGML_N_TASKS_MAX, nullptr);
}

// Wᵀ as a contiguous F32 tensor made inside the graph: allocated right before its product and
// freed after it, so at most a weight or two exist at a time. On the CPU in one fused pass
// (dequant_transpose); on a GPU as a cast and a transposed copy.
ggml_tensor* inline_transpose(ggml_context* ctx, const BackwardSettings& s, ggml_tensor* w) {
  if (!s.gpu) return dequant_transpose(ctx, w);
  if (w->type != GGML_TYPE_F32) w = ggml_cast(ctx, w, GGML_TYPE_F32);
  return ggml_cont(ctx, ggml_transpose(ctx, w));
}

// Wᵀ dy without a cached transpose, over slices of W's rows (32 MB of F32 each: 4096 rows of
// Llama 3.2 1B's LM head, 1024 of its ffn_down; the development setting slice_mb changes it, which
// tests use to get several slices from tiny weights): each slice transposed to F32 inside the graph,
// multiplied with its rows of dy and freed, so the backward never holds more than a slice or two
// instead of an F32 copy of a weight (1 GB for that LM head). Returns the partial products; their
// sum is Wᵀ dy.
std::vector<ggml_tensor*> sliced_transposed_products(ggml_context* ctx, const BackwardSettings& s, ggml_tensor* w, ggml_tensor* dy) {
  const int64_t rows = w->ne[1], slice = std::max<int64_t>(64, static_cast<int64_t>(s.slice_bytes / (4.0 * w->ne[0])));
  std::vector<ggml_tensor*> parts;
  for (int64_t r0 = 0; r0 < rows; r0 += slice) {
    const int64_t n = std::min(slice, rows - r0);
    ggml_tensor* ws = n == rows ? w : ggml_view_2d(ctx, w, w->ne[0], n, w->nb[1], r0 * w->nb[1]);
    ggml_tensor* ds = n == rows ? dy : ggml_view_2d(ctx, dy, n, dy->ne[1], dy->nb[1], r0 * dy->nb[0]);
    parts.push_back(ggml_mul_mat(ctx, inline_transpose(ctx, s, ws), ds));
  }
  return parts;
}

// The same nodes rebuilt in dependency order, so nodes added by a rewrite come before their users.
ggml_cgraph* rebuild(ggml_context* ctx, ggml_cgraph* g, int n_fwd) {
  ggml_cgraph* out = ggml_new_graph_custom(ctx, static_cast<size_t>(g->size), false);
  for (int i = 0; i < ggml_graph_n_nodes(g); i++) ggml_build_forward_expand(out, ggml_graph_node(g, i));
  if (ggml_graph_n_nodes(out) < n_fwd || ggml_graph_node(out, n_fwd - 1) != ggml_graph_node(g, n_fwd - 1)) {
    throw UserError("training: internal error rebuilding the backward graph (the forward part moved)");
  }
  return out;
}

}  // namespace

ggml_tensor* output_backward(ggml_context* ctx, const BackwardSettings& s, const TrainWeights& weights, ggml_tensor* w_out, ggml_tensor* G) {
  if (ggml_tensor* wt = weights.output_transposed()) return ggml_mul_mat(ctx, wt, G);
  ggml_tensor* gt = ggml_transpose(ctx, G);
  if (s.out_prod_cpu && out_prod_supported(w_out, gt)) return out_prod_cpu(ctx, w_out, gt);
  ggml_tensor* dh = nullptr;
  for (ggml_tensor* part : sliced_transposed_products(ctx, s, w_out, G)) dh = dh ? ggml_add(ctx, dh, part) : part;
  return dh;
}

void read_stored_weights(ggml_cgraph* g, int n_fwd, const TrainWeights& weights) {
  if (weights.copies().empty()) return;
  const std::unordered_map<const ggml_tensor*, ggml_tensor*> stored(weights.copies().begin(), weights.copies().end());
  for (int i = n_fwd; i < ggml_graph_n_nodes(g); i++) {
    ggml_tensor* node = ggml_graph_node(g, i);
    for (int k = 0; k < GGML_MAX_SRC; k++) {
      if (!node->src[k]) continue;
      const auto it = stored.find(node->src[k]);
      if (it != stored.end()) node->src[k] = it->second;
    }
  }
}

bool use_transposed_weights(ggml_context* ctx, const BackwardSettings& s, const TrainWeights& weights, ggml_cgraph* g, int n_fwd, PassProfile& prof) {
  int rewritten = 0, out_prods = 0, inlined = 0;
  for (int i = n_fwd; i < ggml_graph_n_nodes(g); i++) {
    ggml_tensor* node = ggml_graph_node(g, i);
    out_prods += node->op == GGML_OP_OUT_PROD;
    if (node->op != GGML_OP_OUT_PROD || !node->src[1] || node->src[1]->op != GGML_OP_TRANSPOSE) continue;
    if (s.out_prod_cpu && out_prod_supported(node->src[0], node->src[1])) continue;  // finish_backward makes it out_prod_cpu
    if (!weights.is_frozen_projection(node->src[0])) continue;
    ggml_tensor* wt = weights.transposed(node->src[0]);
    ggml_tensor* dy = node->src[1]->src[0];
    // (dy gains a use the graph's use counts do not know of; only an RMS_NORM output could be
    // affected by that, through the CPU's rms_norm+mul fusion, and a gradient never is one.)
    if (dy->op == GGML_OP_RMS_NORM || dy->ne[0] != node->src[0]->ne[1] || dy->ne[1] != node->ne[1] || dy->ne[2] != 1 || dy->ne[3] != 1) continue;
    rewritten++;
    if (!wt) {
      // The node becomes the last partial product plus the sum of the others (users keep it).
      std::vector<ggml_tensor*> parts = sliced_transposed_products(ctx, s, node->src[0], dy);
      inlined++;
      if (parts.size() > 1) {
        ggml_tensor* rest = parts[0];
        for (size_t k = 1; k + 1 < parts.size(); k++) rest = ggml_add(ctx, rest, parts[k]);
        node->op = GGML_OP_ADD;
        node->src[0] = rest;
        node->src[1] = parts.back();
        continue;
      }
      wt = parts[0]->src[0];
    }
    node->op = GGML_OP_MUL_MAT;
    node->src[0] = wt;
    node->src[1] = dy;
  }
  prof.out_prods = out_prods;
  prof.transposed_weights = rewritten;
  prof.transposed_in_graph = inlined;
  return inlined > 0;
}

// CPU: ggml's out_prod is a loop of vector multiply-adds. Each out_prod node becomes out_prod_cpu
// in place (same operands, nothing added) when it supports the operands, which is every one the
// training graph makes; otherwise (or with the transposed_backward development setting) the same
// product as a mul_mat over contiguous transposes, out_prod(a, b) = a·bᵀ = mul_mat(aᵀ, bᵀ) with the
// same broadcasting over dims 2–3, in ggml's tiled GEMM. Rewritten nodes keep their place; the
// graph is rebuilt in order when copies were added, so they come before their users and the
// forward part (the first n_fwd nodes) is unchanged.
ggml_cgraph* finish_backward(ggml_context* ctx, const BackwardSettings& s, ggml_cgraph* g, int n_fwd, bool added, PassProfile& prof) {
  if (s.gpu) return added ? rebuild(ctx, g, n_fwd) : g;
  const auto transposed = [ctx](ggml_tensor* t) {
    if (t->op == GGML_OP_TRANSPOSE && ggml_is_contiguous(t->src[0])) return t->src[0];  // (tᵀ)ᵀ = t
    return ggml_cont(ctx, ggml_transpose(ctx, t));
  };
  int rewritten = 0, own = 0;
  for (int i = n_fwd; i < ggml_graph_n_nodes(g); i++) {
    ggml_tensor* node = ggml_graph_node(g, i);
    if (node->op == GGML_OP_OUT_PROD && s.out_prod_cpu && ggml_is_contiguous(node) && out_prod_supported(node->src[0], node->src[1])) {
      make_out_prod_cpu(node);  // same node, same operands: nothing to rebuild
      own++;
      continue;
    }
    if (node->op != GGML_OP_OUT_PROD || node->src[0]->type != GGML_TYPE_F32 || node->src[1]->type != GGML_TYPE_F32) continue;
    ggml_tensor* a = transposed(node->src[0]);
    ggml_tensor* b = transposed(node->src[1]);
    node->op = GGML_OP_MUL_MAT;
    node->src[0] = a;
    node->src[1] = b;
    rewritten++;
  }
  prof.as_stored = own;
  prof.as_mul_mats = rewritten;
  return rewritten > 0 || added ? rebuild(ctx, g, n_fwd) : g;
}

}  // namespace msr
