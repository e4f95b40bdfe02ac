// Live adapters: a trainer's LoRA parameters as a llama.cpp adapter that scorers and generation
// use like one from loadLora, built in memory (no file round trip) and kept equal to the
// trainer's weights after every update.
//
// llama.cpp only loads adapters from files (llama_adapter_lora_init), but an adapter is a plain
// struct (src/llama-adapter.h): a map from a base weight's name to its (A, B) tensors, alpha, the
// contexts and buffers that hold them, and its registration in the model's set of adapters (which
// sizes the graphs of contexts that may apply it). make_live_lora fills one exactly as the loader
// would from the trainer's saveAdapter file: F32 tensors of the same shapes, in the buffer type
// the loader picks for each weight (the weight's own, or the CPU's instead of a CPU repack type),
// the same alpha; so what a context computes with it is what it computes with the saved file.
// It is freed like a loaded one (LoraState's destructor, llama_adapter_lora_free).
#pragma once
#include "lora.h"
#include "train_session.h"

namespace msr {

// A new adapter holding the session's current LoRA values. The caller holds the model's mutex
// (the adapter joins the model's set). Throws UserError for a full-mode trainer.
LoraPtr make_live_lora(TrainSession& s);

// Copies the session's current LoRA values into the adapter. The caller holds the model's mutex
// (a running decode may be reading the adapter).
void copy_to_live_lora(TrainSession& s, LoraState& live);

}  // namespace msr
