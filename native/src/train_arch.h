// What the training graph supports, decided from a llama_model's structure alone (architecture,
// hyper-parameters, which tensors exist and their types) before anything is allocated, plus the
// JS entry point that exposes it: trainability(path) for `msr-rec info`.
#pragma once
#include <string>

#include "common.h"

struct llama_model;

namespace msr {

enum class TrainMode;

// The families the graph rebuilds (train_graph.cpp), for error messages.
extern const char* const kSupportedFamilies;

// Why `m` cannot be trained in `mode` ("" when it can). `dequantize`: the caller accepts full
// training of a quantized model as F32 copies of its weights.
std::string training_refusal(const llama_model& m, TrainMode mode, bool dequantize);
// Throws UserError(training_refusal(...)) when it is not empty.
void check_trainable(const llama_model& m, TrainMode mode, bool dequantize);
// True when a weight of this type is quantized (not F32, F16 or BF16).
bool is_quantized(int ggml_type);

// trainability(path) -> Promise<{architecture, lora, full, fullWithDequantize}>: each null when
// that mode works, else the reason.
Napi::Value Trainability(const Napi::CallbackInfo& info);

}  // namespace msr
