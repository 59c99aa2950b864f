// Sampling (src/llama-sampler.cpp): the pieces of the sampler API that llama.h does not reach.
//
// DRY's public constructor tokenizes its sequence breakers with a vocab; the reference's own
// tests use the internal llama_sampler_init_dry_testing, which takes the breakers already as
// token sequences. We expose that constructor with flat C arrays so pyggml can diff DRY without
// a model. The returned sampler is an ordinary llama_sampler (free with llama_sampler_free).
#include "probe.h"

#include "llama.h"
#include "llama-sampler.h"

#include <cmath>
#include <exception>
#include <vector>

extern "C" void * ps_sampler_init_dry_testing(float multiplier, float base, int32_t allowed_length,
                                              int32_t penalty_last_n, const int32_t * tokens,
                                              const int32_t * lengths, size_t n_breakers) {
    try {
        std::vector<std::vector<llama_token>> breakers(n_breakers);
        size_t at = 0;
        for (size_t i = 0; i < n_breakers; ++i) {
            breakers[i].assign(tokens + at, tokens + at + lengths[i]);
            at += (size_t) lengths[i];
        }
        return llama_sampler_init_dry_testing(multiplier, base, allowed_length, penalty_last_n, breakers);
    } catch (const std::exception &) {
        return nullptr;
    }
}

// glibc's expf/logf over an array, so pyggml can check its vectorized float math against the
// libm the reference links (the samplers call expf/logf per candidate).
extern "C" void ps_libm_f32(int op, const float * x, float * y, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        switch (op) {
            case 0: y[i] = expf(x[i]); break;
            case 1: y[i] = logf(x[i]); break;
            case 2: y[i] = log2f(x[i]); break;
            default: y[i] = x[i]; break;
        }
    }
}
