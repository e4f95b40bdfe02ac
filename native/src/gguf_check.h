// GGUF files checked in the addon before llama.cpp or our own loaders read them. ggml's reader
// (gguf_init_from_file) validates a file's structure itself and returns null when it is broken,
// but llama.cpp then reads the content with assertions: a typed getter aborts on a value of
// another type, the loaders abort on hyperparameters past their limits, on a vocabulary with a
// duplicated token, and the matrix products crash on weights of a type they cannot multiply. Every
// check here stands before one such site (gguf_check.cpp lists them), so a bad file is a UserError
// naming the key or tensor and what to do, for callers of the raw addon too.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>

#include "common.h"

namespace msr {

// A metadata key and the gguf_type its readers expect.
struct GgufKey {
  const char* key;
  int type;  // a gguf_type
};

// loadModel, trainability and quantizeModel, before llama.cpp opens `path`: structure, tensor data
// inside the file, the vocabulary and (unless `vocab_only`) the hyperparameters and tensor types.
// `what` names the call in the error.
void check_model_file(const std::string& path, bool vocab_only, const std::string& what);

// After llama.cpp loaded the model: the special tokens its tokenizer asserts on when it adds them.
void check_model_vocab(const llama_vocab* vocab, const std::string& path, const std::string& what);

// What loadLora needs from an adapter, read while checking it.
struct AdapterFacts {
  float alpha = 0.f;     // adapter.lora.alpha (0 = absent: llama.cpp then applies the scale as is)
  int64_t min_rank = 1;  // smallest lora_a rank: llama.cpp multiplies the scale by alpha / rank
  int64_t bytes = 0;     // tensor data
};
// loadLora, before llama.cpp reads the adapter: typed metadata, tensor data inside the file, and
// LoRA tensors that are matrices of rank >= 1 of a type the products multiply.
AdapterFacts check_adapter_file(const std::string& path);

// loadCheckpoint, before the checkpoint's metadata is read: each listed key that is present has
// its type, and every tensor's data lies inside the file. Whether the checkpoint fits the trainer
// is train_io.cpp's to check.
void check_checkpoint_file(const std::string& path, std::initializer_list<GgufKey> keys);

}  // namespace msr
