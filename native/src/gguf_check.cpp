// GGUF checks (see gguf_check.h). What each one stands before, in llama.cpp (src/) and ggml:
//
//   structure, tensor sizes, types in range   gguf_init_from_file returns null; reported as such
//   tensor data past the end of the file      our own loaders allocate what a header claims before reading
//   a key of another type than its reader's   gguf_get_val_* GGML_ASSERT(type) (adapter, checkpoint keys)
//   tokenizer.ggml.tokens: a token twice (or  llama-vocab.cpp load: GGML_ASSERT(id_to_token.size() ==
//     twice after empty ones become           token_to_id.size())
//     "[EMPTY_<i>]")
//   no tokens / tokenizer.ggml.model "none"   llama-vocab.cpp: GGML_ABORT in tokenize and
//                                             GGML_ASSERT(type != LLAMA_VOCAB_TYPE_NONE) in token_get_attr
//   add_bos/add_eos (WPM: bos, sep) without   llama-vocab.cpp tokenize: GGML_ASSERT(special_*_id !=
//     the token (checked after the load)      LLAMA_TOKEN_NULL)
//   {arch}.block_count outside [1, 512]       llama-model.cpp load_hparams: GGML_ASSERT(n_layer_all > 0 &&
//                                             n_layer_all <= LLAMA_MAX_LAYERS)
//   {arch}.nextn_predict_layers > layers      load_hparams: GGML_ASSERT(n_layer_nextn <= n_layer_all)
//   {arch}.posnet / convnext block_count      load_hparams (WavTokenizer): GGML_ASSERT(<= n_layer_all)
//   {arch}.expert_count > 1024, used experts  load_hparams: GGML_ASSERT(n_expert <= LLAMA_MAX_EXPERTS),
//     > experts or 0, expert groups            (n_expert_used <= n_expert), (n_expert_used > 0),
//     not dividing them                        (n_expert_groups < n_expert), (n_expert % groups == 0), ...
//   {arch}.rope.scaling.type unknown          load_hparams: GGML_ASSERT(rope_scaling_type_train !=
//                                             LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED)
//   a tensor with a zero dimension            llama-model-loader.cpp create_tensor: GGML_ASSERT(ne >= 1)
//   a 1-D tensor (norm, bias, rope factors)   ggml-cpu binary-ops.cpp: GGML_ABORT("unsupported types") in
//     not F32                                 the graph's mul/add; ggml.c rope: GGML_ASSERT(c->type == F32)
//   a matrix of a type without a CPU dot      ggml-cpu mul_mat: a null vec_dot called (I8..I64, F64,
//     product                                 Q8_1, Q8_K); the loader's supports_op accepts them
//   llama, qwen2, qwen3 only (the graphs this engine runs and trains):
//     heads (per layer) 0 or not a multiple   ggml.c ggml_mul_mat: GGML_ASSERT(ggml_can_mul_mat) on the
//       of the KV heads, or no KV heads         attention's broadcast of K over query heads
//     key_length != value_length, or !=       src/models/{llama,qwen2,qwen3}.cpp graph: GGML_ASSERT(
//       rope.dimension_count                    n_embd_head == n_embd_head_k), (n_embd_head == n_rot)
//     an odd or zero head size                ggml-cpu ops.cpp rope: GGML_ASSERT(n_dims % 2 == 0)
//     embedding or feed-forward length 0      zero-sized weights (as above)
// Other architectures get every check but the last group: their graphs are llama.cpp's to keep.
// Adapters (llama-adapter.cpp): a LoRA tensor that is not a matrix of rank >= 1 of a multipliable
// type is refused (ggml_mul_mat's broadcast assertion, a null vec_dot, alpha / rank = inf).
#include "gguf_check.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_set>

#include "ggml-cpu.h"
#include "gguf.h"

