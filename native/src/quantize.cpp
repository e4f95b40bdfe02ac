// quantizeModel (see quantize.h).
#include "quantize.h"

#include <filesystem>
#include <map>
#include <string>

#include "common.h"
#include "gguf_check.h"
#include "path_check.h"

namespace msr {

Napi::Value QuantizeModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 3, "quantizeModel(src: string, dst: string, type: string, options?: {threads?})");
  const std::string src = get_path(info[0], "src"), dst = get_path(info[1], "dst"), type = get_string(info[2], "type");
  Napi::Object o = info.Length() > 3 && info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
  int threads = static_cast<int>(get_int(o, "threads", 0, 0, kMaxThreads));
  if (threads == 0) threads = allowed_cpus();
  static const std::map<std::string, llama_ftype> kTypes{
      {"F16", LLAMA_FTYPE_MOSTLY_F16},       {"BF16", LLAMA_FTYPE_MOSTLY_BF16},     {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
      {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},     {"Q4_K", LLAMA_FTYPE_MOSTLY_Q4_K_M},   {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M},
      {"Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S}, {"Q5_K", LLAMA_FTYPE_MOSTLY_Q5_K_M},   {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M},
      {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},     {"IQ4_NL", LLAMA_FTYPE_MOSTLY_IQ4_NL},
  };
  auto it = kTypes.find(type);
  if (it == kTypes.end()) {
    std::string names;
    for (const auto& [k, v] : kTypes) names += (names.empty() ? "" : ", ") + k;
    throw Napi::TypeError::New(env, "quantizeModel: unknown type '" + type + "'; use one of " + names);
  }
  const llama_ftype ftype = it->second;
  return PromiseWorker::Run(
      env,
      [src, dst, ftype, threads]() {
        const std::string what = "quantizeModel";
        check_input_file(src, what, "model file");
        check_output_file(dst, what);
        // llama.cpp maps the input while it writes the output: writing the input itself would
        // truncate the mapped file under it (SIGBUS).
        check_not_same_file(src, dst, what);
        check_model_file(src, false, what);
        // Written beside dst and renamed onto it: dst is whole or untouched, and a failure removes
        // only the temporary file this call made, never a file it did not create.
        const std::string tmp = temporary_beside(dst);
        auto qp = llama_model_quantize_default_params();
        qp.ftype = ftype;
        qp.nthread = threads;
        take_llama_errors();
        std::error_code ec;
        if (llama_model_quantize(src.c_str(), tmp.c_str(), &qp) != 0) {
          const std::string why = take_llama_errors();
          std::filesystem::remove(tmp, ec);
          throw UserError("quantizeModel: llama.cpp could not quantize " + src + (why.empty() ? "" : " (" + why + ")"));
        }
        std::filesystem::rename(tmp, dst, ec);
        if (ec) {
          std::filesystem::remove(tmp, ec);
          throw UserError("quantizeModel: cannot rename the temporary file onto " + dst + "; check the folder's permissions");
        }
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace msr
