// Reading a frozen model weight's values wherever llama.cpp put it. Weights in host or device
// buffers are read back through ggml; weights llama.cpp repacked for its CPU GEMM (CPU_REPACK and
// other extra buffer types: Q4_0, Q4_K, IQ4_NL, and Q8_0 on ARM) cannot be read back, so their
// stored bytes come from the GGUF file instead.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"

struct gguf_context;

namespace msr {

class WeightReader {
 public:
  explicit WeightReader(std::string model_path) : path_(std::move(model_path)) {}
  ~WeightReader();
  WeightReader(const WeightReader&) = delete;
  WeightReader& operator=(const WeightReader&) = delete;

  // True when ggml can read the weight's buffer back (host memory or a GPU).
  static bool readable(const ggml_tensor* w);
  // The weight's bytes in its own type and layout (ggml_nbytes(w) of them).
  std::vector<uint8_t> stored(const ggml_tensor* w);
  // Where the weight's bytes, as stored in the file, already are in this process: llama.cpp maps
  // the GGUF and places the tensors it does not repack in that mapping, so the file region of a
  // repacked weight is mapped too (and resident: the repacking read it). Found from `refs`, model
  // tensors in host memory (norms, embeddings): mapping base = their data - their file offset,
  // which must agree for all of them, with w's range inside their buffer and its first and last
  // bytes equal to the file's. Null when any of that fails (no mmap, another layout): copy instead.
  // On success *buffer is the model's buffer holding that range.
  const void* mapped(const ggml_tensor* w, const std::vector<const ggml_tensor*>& refs, ggml_backend_buffer_t* buffer);
  // Its values as F32 (dequantized when needed).
  std::vector<float> f32(const ggml_tensor* w);
  // dst (ne1, ne0) = srcᵀ as F32 or F16.
  void transpose_into(const ggml_tensor* src, ggml_tensor* dst);

 private:
  void open_file();
  // The weight's offset in the file, checked against its name, type and size (-1 when not there).
  int64_t file_offset(const ggml_tensor* w);
  bool read_at(int64_t off, void* dst, size_t n);

  std::string path_;
  gguf_context* gguf_ = nullptr;  // opened on the first weight that must come from the file
  FILE* file_ = nullptr;
};

}  // namespace msr
