// Module entry: the one place where the addon's JS surface is registered. Each JS-visible class
// defines itself in its own .h/.cpp (Init returns its constructor); module functions are declared
// beside the code they run. Development hooks (tests, benchmarks) live in native/dev and, when the
// build includes them, hang under `dev`.
#include <napi.h>

#include <cstdlib>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"
#include "lora.h"
#include "model.h"
#include "quantize.h"
#include "scorer.h"
#include "train_arch.h"
#include "trainer.h"
#if MSR_REC_DEV
#include "dev.h"
#endif

namespace {

Napi::Value SystemInfo(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), llama_print_system_info()); }

// setLogLevel(0 silent | 1 warnings | 2 info | 3 debug): llama.cpp's own log output.
Napi::Value SetLogLevel(const Napi::CallbackInfo& info) {
  msr::require_args(info, 1, "setLogLevel(level: number)");
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setLogLevel(level): level must be 0, 1, 2 or 3");
  const double level = info[0].As<Napi::Number>().DoubleValue();
  if (!(level == 0 || level == 1 || level == 2 || level == 3)) throw Napi::RangeError::New(info.Env(), "setLogLevel(level): level must be 0, 1, 2 or 3");
  msr::install_llama_log(static_cast<int>(level));
  return info.Env().Undefined();
}

// The native memory this environment has reported to V8 (models, scorers, adapters, trainers):
// V8's heap statistics do not include it, so tests read it here.
Napi::Value ReportedExternalMemory(const Napi::CallbackInfo& info) {
  int64_t total = 0;
  napi_adjust_external_memory(info.Env(), 0, &total);
  return Napi::Number::New(info.Env(), static_cast<double>(total));
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void set_function(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New(env, msr::guarded_fn<F>, name));
}

std::once_flag g_process_init;

// Runs once per environment: the main thread's and each worker thread's that loads the addon.
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  std::call_once(g_process_init, [] {
    // MSR_REC_LOG=0..3: llama.cpp's log level from the start (setLogLevel changes it later).
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
  set_function<SystemInfo>(env, exports, "systemInfo");
  set_function<SetLogLevel>(env, exports, "setLogLevel");
  set_function<ReportedExternalMemory>(env, exports, "reportedExternalMemory");

  exports.Set("Model", msr::Model::Init(env));
  set_function<msr::Model::Load>(env, exports, "loadModel");
  exports.Set("LoraAdapter", msr::LoraAdapter::Init(env));
  exports.Set("Scorer", msr::Scorer::Init(env));
  set_function<msr::QuantizeModel>(env, exports, "quantizeModel");

  exports.Set("Trainer", msr::Trainer::Init(env));
  set_function<msr::BuildTrainSession>(env, exports, "buildTrainSession");
  set_function<msr::Trainability>(env, exports, "trainability");

#if MSR_REC_DEV
  // Development hooks (native/dev/dev.h): tests and benchmarks only, absent from installed builds.
  Napi::Object dev = Napi::Object::New(env);
  set_function<msr::dev::FusedCrossEntropy>(env, dev, "fusedCrossEntropy");
  set_function<msr::dev::FusedPolicyLoss>(env, dev, "fusedPolicyLoss");
  set_function<msr::dev::DenseCrossEntropyGgml>(env, dev, "denseCrossEntropyGgml");
  set_function<msr::dev::OutProdCheck>(env, dev, "outProdCheck");
  set_function<msr::dev::ScorerDecodeOnly>(env, dev, "scorerDecodeOnly");
  set_function<msr::dev::ScorerLogits>(env, dev, "scorerLogits");
  set_function<msr::dev::SampleRows>(env, dev, "sampleRows");
  set_function<msr::dev::TrainerLogits>(env, dev, "trainerLogits");
  set_function<msr::dev::TrainerReferenceLogits>(env, dev, "trainerReferenceLogits");
  set_function<msr::dev::TrainerGrad>(env, dev, "trainerGrad");
  set_function<msr::dev::BuildTrainSession>(env, dev, "buildTrainSession");
  exports.Set("dev", dev);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(msr_rec, Init)
