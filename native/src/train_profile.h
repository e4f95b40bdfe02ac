// What a training pass reports when the trainer profiles (TrainConfig::profile): its phase times,
// graph sizes and how the backward's products ran; and, with the development setting
// profile_nodes, the time of every kind of node.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"

namespace msr {

struct PassProfile {
  int64_t tokens = 0, rows = 0;
  double forward_ms = 0, cross_entropy_ms = 0, backward_ms = 0;
  int graph_nodes = 0, graph_leafs = 0;
  double graph_metadata_bytes = 0, compute_bytes = 0;
  // The backward's out_prod nodes and how they ran: as out_prod_cpu reading the weight as stored,
  // as a mul_mat with a transposed frozen weight (cached or made in the graph), or as a mul_mat of
  // contiguous transposes of both operands.
  int out_prods = 0, as_stored = 0, transposed_weights = 0, transposed_in_graph = 0, as_mul_mats = 0;
  // TrainDevSettings::profile_nodes only: milliseconds per kind of node, largest first.
  struct NodeKind {
    std::string kind;
    double ms;
    int count;
  };
  std::vector<NodeKind> forward_nodes, backward_nodes;
};

// Computes nodes [i0, i1) of `g` one at a time (no fusion) and returns the time per kind of node
// (op, weight type, shape class), largest first. With one thread each node runs on this thread,
// so its thread CPU time is measured (robust to other load); else wall time. A diagnostic, not
// for training.
std::vector<PassProfile::NodeKind> time_nodes(ggml_backend_t backend, ggml_cgraph* g, int i0, int i1, const char* what, bool single_thread);

}  // namespace msr
