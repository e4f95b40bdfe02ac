// outProdCheck (see train_out_prod_check.cpp): the CPU out_prod op against float64 sums and ggml's F32 path.
#pragma once
#include <napi.h>

namespace msr {

// outProdCheck({type, m, k, n, threads?, layout?: "dy" | "act", isa?: "avx512" | "avx2" | "generic", seed?, runs?})
//   -> {isa, errTerms, errMax, ggmlErrTerms, ggmlErrMax, ms, ggmlMs, isaErrTerms?, isaErrMax?, isaMs?}
Napi::Value OutProdCheck(const Napi::CallbackInfo& info);

}  // namespace msr
