// Independent reference for the training graph's forward: llama.cpp's own graph (llama_decode,
// no flash attention) on the same tokens with the trainer's current adapter loaded through
// llama.cpp's LoRA loader. Used by the forward-equality test.
#pragma once
#include <vector>

#include "train_session.h"

namespace msr {

// Logits of every position ([tokens.size()][n_vocab]).
std::vector<float> reference_logits(TrainSession& s, const std::vector<int32_t>& tokens);

}  // namespace msr
