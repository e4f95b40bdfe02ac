// Samplers of our own for the generator's chains (generator.cpp builds them).
//
// Temperature by meaning: 0 is greedy (argmax). A positive temperature divides the logits; one so
// small that a logit divided by it overflows a float would turn the distribution into inf - inf =
// NaN (llama.cpp's own temperature sampler then returns arbitrary tokens), so for that token it is
// greedy too, which is the limit of the distribution as the temperature goes to 0. Otherwise it
// divides exactly as llama.cpp's does. (The generator refuses temperatures above FLT_MAX: they
// are not floats.)
#pragma once
#include "llama.h"

namespace msr {

// llama.cpp's temperature sampler, greedy where logits / t would overflow a float.
llama_sampler* temperature_sampler(float t);

}  // namespace msr
