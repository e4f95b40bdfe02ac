#include "model.h"

#include <filesystem>
#include <thread>

#include "lora.h"
#include "scorer.h"
#include "embedder.h"
#include "generator.h"

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
                                        Method<&Model::Dispose>("dispose"),
                                    });
  addon_data(env).model = Napi::Persistent(ctor);
  return ctor;
}

// Constructed only from Load's completion with an External<ModelPtr>; JS cannot make one.
Model::Model(const Napi::CallbackInfo& info) : Wrap<Model>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "Model cannot be constructed directly: use loadModel(path)");
  }
  state_ = *info[0].As<Napi::External<ModelPtr>>().Data();
  reported_bytes_ = state_->vocab_only ? 0 : static_cast<int64_t>(llama_model_size(state_->model));
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reported_bytes_);
}

void Model::Finalize(Napi::Env env) { release(env); }

void Model::release(Napi::Env env) {
  adjust_external_memory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

Napi::Value Model::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "loadModel(path: string, options?: {threads?, gpuLayers?, vocabOnly?, repack?})");
  std::string path = get_string(info[0], "path");
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  int threads = static_cast<int>(get_int(opts, "threads", 0, 0, kMaxThreads));
  if (threads == 0) threads = static_cast<int>(std::min<unsigned>(kMaxThreads, std::max(1u, std::thread::hardware_concurrency())));
  int gpu_layers = static_cast<int>(get_int(opts, "gpuLayers", 0, -1, 1 << 20));
  bool vocab_only = get_bool(opts, "vocabOnly", false);
  // repack: false keeps quantized weights as stored instead of llama.cpp's CPU repacking (faster
  // Q4_0/Q4_K/IQ4_NL products), so a trainer reads them in place rather than keeping a copy.
  bool repack = get_bool(opts, "repack", true);

  auto result = std::make_shared<ModelPtr>();
  return PromiseWorker::Run(
      env,
      [path, threads, gpu_layers, vocab_only, repack, result]() {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec)) {
          throw UserError("loadModel: no model file at " + path + "; check the path (create a test model with `msr-rec init-model`)");
        }
        auto mparams = llama_model_default_params();
        mparams.n_gpu_layers = vocab_only ? 0 : gpu_layers;
        mparams.vocab_only = vocab_only;
        mparams.use_extra_bufts = repack;
        take_llama_errors();
        llama_model* model = llama_model_load_from_file(path.c_str(), mparams);
        if (!model) {
          std::string why = take_llama_errors();
          throw UserError("loadModel: " + path + " is not a loadable GGUF model (" + (why.empty() ? "llama.cpp rejected it" : why) +
                          "); the file may be truncated, not a GGUF, or of an unsupported architecture");
        }
        auto st = std::make_shared<ModelState>();
        st->model = model;
        st->vocab = llama_model_get_vocab(model);
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

Napi::Value Model::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  llama_model* m = alive(env, "model.info")->model;
  char desc[256];
  llama_model_desc(m, desc, sizeof(desc));
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", state_->path);
  o.Set("architecture", meta(m, "general.architecture"));
  o.Set("name", meta(m, "general.name"));
  o.Set("description", std::string(desc));
  o.Set("vocabSize", state_->n_vocab);
  o.Set("contextLength", state_->n_ctx_train);
  o.Set("layers", llama_model_n_layer(m));
  o.Set("embeddingSize", llama_model_n_embd(m));
  // A vocabOnly model has no layers (llama.cpp aborts on per-layer head counts then).
  o.Set("heads", state_->vocab_only ? 0 : llama_model_n_head(m));
  o.Set("headsKv", state_->vocab_only ? 0 : llama_model_n_head_kv(m));
  o.Set("vocabOnly", state_->vocab_only);
  o.Set("parameters", static_cast<double>(llama_model_n_params(m)));
  o.Set("sizeBytes", static_cast<double>(llama_model_size(m)));
  o.Set("bos", llama_vocab_bos(state_->vocab));
  o.Set("eos", llama_vocab_eos(state_->vocab));
  o.Set("addBos", llama_vocab_get_add_bos(state_->vocab));
  o.Set("threads", state_->n_threads);
  return o;
}

