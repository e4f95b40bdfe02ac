#include "model.h"

#include "embedder.h"
#include "generator.h"
#include "gguf_check.h"
#include "lora.h"
#include "path_check.h"
#include "scorer.h"

namespace msr {

Napi::Function Model::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Model",
                                    {
                                        Method<&Model::Info>("info"),
                                        Method<&Model::Tokenize>("tokenize"),
                                        Method<&Model::Detokenize>("detokenize"),
                                        Method<&Model::TokenPieces>("tokenPieces"),
                                        Method<&Model::LoadLora>("loadLora"),
                                        Method<&Model::Generate>("generate"),
                                        Method<&Model::Embed>("embed"),
                                        Plain<&Model::Dispose>("dispose"),
                                    });
  addon_data(env).model = Napi::Persistent(ctor);
  return ctor;
}

// Constructed only from Load's completion with an External<ModelPtr>; JS cannot make one.
Model::Model(const Napi::CallbackInfo& info) : Wrap<Model, ModelState>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "Model cannot be constructed directly: use loadModel(path)");
  }
  hold(*info[0].As<Napi::External<ModelPtr>>().Data());
  reported_bytes_ = held()->vocab_only ? 0 : static_cast<int64_t>(llama_model_size(held()->model));
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reported_bytes_);
}

void Model::Finalize(Napi::Env env) { release(env); }

void Model::release(Napi::Env env) {
  adjust_external_memory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

// loadModel(path, {threads, gpuLayers, vocabOnly, repack, mmap}). The file is checked first
// (gguf_check.h): llama.cpp asserts on content it does not expect, and an assertion ends the process.
Napi::Value Model::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "loadModel(path: string, options?: {threads?, gpuLayers?, vocabOnly?, repack?, mmap?})");
  std::string path = get_path(info[0], "path");
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  int threads = static_cast<int>(get_int(opts, "threads", 0, 0, kMaxThreads));
  if (threads == 0) threads = allowed_cpus();
  int gpu_layers = static_cast<int>(get_int(opts, "gpuLayers", 0, -1, 1 << 20));
  bool vocab_only = get_bool(opts, "vocabOnly", false);
  // repack: false keeps quantized weights as stored instead of llama.cpp's CPU repacking (faster
  // Q4_0/Q4_K/IQ4_NL products), so a trainer reads them in place rather than keeping a copy.
  bool repack = get_bool(opts, "repack", true);
  // mmap: false reads the weights into memory instead of mapping the file: a file replaced or
  // truncated on disk while a mapped model is in use kills the process (docs/engine.md, Hazards).
  bool mmap = get_bool(opts, "mmap", true);

  auto result = std::make_shared<ModelPtr>();
  return PromiseWorker::Run(
      env,
      [path, threads, gpu_layers, vocab_only, repack, mmap, result]() {
        check_input_file(path, "loadModel", "model file", "(create a test model with `msr-rec init-model`)");
        check_model_file(path, vocab_only, "loadModel");
        auto mparams = llama_model_default_params();
        mparams.n_gpu_layers = vocab_only ? 0 : gpu_layers;
        mparams.vocab_only = vocab_only;
        mparams.use_extra_bufts = repack;
        if (!mmap) {
          mparams.load_mode = LLAMA_LOAD_MODE_NONE;
          mparams.lazy_mode = LLAMA_LAZY_MODE_OFF;  // lazy tensors are read from the file later, through a mapping
        }
        take_llama_errors();
        llama_model* model = llama_model_load_from_file(path.c_str(), mparams);
        if (!model) {
          std::string why = take_llama_errors();
          throw UserError("loadModel: " + path + " is not a loadable GGUF model (" + (why.empty() ? "llama.cpp rejected it" : why) +
                          "); the file may be truncated, not a GGUF, or of an unsupported architecture");
        }
        auto st = std::make_shared<ModelState>();
        st->model = model;  // owned from here: freed with st if the check below refuses it
        st->vocab = llama_model_get_vocab(model);
        check_model_vocab(st->vocab, path, "loadModel");
        st->n_vocab = llama_vocab_n_tokens(st->vocab);
        st->n_ctx_train = llama_model_n_ctx_train(model);
        st->n_threads = threads;
        st->vocab_only = vocab_only;
        // Without a GPU (a CPU build) gpuLayers offloads nothing: the model runs on the CPU.
        st->gpu_layers = vocab_only || !llama_supports_gpu_offload() ? 0 : gpu_layers;
        st->path = path;
        *result = st;
      },
      [result](Napi::Env env) -> Napi::Value {
        return addon_data(env).model.New({Napi::External<ModelPtr>::New(env, result.get())});
      });
}

