// See train_profile.h.
#include "train_profile.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>

#include "common.h"
// ggml_graph_view (compute a node range of a graph) is internal to ggml.
#include "../ggml/src/ggml-impl.h"

namespace msr {

std::vector<PassProfile::NodeKind> time_nodes(ggml_backend_t backend, ggml_cgraph* g, int i0, int i1, const char* what, bool single_thread) {
  using clock = std::chrono::steady_clock;
  std::map<std::string, std::pair<double, int>> by;
  for (int i = i0; i < i1; i++) {
    ggml_tensor* node = ggml_graph_node(g, i);
    ggml_cgraph one = ggml_graph_view(g, i, i + 1);
    // With one thread the node runs on this thread: its CPU time is robust to other load.
    timespec c0{}, c1{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    const auto t0 = clock::now();
    if (ggml_backend_graph_compute(backend, &one) != GGML_STATUS_SUCCESS) {
      throw UserError(std::string("training: ggml failed to compute the ") + what + " graph (out of memory?)");
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    const double ms = single_thread ? (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) * 1e-6
                                    : std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    std::string key = ggml_op_desc(node);
    if (node->src[0]) key += std::string(" ") + ggml_type_name(node->src[0]->type);
    if (node->op == GGML_OP_MUL_MAT || node->op == GGML_OP_OUT_PROD) {
      char buf[96];
      std::snprintf(buf, sizeof buf, " [%lldx%lld]x[%lldx%lld]", (long long)node->src[0]->ne[0], (long long)node->src[0]->ne[1],
                    (long long)node->src[1]->ne[0], (long long)node->src[1]->ne[1]);
      key += buf;
    } else if (node->op == GGML_OP_CUSTOM) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " -> [%lldx%lld]", (long long)node->ne[0], (long long)node->ne[1]);
      key += buf;
    }
    by[key].first += ms;
    by[key].second++;
  }
  std::vector<PassProfile::NodeKind> kinds;
  for (const auto& [k, v] : by) kinds.push_back({k, v.first, v.second});
  std::sort(kinds.begin(), kinds.end(), [](const auto& a, const auto& b) { return a.ms > b.ms; });
  return kinds;
}

}  // namespace msr
