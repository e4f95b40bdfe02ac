// Files a TrainSession writes and reads, all GGUF and all atomic (temp file + rename):
//  - LoRA adapter in llama.cpp's format (general.type=adapter, adapter.type=lora,
//    adapter.lora.alpha, tensors "<weight>.lora_a" (in, r) and "<weight>.lora_b" (r, out));
//  - a full model (full mode): the base GGUF's metadata and tokenizer with the trained weights;
//  - a checkpoint: parameters, AdamW moments, step count and the caller's opaque state string.
// None of them is written with a non-finite parameter (or moment) in it.
#pragma once
#include <string>

#include "train_session.h"

namespace msr {

void save_adapter(TrainSession& s, const std::string& path);
void save_model(TrainSession& s, const std::string& path);
void save_checkpoint(TrainSession& s, const std::string& path, const std::string& state);
// Restores parameters, moments and step, and zeroes the gradient accumulators (an unfinished
// accumulation group starts over); returns the state string. The checkpoint must come from a
// trainer of the same kind: the same mode, LoRA rank and alpha, and the same parameters (model and
// targets); values must be finite. Anything else is refused before anything changes.
std::string load_checkpoint(TrainSession& s, const std::string& path);

}  // namespace msr
