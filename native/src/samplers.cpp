// See samplers.h.
#include "samplers.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

namespace msr {

namespace {

// llama.cpp's temperature sampler divides every logit by the temperature; this one first checks
// that no finite logit overflows (|logit| / t > FLT_MAX) and otherwise keeps only the best
// candidate, as llama.cpp's own temperature 0 does (the first of equal maxima).
struct Temperature {
  float t;
};

void temperature_apply(llama_sampler* smpl, llama_token_data_array* cur) {
  const double t = static_cast<const Temperature*>(smpl->ctx)->t;
  double largest = 0;
  for (size_t i = 0; i < cur->size; i++) {
    if (std::isfinite(cur->data[i].logit)) largest = std::max(largest, std::fabs(static_cast<double>(cur->data[i].logit)));
  }
  if (largest / t <= FLT_MAX) {
    for (size_t i = 0; i < cur->size; i++) cur->data[i].logit = static_cast<float>(cur->data[i].logit / t);
    return;
  }
  size_t best = 0;
  for (size_t i = 1; i < cur->size; i++) {
    if (cur->data[i].logit > cur->data[best].logit) best = i;
  }
  for (size_t i = 0; i < cur->size; i++) {
    if (i != best) cur->data[i].logit = -INFINITY;
  }
}

const char* temperature_name(const llama_sampler*) { return "msr-temperature"; }
llama_sampler* temperature_clone(const llama_sampler* smpl);
void temperature_free(llama_sampler* smpl) { delete static_cast<Temperature*>(smpl->ctx); }

llama_sampler_i temperature_iface() {
  llama_sampler_i i{};
  i.name = temperature_name;
  i.apply = temperature_apply;
  i.clone = temperature_clone;
  i.free = temperature_free;
  return i;
}

llama_sampler_i kTemperatureIface = temperature_iface();

llama_sampler* temperature_clone(const llama_sampler* smpl) { return temperature_sampler(static_cast<const Temperature*>(smpl->ctx)->t); }

}  // namespace

llama_sampler* temperature_sampler(float t) { return llama_sampler_init(&kTemperatureIface, new Temperature{t}); }

}  // namespace msr