Napi::Value Model::Tokenize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "tokenize(text: string, options?: {addBos?, special?})");
  alive(env, "model.tokenize");
  std::string text = get_string(info[0], "text");
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  bool add_bos = get_bool(opts, "addBos", llama_vocab_get_add_bos(state_->vocab));
  bool special = get_bool(opts, "special", false);
  try {
    return to_int32_array(env, tokenize(*state_, text, add_bos, special));
  } catch (const UserError& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Value Model::Detokenize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "detokenize(tokens: Int32Array | number[], options?: {special?})");
  alive(env, "model.detokenize");
  auto tokens = get_tokens(info[0], "tokens");
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  try {
    return Napi::String::New(env, detokenize(*state_, tokens, get_bool(opts, "special", false)));
  } catch (const UserError& e) {
    throw Napi::Error::New(env, e.what());
  }
}

// The text piece of each token (for grammars, debugging and the title matcher's token view).
Napi::Value Model::TokenPieces(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 1, "tokenPieces(tokens)");
  alive(env, "model.tokenPieces");
  auto tokens = get_tokens(info[0], "tokens");
  try {
    check_token_range(*state_, tokens, "tokenPieces");
  } catch (const UserError& e) {
    throw Napi::Error::New(env, e.what());
  }
  Napi::Array out = Napi::Array::New(env, tokens.size());
  for (size_t i = 0; i < tokens.size(); i++) out.Set(static_cast<uint32_t>(i), token_piece(*state_, tokens[i]));
  return out;
}

const ModelPtr& Model::alive(Napi::Env env, const char* what) const {
  if (!state_ || state_->disposed) throw Napi::Error::New(env, std::string(what) + ": the model was disposed; load it again with loadModel()");
  return state_;
}

// A vocabOnly model has no tensors: everything but tokenizing is refused before native code runs.
static const ModelPtr& with_weights(Napi::Env env, const ModelPtr& m, const char* what) {
  if (m->vocab_only) {
    throw Napi::Error::New(env, std::string(what) + ": " + m->path + " was loaded with vocabOnly (tokenizer only); load it without vocabOnly to run it");
  }
  return m;
}

Napi::Value Model::LoadLora(const Napi::CallbackInfo& info) { return LoraAdapter::Load(info, with_weights(info.Env(), alive(info.Env(), "model.loadLora"), "model.loadLora")); }
Napi::Value Model::Generate(const Napi::CallbackInfo& info) { return Generator::Generate(info, with_weights(info.Env(), alive(info.Env(), "model.generate"), "model.generate")); }
Napi::Value Model::Embed(const Napi::CallbackInfo& info) { return Embedder::Embed(info, with_weights(info.Env(), alive(info.Env(), "model.embed"), "model.embed")); }

// Marks the model disposed; native memory is freed when the last object using it goes away.
// No lock: a running call keeps the model alive through its own reference and finishes, and every
// later call checks the flag under the lock before it touches llama.cpp.
Napi::Value Model::Dispose(const Napi::CallbackInfo& info) {
  if (state_) {
    state_->disposed = true;
    state_.reset();
  }
  release(info.Env());
  return info.Env().Undefined();
}

ModelPtr model_from_js(const Napi::Value& v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).model.Value())) {
    throw Napi::TypeError::New(v.Env(), "expected a Model (from loadModel)");
  }
  Model* m = Model::Unwrap(v.As<Napi::Object>());
  if (!m->state() || m->state()->disposed) throw Napi::Error::New(v.Env(), "the model was disposed; load it again with loadModel()");
  return with_weights(v.Env(), m->state(), "createScorer/createTrainer");
}

}  // namespace msr
