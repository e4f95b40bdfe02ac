// GGUF writers/readers for adapters, full models and checkpoints (see train_io.h).
#include "train_io.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "gguf.h"
#include "gguf_check.h"
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

// The first non-finite value of `n` floats, or -1.
int64_t first_non_finite(const float* x, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    if (!std::isfinite(x[j])) return j;
  }
  return -1;
}

// Nothing non-finite is written: a file holding NaN or inf would load and score as if trained.
// The AdamW update never leaves such values (train_session.cpp), setParam and loadCheckpoint refuse
// them; this is the check at the door for whatever got past those.
void check_finite_before_write(TrainSession& s, bool with_moments, const char* what) {
  const auto& params = s.graph().params();
  for (size_t k = 0; k < params.size(); k++) {
    const struct {
      const float* data;
      const char* suffix;
    } arrays[] = {{params[k].data(), ""}, {with_moments ? s.adam_m()[k].data() : nullptr, " (its AdamW m)"}, {with_moments ? s.adam_v()[k].data() : nullptr, " (its AdamW v)"}};
    for (const auto& a : arrays) {
      if (!a.data) continue;
      const int64_t j = first_non_finite(a.data, params[k].numel());
      if (j >= 0) {
        throw UserError(std::string(what) + ": parameter " + params[k].name + a.suffix + " holds " + std::to_string(a.data[j]) + " at index " +
                        std::to_string(j) + "; nothing non-finite is written: load the last checkpoint (loadCheckpoint) and lower the learning rate");
      }
    }
  }
}

// The LoRA target a parameter belongs to ("blk.3.attn_q.weight.lora_a" -> "q"), for messages.
std::string target_of(const std::string& name) {
  static const std::pair<const char*, const char*> kTargets[] = {{".attn_q.", "q"},       {".attn_k.", "k"},    {".attn_v.", "v"},      {".attn_output.", "o"},
                                                                {".ffn_gate.", "gate"}, {".ffn_up.", "up"}, {".ffn_down.", "down"}};
  for (const auto& [part, target] : kTargets) {
    if (name.find(part) != std::string::npos) return target;
  }
  return name;
}

std::string joined(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

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
  check_finite_before_write(s, false, "saveAdapter");
  out.write(path, "saveAdapter");
}

