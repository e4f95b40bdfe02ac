// quantizeModel(src, dst, type, {threads}) -> Promise<void>: llama.cpp's llama_model_quantize, i.e.
// what `llama-quantize src dst TYPE` writes (K types are the _M mixes, as downloads usually are).
// Models of a quantized weight type are made this way from an F16 one (src/gguf/quantize.ts).
// The input is checked as loadModel checks it; the output may not be the input (same file), is
// written beside dst and renamed onto it (whole or not at all), and a failure removes only that
// temporary file. threads 0 or absent: the CPUs this process may use.
#pragma once
#include <napi.h>

namespace msr {

Napi::Value QuantizeModel(const Napi::CallbackInfo& info);

}  // namespace msr
