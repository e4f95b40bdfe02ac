// quantizeModel (see quantize.h).
#include "quantize.h"

#include <filesystem>
#include <map>
#include <string>

#include "common.h"

namespace msr {

Napi::Value QuantizeModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_args(info, 3, "quantizeModel(src: string, dst: string, type: string, options?: {threads?})");
  const std::string src = get_string(info[0], "src"), dst = get_string(info[1], "dst"), type = get_string(info[2], "type");
  Napi::Object o = info.Length() > 3 && info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
  const int threads = static_cast<int>(get_int(o, "threads", 0, 0, kMaxThreads));  // 0: all cores
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
        std::error_code ec;
        if (!std::filesystem::is_regular_file(src, ec)) throw UserError("quantizeModel: no model file at " + src);
        auto qp = llama_model_quantize_default_params();
        qp.ftype = ftype;
        qp.nthread = threads;
        take_llama_errors();
        if (llama_model_quantize(src.c_str(), dst.c_str(), &qp) != 0) {
          const std::string why = take_llama_errors();
          std::filesystem::remove(dst, ec);
          throw UserError("quantizeModel: llama.cpp could not quantize " + src + (why.empty() ? "" : " (" + why + ")"));
        }
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace msr
