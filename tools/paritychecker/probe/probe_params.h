// Parameter parsing shared between probe files: one JSON reader per reference parameter struct,
// defined where it was first needed and used everywhere else through this header.
#pragma once
#include "probe_json.h"

#include "common.h"
#include "llama.h"

namespace probe {

// llama_context_params from JSON overrides of llama_context_default_params() (no_perf false);
// unknown keys throw std::invalid_argument (probe_decode.cpp).
llama_context_params context_params_from_json(const json & p);

// common_params_sampling from JSON: every field named overrides the default, unknown keys are
// ignored; grammar fields as in pyggml/reference/generate.py (probe_common_sampling.cpp).
common_params_sampling sampling_params_from_json(const json & j);

}  // namespace probe