static std::string meta(llama_model* m, const char* key) {
  char buf[512];
  int32_t n = llama_model_meta_val_str(m, key, buf, sizeof(buf));
  return n >= 0 ? std::string(buf) : std::string();
}

Napi::Value Model::Info(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin) {
  Napi::Env env = info.Env();
  const ModelState& st = *pin.ready();
  llama_model* m = st.model;
  char desc[256];
  llama_model_desc(m, desc, sizeof(desc));
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", st.path);
  o.Set("architecture", meta(m, "general.architecture"));
  o.Set("name", meta(m, "general.name"));
  o.Set("description", std::string(desc));
  o.Set("vocabSize", st.n_vocab);
  o.Set("contextLength", st.n_ctx_train);
  o.Set("layers", llama_model_n_layer(m));
  o.Set("embeddingSize", llama_model_n_embd(m));
  // A vocabOnly model has no layers (llama.cpp aborts on per-layer head counts then).
  o.Set("heads", st.vocab_only ? 0 : llama_model_n_head(m));
  o.Set("headsKv", st.vocab_only ? 0 : llama_model_n_head_kv(m));
  o.Set("vocabOnly", st.vocab_only);
  o.Set("parameters", static_cast<double>(llama_model_n_params(m)));
  o.Set("sizeBytes", static_cast<double>(llama_model_size(m)));
  o.Set("bos", llama_vocab_bos(st.vocab));
  o.Set("eos", llama_vocab_eos(st.vocab));
  o.Set("addBos", llama_vocab_get_add_bos(st.vocab));
  o.Set("threads", st.n_threads);
  return o;
}

Napi::Value Model::Tokenize(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "tokenize(text: string, options?: {addBos?, special?})");
  std::string text = get_string(info[0], "text");
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  Napi::Value add_bos_v = opts.Get("addBos");  // read once: absent means the model's own rule
  if (!add_bos_v.IsUndefined() && !add_bos_v.IsNull() && !add_bos_v.IsBoolean()) throw Napi::TypeError::New(env, "addBos must be a boolean");
  const bool special = get_bool(opts, "special", false);
  const ModelState& st = *pin.ready();
  const bool add_bos = add_bos_v.IsBoolean() ? add_bos_v.As<Napi::Boolean>().Value() : llama_vocab_get_add_bos(st.vocab);
  return to_int32_array(env, tokenize(st, text, add_bos, special));
}

Napi::Value Model::Detokenize(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "detokenize(tokens: Int32Array | number[], options?: {special?})");
  auto tokens = get_tokens(info[0], "tokens");
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  const bool special = get_bool(opts, "special", false);
  return Napi::String::New(env, detokenize(*pin.ready(), tokens, special));
}

// The text piece of each token (for grammars, debugging and the title matcher's token view).
Napi::Value Model::TokenPieces(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin) {
  Napi::Env env = info.Env();
  require_args(info, 1, "tokenPieces(tokens)");
  auto tokens = get_tokens(info[0], "tokens");
  const ModelState& st = *pin.ready();
  check_token_range(st, tokens, "tokenPieces");
  Napi::Array out = Napi::Array::New(env, tokens.size());
  for (size_t i = 0; i < tokens.size(); i++) out.Set(static_cast<uint32_t>(i), token_piece(st, tokens[i]));
  return out;
}

void require_weights(const ModelState& m, const std::string& what) {
  if (m.vocab_only) throw UserError(what + ": " + m.path + " was loaded with vocabOnly (tokenizer only); load it without vocabOnly to run it");
}

// A vocabOnly model has no tensors: everything but tokenizing is refused before native code runs.
Napi::Value Model::LoadLora(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin) {
  require_weights(pin.peek(), pin.what());
  return LoraAdapter::Load(info, pin);
}

Napi::Value Model::Generate(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin) {
  require_weights(pin.peek(), pin.what());
  return Generator::Generate(info, pin);
}

Napi::Value Model::Embed(const Napi::CallbackInfo& info, const Pinned<ModelState>& pin) {
  require_weights(pin.peek(), pin.what());
  return Embedder::Embed(info, pin);
}

// Marks the model disposed; native memory is freed when the last object using it goes away.
// No lock: a running call keeps the model alive through its own reference and finishes, and every
// later call checks the flag (under the lock, in workers) before it touches llama.cpp.
Napi::Value Model::Dispose(const Napi::CallbackInfo& info) {
  if (ModelPtr st = let_go()) st->disposed = true;
  release(info.Env());
  return info.Env().Undefined();
}

Pinned<ModelState> model_from_js(const Napi::Value& v, const std::string& what) {
  Pinned<ModelState> pin = Model::pin_js(v, what, "expected a Model (from loadModel)");
  require_weights(pin.peek(), what);
  return pin;
}

}  // namespace msr