void save_model(TrainSession& s, const std::string& path) {
  TrainGraph& g = s.graph();
  if (g.config().mode != TrainMode::Full) throw UserError("saveModel: this trainer trains a LoRA adapter; use saveAdapter");
  check_finite_before_write(s, false, "saveModel");
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
  check_finite_before_write(s, true, "saveCheckpoint");
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
  // Mistyped metadata would abort in gguf_get_val_*, oversized tensors in the allocation below.
  check_checkpoint_file(path, {{kVersion, GGUF_TYPE_UINT32},
                               {kMode, GGUF_TYPE_STRING},
                               {kRank, GGUF_TYPE_UINT32},
                               {kAlpha, GGUF_TYPE_FLOAT32},
                               {kStep, GGUF_TYPE_UINT64},
                               {kState, GGUF_TYPE_STRING}});
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
  // The checkpoint must be of this trainer's kind: same mode, LoRA rank, alpha and targets (the
  // same parameters, so that none is dropped or left as it was); create the trainer to match.
  const TrainConfig& c = s.graph().config();
  const std::string mode = gguf_get_val_str(in, key(kMode));
  if (mode != (c.mode == TrainMode::Lora ? "lora" : "full")) {
    throw UserError("loadCheckpoint: the checkpoint is for mode '" + mode + "'; create the trainer with that mode");
  }
  if (c.mode == TrainMode::Lora && static_cast<int64_t>(gguf_get_val_u32(in, key(kRank))) != c.rank) {
    throw UserError("loadCheckpoint: the checkpoint has LoRA rank " + std::to_string(gguf_get_val_u32(in, key(kRank))) + " and this trainer " +
                    std::to_string(c.rank) + "; create the trainer with the checkpoint's rank");
  }
  const int64_t alpha_id = gguf_find_key(in, kAlpha);
  if (c.mode == TrainMode::Lora && alpha_id >= 0 && gguf_get_val_f32(in, alpha_id) != c.lora_alpha) {
    throw UserError("loadCheckpoint: the checkpoint has LoRA alpha " + std::to_string(gguf_get_val_f32(in, alpha_id)) + " and this trainer " +
                    std::to_string(c.lora_alpha) + "; create the trainer with the checkpoint's alpha (lora.alpha)");
  }
  auto& params = s.graph().params();
  std::set<std::string> ours, theirs;
  for (const auto& p : params) ours.insert(p.name);
  for (int64_t i = 0; i < gguf_get_n_tensors(in); i++) {
    std::string name = gguf_get_tensor_name(in, i);
    for (const char* suffix : {".adam_m", ".adam_v"}) {
      const size_t n = std::strlen(suffix);
      if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0) name.resize(name.size() - n);
    }
    theirs.insert(name);
  }
  if (ours != theirs) {
    std::set<std::string> ours_t, theirs_t;
    for (const auto& n : ours) ours_t.insert(target_of(n));
    for (const auto& n : theirs) theirs_t.insert(target_of(n));
    throw UserError("loadCheckpoint: the checkpoint's parameters (" + std::to_string(theirs.size()) + ", for " + joined(theirs_t) +
                    ") are not this trainer's (" + std::to_string(ours.size()) + ", for " + joined(ours_t) +
                    "); create the trainer with the checkpoint's LoRA targets, on the model it was trained on");
  }
  auto fetch = [&](const std::string& name, int64_t numel) -> const float* {
    ggml_tensor* t = ggml_get_tensor(data, name.c_str());
    if (!t || t->type != GGML_TYPE_F32 || ggml_nelements(t) != numel) {
      throw UserError("loadCheckpoint: tensor " + name + " is missing or has another shape: the checkpoint is for another model or LoRA targets");
    }
    const float* x = static_cast<const float*>(t->data);
    const int64_t j = first_non_finite(x, numel);
    if (j >= 0) throw UserError("loadCheckpoint: tensor " + name + " holds " + std::to_string(x[j]) + " at index " + std::to_string(j) + "; the checkpoint is damaged");
    return x;
  };
  // Validate everything before changing anything.
  for (const auto& p : params) {
    fetch(p.name, p.numel());
    fetch(p.name + ".adam_m", p.numel());
    const float* v = fetch(p.name + ".adam_v", p.numel());
    for (int64_t j = 0; j < p.numel(); j++) {
      if (v[j] < 0) throw UserError("loadCheckpoint: tensor " + p.name + ".adam_v is negative at index " + std::to_string(j) + "; the checkpoint is damaged");
    }
  }
  const uint64_t step = gguf_get_val_u64(in, key(kStep));
  if (step > static_cast<uint64_t>(INT64_MAX)) throw UserError("loadCheckpoint: " + std::string(kStep) + " is " + std::to_string(step) + "; the checkpoint is damaged");
  for (size_t k = 0; k < params.size(); k++) {
    const size_t bytes = static_cast<size_t>(params[k].numel()) * sizeof(float);
    std::memcpy(params[k].data(), fetch(params[k].name, params[k].numel()), bytes);
    std::memcpy(s.adam_m()[k].data(), fetch(params[k].name + ".adam_m", params[k].numel()), bytes);
    std::memcpy(s.adam_v()[k].data(), fetch(params[k].name + ".adam_v", params[k].numel()), bytes);
  }
  s.set_steps_done(static_cast<int64_t>(step));
  // Gradients accumulated before the load belong to the parameters it replaced: an unfinished
  // accumulation group starts over from here (the next step zeroes them anyway unless it adds).
  s.graph().zero_grads();
  return gguf_get_val_str(in, key(kState));
}

}  // namespace msr