namespace msr {

namespace {

constexpr int64_t kMaxLayers = 512;    // LLAMA_MAX_LAYERS (src/llama-hparams.h)
constexpr int64_t kMaxExperts = 1024;  // LLAMA_MAX_EXPERTS

struct GgufFree {
  void operator()(gguf_context* g) const { gguf_free(g); }
};
struct GgmlFree {
  void operator()(ggml_context* c) const { ggml_free(c); }
};

// A GGUF's header (metadata and tensor infos, no data) with its tensors as ggml metadata.
struct GgufHeader {
  std::unique_ptr<gguf_context, GgufFree> g;
  std::unique_ptr<ggml_context, GgmlFree> meta;
  std::string path;
  std::string kind;  // "a loadable GGUF model": errors read "<what>: <path> is not <kind>: <problem>"

  // Null `g` when the file is not a readable GGUF; `why` gets ggml's reason.
  explicit GgufHeader(const std::string& p, std::string* why) : path(p) {
    ggml_context* meta_raw = nullptr;
    gguf_init_params params{/*no_alloc*/ true, &meta_raw};
    take_llama_errors();
    g.reset(gguf_init_from_file(path.c_str(), params));
    meta.reset(meta_raw);
    if (why) *why = take_llama_errors();
  }

  [[noreturn]] void fail(const std::string& what, const std::string& problem) const {
    throw UserError(what + ": " + path + (kind.empty() ? "" : " is not " + kind) + ": " + problem);
  }

  int64_t key(const std::string& k) const { return gguf_find_key(g.get(), k.c_str()); }

  // An integer value of any integer type (llama.cpp's own getters insist on one type and throw
  // for another, so the checks here only need the number); nullopt when absent or not an integer.
  std::optional<int64_t> int_value(const std::string& k) const {
    const int64_t id = key(k);
    if (id < 0) return std::nullopt;
    switch (gguf_get_kv_type(g.get(), id)) {
      case GGUF_TYPE_UINT8:
        return gguf_get_val_u8(g.get(), id);
      case GGUF_TYPE_INT8:
        return gguf_get_val_i8(g.get(), id);
      case GGUF_TYPE_UINT16:
        return gguf_get_val_u16(g.get(), id);
      case GGUF_TYPE_INT16:
        return gguf_get_val_i16(g.get(), id);
      case GGUF_TYPE_UINT32:
        return gguf_get_val_u32(g.get(), id);
      case GGUF_TYPE_INT32:
        return gguf_get_val_i32(g.get(), id);
      case GGUF_TYPE_UINT64:
        return static_cast<int64_t>(std::min<uint64_t>(gguf_get_val_u64(g.get(), id), INT64_MAX));
      case GGUF_TYPE_INT64:
        return gguf_get_val_i64(g.get(), id);
      default:
        return std::nullopt;
    }
  }

  // A per-layer value stored as one integer or as an integer array (llama.cpp's get_key_or_arr).
  std::vector<int64_t> int_values(const std::string& k) const {
    const int64_t id = key(k);
    if (id < 0) return {};
    if (gguf_get_kv_type(g.get(), id) != GGUF_TYPE_ARRAY) {
      const auto v = int_value(k);
      return v ? std::vector<int64_t>{*v} : std::vector<int64_t>{};
    }
    const size_t n = gguf_get_arr_n(g.get(), id);
    const void* data = gguf_get_arr_data_safe(id);
    std::vector<int64_t> out;
    for (size_t i = 0; data && i < n; i++) {
      switch (gguf_get_arr_type(g.get(), id)) {
        case GGUF_TYPE_UINT32:
          out.push_back(static_cast<const uint32_t*>(data)[i]);
          break;
        case GGUF_TYPE_INT32:
          out.push_back(static_cast<const int32_t*>(data)[i]);
          break;
        case GGUF_TYPE_UINT64:
          out.push_back(static_cast<int64_t>(std::min<uint64_t>(static_cast<const uint64_t*>(data)[i], INT64_MAX)));
          break;
        case GGUF_TYPE_INT64:
          out.push_back(static_cast<const int64_t*>(data)[i]);
          break;
        default:
          return {};  // llama.cpp refuses other element types itself
      }
    }
    return out;
  }

