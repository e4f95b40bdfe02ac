// See train_weight_reader.h.
#include "train_weight_reader.h"

#include <algorithm>
#include <cstring>

#include "common.h"
#include "ggml-backend.h"
#include "gguf.h"

namespace msr {

WeightReader::~WeightReader() {
  if (file_) std::fclose(file_);
  if (gguf_) gguf_free(gguf_);
}

bool WeightReader::readable(const ggml_tensor* w) {
  if (!w->buffer) return false;
  if (ggml_backend_buffer_is_host(w->buffer)) return true;
  // Not host memory: a GPU buffer reads back through the backend; a CPU-side buffer that is not
  // host memory is one of the CPU's extra buffer types (repacked weights), which cannot.
  ggml_backend_dev_t dev = ggml_backend_buft_get_device(ggml_backend_buffer_get_type(w->buffer));
  return dev && ggml_backend_dev_type(dev) != GGML_BACKEND_DEVICE_TYPE_CPU;
}

void WeightReader::open_file() {
  if (gguf_) return;
  gguf_init_params ip{true, nullptr};
  gguf_ = gguf_init_from_file(path_.c_str(), ip);
  file_ = gguf_ ? std::fopen(path_.c_str(), "rb") : nullptr;
  if (!gguf_ || !file_) throw UserError("training: cannot re-read the weights of " + path_ + "; load the model with repack: false");
}

int64_t WeightReader::file_offset(const ggml_tensor* w) {
  open_file();
  const int64_t id = gguf_find_tensor(gguf_, w->name);
  // A split GGUF keeps later tensors in other files.
  if (id < 0 || gguf_get_tensor_type(gguf_, id) != w->type || gguf_get_tensor_size(gguf_, id) != ggml_nbytes(w)) return -1;
  return static_cast<int64_t>(gguf_get_data_offset(gguf_) + gguf_get_tensor_offset(gguf_, id));
}

bool WeightReader::read_at(int64_t off, void* dst, size_t n) {
  return fseeko(file_, static_cast<off_t>(off), SEEK_SET) == 0 && std::fread(dst, 1, n, file_) == n;
}

std::vector<uint8_t> WeightReader::stored(const ggml_tensor* w) {
  std::vector<uint8_t> out(ggml_nbytes(w));
  if (readable(w)) {
    ggml_backend_tensor_get(w, out.data(), 0, out.size());
    return out;
  }
  const int64_t off = file_offset(w);
  if (off < 0) {
    throw UserError(std::string("training: the weight ") + w->name + " was repacked by llama.cpp and is not in " + path_ +
                    " as loaded; load the model with repack: false");
  }
  if (!read_at(off, out.data(), out.size())) {
    throw UserError("training: reading " + std::string(w->name) + " from " + path_ + " failed (was the file changed?)");
  }
  return out;
}

const void* WeightReader::mapped(const ggml_tensor* w, const std::vector<const ggml_tensor*>& refs, ggml_backend_buffer_t* buffer) {
  const int64_t w_off = file_offset(w);
  if (w_off < 0) return nullptr;
  const uint8_t* base = nullptr;
  ggml_backend_buffer_t buf = nullptr;
  for (const ggml_tensor* r : refs) {
    if (!r || !r->buffer || !r->data || !ggml_backend_buffer_is_host(r->buffer)) continue;
    const int64_t off = file_offset(r);
    if (off < 0) return nullptr;
    const uint8_t* b = static_cast<const uint8_t*>(r->data) - off;
    if (base && (b != base || r->buffer != buf)) return nullptr;  // not one mapping of the whole file
    base = b, buf = r->buffer;
  }
  if (!base) return nullptr;
  const auto* lo = static_cast<const uint8_t*>(ggml_backend_buffer_get_base(buf));
  const uint8_t* hi = lo + ggml_backend_buffer_get_size(buf);
  const uint8_t* p = base + w_off;
  const size_t n = ggml_nbytes(w);
  if (p < lo || p + n > hi) return nullptr;
  // The bytes there must be the file's (first and last 256).
  const size_t k = std::min<size_t>(256, n);
  std::vector<uint8_t> head(k), tail(k);
  if (!read_at(w_off, head.data(), k) || !read_at(w_off + static_cast<int64_t>(n - k), tail.data(), k)) return nullptr;
  if (std::memcmp(head.data(), p, k) != 0 || std::memcmp(tail.data(), p + n - k, k) != 0) return nullptr;
  *buffer = buf;
  return p;
}

std::vector<float> WeightReader::f32(const ggml_tensor* w) {
  std::vector<float> out(static_cast<size_t>(ggml_nelements(w)));
  const std::vector<uint8_t> raw = stored(w);
  if (w->type == GGML_TYPE_F32) {
    std::memcpy(out.data(), raw.data(), raw.size());
    return out;
  }
  const auto* traits = ggml_get_type_traits(w->type);
  if (!traits->to_float) throw UserError(std::string("training: cannot dequantize weight type ") + ggml_type_name(w->type));
  traits->to_float(raw.data(), out.data(), ggml_nelements(w));
  return out;
}

void WeightReader::transpose_into(const ggml_tensor* src, ggml_tensor* dst) {
  const int64_t ne0 = src->ne[0], ne1 = src->ne[1];
  const std::vector<float> w = f32(src);
  std::vector<float> t(w.size());
  for (int64_t j = 0; j < ne1; j++) {
    for (int64_t i = 0; i < ne0; i++) t[i * ne1 + j] = w[j * ne0 + i];
  }
  if (dst->type == GGML_TYPE_F16) {
    std::vector<ggml_fp16_t> h(t.size());
    ggml_fp32_to_fp16_row(t.data(), h.data(), static_cast<int64_t>(t.size()));
    ggml_backend_tensor_set(dst, h.data(), 0, h.size() * sizeof(ggml_fp16_t));
    return;
  }
  ggml_backend_tensor_set(dst, t.data(), 0, t.size() * sizeof(float));
}

}  // namespace msr
