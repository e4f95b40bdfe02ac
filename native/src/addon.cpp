// Module entry: registers every JS-visible class. One .h/.cpp per object.
#include <napi.h>

#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"
#include "generator.h"
#include "lora.h"
#include "model.h"
#include "scorer.h"
#include "trainer.h"

static Napi::Value SystemInfo(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), llama_print_system_info()); }

// setLogLevel(0 silent | 1 warnings | 2 info | 3 debug): llama.cpp's own log output.
static Napi::Value SetLogLevel(const Napi::CallbackInfo& info) {
  msr::require_args(info, 1, "setLogLevel(level: number)");
  msr::install_llama_log(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// The native memory this environment has reported to V8 (models, scorers, adapters, trainers):
// V8's heap statistics do not include it, so tests read it here.
static Napi::Value ReportedExternalMemory(const Napi::CallbackInfo& info) {
  int64_t total = 0;
  napi_adjust_external_memory(info.Env(), 0, &total);
  return Napi::Number::New(info.Env(), static_cast<double>(total));
}

static std::once_flag g_process_init;

// Runs once per environment: the main thread's and each worker thread's that loads the addon.
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  std::call_once(g_process_init, [] {
    const char* lvl = std::getenv("MSR_REC_LOG");
    msr::install_llama_log(lvl ? std::atoi(lvl) : 0);
    llama_backend_init();
  });
#if defined(__GLIBC__)
  // llama.cpp re-allocates multi-MB compute and logits buffers whenever a context's graph changes
  // (e.g. a different LoRA set). glibc's dynamic mmap threshold would otherwise climb to 32 MB
  // after the first such free and serve later ones from fragmenting heaps, so RSS swings by
  // hundreds of MB; a fixed 1 MB threshold returns every large buffer to the OS on free.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
  exports.Set("systemInfo", Napi::Function::New(env, msr::guarded_fn<SystemInfo>));
  exports.Set("setLogLevel", Napi::Function::New(env, msr::guarded_fn<SetLogLevel>));
  exports.Set("reportedExternalMemory", Napi::Function::New(env, msr::guarded_fn<ReportedExternalMemory>));
  msr::Model::Init(env, exports);
  msr::LoraAdapter::Init(env, exports);
  msr::Scorer::Init(env, exports);
  msr::Trainer::Init(env, exports);
  return exports;
}

NODE_API_MODULE(msr_rec, Init)
