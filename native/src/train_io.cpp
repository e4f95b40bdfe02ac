// GGUF writers/readers for adapters, full models and checkpoints (see train_io.h).
#include "train_io.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "gguf.h"
#include "llama-model.h"

namespace msr {

namespace {

struct GgufOut {
  gguf_context* g = gguf_init_empty();
  ggml_context* meta = nullptr;  // tensor headers whose data lives elsewhere
  explicit GgufOut(size_t n_tensors) {
    ggml_init_params ip{ggml_tensor_overhead() * (n_tensors + 1), nullptr, true};
    meta = ggml_init(ip);
  }
  ~GgufOut() {
    gguf_free(g);
    ggml_free(meta);
  }
  // Adds an F32 (or `type`) tensor whose bytes stay owned by the caller until write().
  void add(const std::string& name, const int64_t* ne, int n_dims, const void* data, ggml_type type = GGML_TYPE_F32) {
    ggml_tensor* t = ggml_new_tensor(meta, type, n_dims, ne);
    ggml_set_name(t, name.c_str());
    gguf_add_tensor(g, t);
    gguf_set_tensor_data(g, name.c_str(), data);
  }
  void add(const TrainParam& p, const std::string& name, const void* data) {
    add(name, p.value->ne, ggml_n_dims(p.value), data);
  }
  // temp file in the same folder, flushed to disk, then renamed over `path`.
  void write(const std::string& path, const char* what) {
    namespace fs = std::filesystem;
    const fs::path target(path);
    std::error_code ec;
    if (target.has_parent_path() && !fs::is_directory(target.parent_path(), ec)) {
      throw UserError(std::string(what) + ": the folder " + target.parent_path().string() + " does not exist; create it first");
    }
    std::random_device rd;
    const std::string tmp = path + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(rd());
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw UserError(std::string(what) + ": cannot write " + tmp + " (" + std::strerror(errno) + ")");
    bool ok = gguf_write_to_file_ptr(g, f, false);
    ok = ok && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
      fs::remove(tmp, ec);
      throw UserError(std::string(what) + ": writing " + tmp + " failed (disk full?)");
    }
    fs::rename(tmp, target, ec);
    if (ec) {
      fs::remove(tmp, ec);
      throw UserError(std::string(what) + ": cannot rename the temporary file onto " + path + ": " + ec.message());
    }
  }
};

const char* kVersion = "msr.checkpoint.version";
const char* kMode = "msr.checkpoint.mode";
const char* kRank = "msr.checkpoint.lora_rank";
const char* kAlpha = "msr.checkpoint.lora_alpha";
const char* kStep = "msr.checkpoint.step";
const char* kState = "msr.checkpoint.state";

}  // namespace

void save_adapter(TrainSession& s, const std::string& path) {
  TrainGraph& g = s.graph();
  if (g.config().mode != TrainMode::Lora) throw UserError("saveAdapter: this trainer trains the full model; use saveModel");
  GgufOut out(g.params().size());
  gguf_set_val_str(out.g, "general.architecture", g.llama()->arch_name().c_str());
  gguf_set_val_str(out.g, "general.type", "adapter");
  gguf_set_val_str(out.g, "adapter.type", "lora");
  gguf_set_val_f32(out.g, "adapter.lora.alpha", g.config().lora_alpha);
  for (const auto& p : g.params()) out.add(p, p.name, p.value->data);
  out.write(path, "saveAdapter");
}

void save_model(TrainSession& s, const std::string& path) {
  TrainGraph& g = s.graph();
  if (g.config().mode != TrainMode::Full) throw UserError("saveModel: this trainer trains a LoRA adapter; use saveAdapter");
  const std::string& src = g.model()->path;
  gguf_init_params ip{true, nullptr};
  gguf_context* in = gguf_init_from_file(src.c_str(), ip);
  if (!in) throw UserError("saveModel: cannot re-read the base model's metadata from " + src);
  const int64_t n = gguf_get_n_tensors(in);
  GgufOut out(static_cast<size_t>(n));
  gguf_set_kv(out.g, in);
  std::vector<std::vector<uint8_t>> frozen;  // bytes of tensors that are not trained (e.g. rope_freqs)
  frozen.reserve(static_cast<size_t>(n));
  bool requantized = false;  // a quantized base weight is written back as F32
  for (int64_t i = 0; i < n; i++) {
    const char* name = gguf_get_tensor_name(in, i);
    if (const TrainParam* p = g.find(name)) {
      requantized = requantized || gguf_get_tensor_type(in, i) != GGML_TYPE_F32;
      out.add(*p, name, p->value->data);
      continue;
    }
    const ggml_tensor* t = g.llama()->get_tensor(name);
    if (!t) {
      gguf_free(in);
      throw UserError(std::string("saveModel: the base model has no loaded tensor ") + name);
    }
    frozen.emplace_back(ggml_nbytes(t));
    ggml_backend_tensor_get(t, frozen.back().data(), 0, frozen.back().size());
    out.add(name, t->ne, ggml_n_dims(t), frozen.back().data(), t->type);
  }
  gguf_free(in);
  if (requantized) gguf_set_val_u32(out.g, "general.file_type", 0);  // LLAMA_FTYPE_ALL_F32 (mostly)
  out.write(path, "saveModel");
}