  std::optional<std::string> str_value(const std::string& k) const {
    const int64_t id = key(k);
    if (id < 0 || gguf_get_kv_type(g.get(), id) != GGUF_TYPE_STRING) return std::nullopt;
    return std::string(gguf_get_val_str(g.get(), id));
  }

  // gguf_get_arr_data asserts on string arrays.
  const void* gguf_get_arr_data_safe(int64_t id) const {
    return gguf_get_arr_type(g.get(), id) == GGUF_TYPE_STRING ? nullptr : gguf_get_arr_data(g.get(), id);
  }

  void check_key_types(std::initializer_list<GgufKey> keys, const std::string& what) const {
    for (const GgufKey& k : keys) {
      const int64_t id = key(k.key);
      const gguf_type want = static_cast<gguf_type>(k.type);
      if (id >= 0 && gguf_get_kv_type(g.get(), id) != want) {
        fail(what, std::string("metadata ") + k.key + " is stored as " + gguf_type_name(gguf_get_kv_type(g.get(), id)) + " but must be " +
                       gguf_type_name(want) + "; the file was not written by a compatible tool, or was edited");
      }
    }
  }

  void check_tensors_in_file(const std::string& what) const {
    std::error_code ec;
    const uint64_t file_size = std::filesystem::file_size(path, ec);
    const uint64_t data = gguf_get_data_offset(g.get());
    for (int64_t i = 0; i < gguf_get_n_tensors(g.get()); i++) {
      const uint64_t off = gguf_get_tensor_offset(g.get(), i), size = gguf_get_tensor_size(g.get(), i);
      if (ec || data > file_size || off > file_size - data || size > file_size - data - off) {
        fail(what, std::string("tensor ") + gguf_get_tensor_name(g.get(), i) + " claims " + std::to_string(size) +
                       " bytes, larger than the file holds (truncated or damaged); copy or write the file again");
      }
    }
  }
};

// Whether ggml's CPU backend can multiply a matrix of this type (F32, F16, BF16, quantized float
// types): its mul_mat calls the type's vec_dot, which integer types and the Q8_1/Q8_K scratch
// types do not have.
bool multipliable(ggml_type t) { return t < GGML_TYPE_COUNT && ggml_get_type_traits_cpu(t)->vec_dot != nullptr; }

std::string shape_of(const ggml_tensor* t) {
  std::string s = "[";
  for (int d = 0; d < ggml_n_dims(t); d++) s += (d ? ", " : "") + std::to_string(t->ne[d]);
  return s + "]";
}

void check_vocabulary(const GgufHeader& h, const std::string& what) {
  const std::string tokens_key = "tokenizer.ggml.tokens";
  const int64_t id = h.key(tokens_key);
  if (id < 0 || gguf_get_kv_type(h.g.get(), id) != GGUF_TYPE_ARRAY || gguf_get_arr_type(h.g.get(), id) != GGUF_TYPE_STRING) {
    h.fail(what, tokens_key + " is missing or not an array of strings: the file has no vocabulary; msr-rec needs a model with its tokenizer");
  }
  const size_t n = gguf_get_arr_n(h.g.get(), id);
  if (n == 0 || n > static_cast<size_t>(INT32_MAX))
    h.fail(what, tokens_key + " has " + std::to_string(n) + " tokens; a vocabulary needs 1 to 2^31-1");
  const auto model = h.str_value("tokenizer.ggml.model");
  if (model && (*model == "none" || *model == "no_vocab")) {
    h.fail(what, "tokenizer.ggml.model is '" + *model + "': the file has no tokenizer; msr-rec needs a model with its tokenizer");
  }
  std::unordered_set<std::string> seen;
  seen.reserve(n);
  for (size_t i = 0; i < n; i++) {
    std::string token = gguf_get_arr_str(h.g.get(), id, i);
    if (token.empty()) token = "[EMPTY_" + std::to_string(i) + "]";  // what llama.cpp makes of an empty token
    if (!seen.insert(std::move(token)).second) {
      h.fail(what, tokens_key + " holds the token '" + std::string(gguf_get_arr_str(h.g.get(), id, i)) + "' (id " + std::to_string(i) +
                       ") twice; every token of a vocabulary must be unique");
    }
  }
}

// An integer key's value in [lo, hi] when present; the error names the key and the limit.
void check_range(const GgufHeader& h, const std::string& key, int64_t lo, int64_t hi, const std::string& what, const char* why) {
  for (int64_t v : h.int_values(key)) {
    if (v < lo || v > hi) {
      h.fail(what, key + " is " + std::to_string(v) + " but must be between " + std::to_string(lo) + " and " + std::to_string(hi) + " (" + why + ")");
    }
  }
}

void check_hyperparameters(const GgufHeader& h, const std::string& arch, const std::string& what) {
  const std::string p = arch + ".";
  check_range(h, p + "block_count", 1, kMaxLayers, what, "llama.cpp supports at most 512 layers");
  const int64_t layers = h.int_value(p + "block_count").value_or(kMaxLayers);
  check_range(h, p + "nextn_predict_layers", 0, layers, what, "at most block_count");
  check_range(h, p + "posnet.block_count", 0, layers, what, "at most block_count");
  check_range(h, p + "convnext.block_count", 0, layers, what, "at most block_count");

  check_range(h, p + "expert_count", 0, kMaxExperts, what, "llama.cpp supports at most 1024 experts");
  const int64_t experts = h.int_value(p + "expert_count").value_or(0);
  const std::vector<int64_t> used = h.int_values(p + "expert_used_count");
  const int64_t used_max = used.empty() ? 0 : *std::max_element(used.begin(), used.end());
  const int64_t groups = h.int_value(p + "expert_group_count").value_or(0);
  const int64_t group_used = h.int_value(p + "expert_group_used_count").value_or(0);
  const std::string counts = " (expert_count " + std::to_string(experts) + ", expert_used_count " + std::to_string(used_max) +
                             ", expert_group_count " + std::to_string(groups) + ", expert_group_used_count " + std::to_string(group_used) + ")";
  if (experts > 0) {
    if (used_max < 1 || used_max > experts) h.fail(what, p + "expert_used_count must be between 1 and expert_count" + counts);
    if (groups >= experts) h.fail(what, p + "expert_group_count must be less than expert_count" + counts);
    if (groups > 1 && (experts % groups != 0 || group_used < 1 || group_used >= groups)) {
      h.fail(what, p + "expert_group_count must divide expert_count, and expert_group_used_count be between 1 and expert_group_count - 1" + counts);
    }
  } else if (used_max != 0 || groups != 0) {
    h.fail(what, p + "expert_used_count and expert_group_count must be 0 in a model without experts" + counts);
  }

  const auto rope = h.str_value(p + "rope.scaling.type");
  if (rope && *rope != "none" && *rope != "linear" && *rope != "yarn" && *rope != "longrope") {
    h.fail(what, p + "rope.scaling.type is '" + *rope + "'; llama.cpp knows none, linear, yarn and longrope");
  }
}

// The attention geometry the llama, qwen2 and qwen3 graphs assert on.
void check_attention(const GgufHeader& h, const std::string& arch, const std::string& what) {
  const std::string p = arch + ".";
  const int64_t n_embd = h.int_value(p + "embedding_length").value_or(0);
  if (n_embd < 1) h.fail(what, p + "embedding_length must be at least 1");
  for (int64_t ff : h.int_values(p + "feed_forward_length")) {
    if (ff < 1) h.fail(what, p + "feed_forward_length must be at least 1 in every layer");
  }
  const std::vector<int64_t> heads = h.int_values(p + "attention.head_count");
  std::vector<int64_t> heads_kv = h.int_values(p + "attention.head_count_kv");
  if (heads_kv.empty()) heads_kv = heads;
  for (size_t il = 0; il < std::max(heads.size(), heads_kv.size()); il++) {
    const int64_t nh = heads.empty() ? 0 : heads[std::min(il, heads.size() - 1)];
    const int64_t nkv = heads_kv.empty() ? 0 : heads_kv[std::min(il, heads_kv.size() - 1)];
    if (nh < 1 || nkv < 1 || nh % nkv != 0) {
      h.fail(what, p + "attention.head_count (" + std::to_string(nh) + ") must be a positive multiple of " + p + "attention.head_count_kv (" +
                       std::to_string(nkv) + ")" + (heads.size() > 1 ? " in layer " + std::to_string(il) : ""));
    }
  }
  if (heads.empty()) return;  // llama.cpp refuses the missing key itself
  const int64_t head = n_embd / heads[0];
  const int64_t k = h.int_value(p + "attention.key_length").value_or(head);
  const int64_t v = h.int_value(p + "attention.value_length").value_or(head);
  const int64_t rot = h.int_value(p + "rope.dimension_count").value_or(k);
  if (k != v || k != rot || k < 2 || k % 2 != 0) {
    h.fail(what, "the head size must be even and the same for keys (" + p + "attention.key_length: " + std::to_string(k) + "), values (" + p +
                     "attention.value_length: " + std::to_string(v) + ") and RoPE (" + p + "rope.dimension_count: " + std::to_string(rot) +
                     "); embedding_length / head_count is the default of each");
  }
}

void check_tensor_types(const GgufHeader& h, const std::string& what) {
  for (ggml_tensor* t = ggml_get_first_tensor(h.meta.get()); t; t = ggml_get_next_tensor(h.meta.get(), t)) {
    const std::string name = ggml_get_name(t);
    if (ggml_nelements(t) == 0) h.fail(what, "tensor " + name + " has the shape " + shape_of(t) + ", with a dimension of 0");
    if (ggml_n_dims(t) <= 1 && t->type != GGML_TYPE_F32) {
      h.fail(what, "tensor " + name + " is " + ggml_type_name(t->type) + "; one-dimensional tensors (norms, biases) must be F32");
    }
    if (ggml_n_dims(t) >= 2 && !multipliable(t->type)) {
      h.fail(what, "tensor " + name + " is " + ggml_type_name(t->type) +
                       ", a type no matrix product takes; weights must be F32, F16, BF16 or a quantized float type");
    }
  }
}

// `kind` names what the file should be in a structural error; `in_every_error` repeats it in the
// content checks' errors too.
GgufHeader open_or_fail(const std::string& path, const std::string& what, const char* kind, const char* hint, bool in_every_error) {
  std::string why;
  GgufHeader h(path, &why);
  if (!h.g) throw UserError(what + ": " + path + " is not " + kind + " (" + (why.empty() ? "not a readable GGUF file" : why) + ")" + hint);
  if (in_every_error) h.kind = kind;
  return h;
}

}  // namespace

void check_model_file(const std::string& path, bool vocab_only, const std::string& what) {
  const GgufHeader h =
      open_or_fail(path, what, "a loadable GGUF model", "; the file may be truncated, not a GGUF, or of an unsupported architecture", true);
  h.check_key_types({{"general.architecture", GGUF_TYPE_STRING}}, what);
  h.check_tensors_in_file(what);
  const auto arch = h.str_value("general.architecture");
  if (!arch) h.fail(what, "general.architecture is missing: not a model file");
  check_vocabulary(h, what);
  if (vocab_only) return;
  check_hyperparameters(h, *arch, what);
  check_tensor_types(h, what);
  if (*arch == "llama" || *arch == "qwen2" || *arch == "qwen3") check_attention(h, *arch, what);
}

void check_model_vocab(const llama_vocab* vocab, const std::string& path, const std::string& what) {
  const auto refuse = [&](const std::string& when, const char* token, const char* key) {
    throw UserError(what + ": " + path + ": " + when + " the tokenizer adds a " + token + " token, but the vocabulary has none (" + key +
                    " is missing or out of range); fix the model's metadata");
  };
  if (llama_vocab_type(vocab) == LLAMA_VOCAB_TYPE_NONE)
    throw UserError(what + ": " + path + " has no tokenizer; msr-rec needs a model with its tokenizer");
  const bool wpm = llama_vocab_type(vocab) == LLAMA_VOCAB_TYPE_WPM;
  if ((wpm || llama_vocab_get_add_bos(vocab)) && llama_vocab_bos(vocab) == LLAMA_TOKEN_NULL) {
    refuse(wpm ? "as a WordPiece vocabulary" : "with tokenizer.ggml.add_bos_token", "BOS", "tokenizer.ggml.bos_token_id");
  }
  if (llama_vocab_get_add_eos(vocab) && llama_vocab_eos(vocab) == LLAMA_TOKEN_NULL) {
    refuse("with tokenizer.ggml.add_eos_token", "EOS", "tokenizer.ggml.eos_token_id");
  }
  if (wpm && llama_vocab_sep(vocab) == LLAMA_TOKEN_NULL) refuse("as a WordPiece vocabulary", "separator", "tokenizer.ggml.seperator_token_id");
}

AdapterFacts check_adapter_file(const std::string& path) {
  const std::string what = "loadLora";
  const GgufHeader h =
      open_or_fail(path, what, "a LoRA adapter for this model", "; an adapter must be a GGUF LoRA trained for the same base model", false);
  h.check_key_types({{"general.type", GGUF_TYPE_STRING},
                     {"general.architecture", GGUF_TYPE_STRING},
                     {"adapter.type", GGUF_TYPE_STRING},
                     {"adapter.lora.alpha", GGUF_TYPE_FLOAT32}},
                    what);
  h.check_tensors_in_file(what);
  AdapterFacts out;
  const int64_t alpha_id = h.key("adapter.lora.alpha");
  out.alpha = alpha_id >= 0 ? gguf_get_val_f32(h.g.get(), alpha_id) : 0.f;
  if (!std::isfinite(out.alpha)) h.fail(what, "adapter.lora.alpha is not a finite number; the file is damaged");
  for (int64_t i = 0; i < gguf_get_n_tensors(h.g.get()); i++) out.bytes += static_cast<int64_t>(gguf_get_tensor_size(h.g.get(), i));
  out.min_rank = INT64_MAX;
  for (ggml_tensor* t = ggml_get_first_tensor(h.meta.get()); t; t = ggml_get_next_tensor(h.meta.get(), t)) {
    const std::string name = ggml_get_name(t);
    const bool is_a = name.size() > 7 && name.compare(name.size() - 7, 7, ".lora_a") == 0;
    const bool is_b = name.size() > 7 && name.compare(name.size() - 7, 7, ".lora_b") == 0;
    if (!is_a && !is_b) continue;  // llama.cpp skips norms and refuses anything else itself
    if (!multipliable(t->type)) {
      h.fail(what, "tensor " + name + " is " + ggml_type_name(t->type) + "; LoRA tensors must be F32, F16, BF16 or a quantized float type");
    }
    if (ggml_n_dims(t) > 2 || ggml_nelements(t) == 0)
      h.fail(what, "tensor " + name + " has the shape " + shape_of(t) + "; LoRA tensors are matrices of rank 1 or more");
    if (is_a) out.min_rank = std::min<int64_t>(out.min_rank, t->ne[1]);
  }
  if (out.min_rank == INT64_MAX) out.min_rank = 1;
  return out;
}

void check_checkpoint_file(const std::string& path, std::initializer_list<GgufKey> keys) {
  const std::string what = "loadCheckpoint";
  const GgufHeader h = open_or_fail(path, what, "a trainer checkpoint", "", false);
  h.check_key_types(keys, what);
  h.check_tensors_in_file(what);
}

}  // namespace msr