void save_checkpoint(TrainSession& s, const std::string& path, const std::string& state) {
  TrainGraph& g = s.graph();
  const TrainConfig& c = g.config();
  GgufOut out(g.params().size() * 3);
  gguf_set_val_u32(out.g, kVersion, 1);
  gguf_set_val_str(out.g, kMode, c.mode == TrainMode::Lora ? "lora" : "full");
  gguf_set_val_u32(out.g, kRank, static_cast<uint32_t>(c.rank));
  gguf_set_val_f32(out.g, kAlpha, c.lora_alpha);
  gguf_set_val_u64(out.g, kStep, static_cast<uint64_t>(s.steps_done()));
  gguf_set_val_str(out.g, kState, state.c_str());
  auto& params = g.params();
  for (size_t k = 0; k < params.size(); k++) {
    out.add(params[k], params[k].name, params[k].value->data);
    out.add(params[k], params[k].name + ".adam_m", s.adam_m()[k].data());
    out.add(params[k], params[k].name + ".adam_v", s.adam_v()[k].data());
  }
  out.write(path, "saveCheckpoint");
}

std::string load_checkpoint(TrainSession& s, const std::string& path) {
  ggml_context* data = nullptr;
  gguf_init_params ip{false, &data};
  gguf_context* in = gguf_init_from_file(path.c_str(), ip);
  if (!in) throw UserError("loadCheckpoint: " + path + " is missing or not a GGUF checkpoint");
  struct Guard {
    gguf_context* in;
    ggml_context* data;
    ~Guard() {
      gguf_free(in);
      if (data) ggml_free(data);
    }
  } guard{in, data};
  auto key = [&](const char* k) {
    const int64_t id = gguf_find_key(in, k);
    if (id < 0) throw UserError("loadCheckpoint: " + path + " is not a trainer checkpoint (no " + k + ")");
    return id;
  };
  const TrainConfig& c = s.graph().config();
  const std::string mode = gguf_get_val_str(in, key(kMode));
  if (mode != (c.mode == TrainMode::Lora ? "lora" : "full")) {
    throw UserError("loadCheckpoint: the checkpoint is for mode '" + mode + "'; create the trainer with that mode");
  }
  if (c.mode == TrainMode::Lora && static_cast<int>(gguf_get_val_u32(in, key(kRank))) != c.rank) {
    throw UserError("loadCheckpoint: the checkpoint has LoRA rank " + std::to_string(gguf_get_val_u32(in, key(kRank))) +
                    "; create the trainer with the same rank");
  }
  auto& params = s.graph().params();
  auto fetch = [&](const std::string& name, int64_t numel) -> const float* {
    ggml_tensor* t = ggml_get_tensor(data, name.c_str());
    if (!t || t->type != GGML_TYPE_F32 || ggml_nelements(t) != numel) {
      throw UserError("loadCheckpoint: tensor " + name + " is missing or has another shape: the checkpoint is for another model or LoRA targets");
    }
    return static_cast<const float*>(t->data);
  };
  // Validate everything before changing anything.
  for (const auto& p : params) {
    fetch(p.name, p.numel());
    fetch(p.name + ".adam_m", p.numel());
    fetch(p.name + ".adam_v", p.numel());
  }
  for (size_t k = 0; k < params.size(); k++) {
    const size_t bytes = static_cast<size_t>(params[k].numel()) * sizeof(float);
    std::memcpy(params[k].data(), fetch(params[k].name, params[k].numel()), bytes);
    std::memcpy(s.adam_m()[k].data(), fetch(params[k].name + ".adam_m", params[k].numel()), bytes);
    std::memcpy(s.adam_v()[k].data(), fetch(params[k].name + ".adam_v", params[k].numel()), bytes);
  }
  s.set_steps_done(static_cast<int64_t>(gguf_get_val_u64(in, key(kStep))));
  return gguf_get_val_str(in, key(kState));
}

}  // namespace msr
