// A llama_model with nothing to load, for the KV probes (probe_kv.cpp, probe_kvperf.cpp):
// llama_model is abstract, and a cache built without a model file only keeps a reference to it
// and reads its (default) hparams and devices (offload = false).
#pragma once
#include "llama-model.h"

#include <memory>

namespace probe {

struct stub_model : public llama_model {
    explicit stub_model(const llama_model_params & p) : llama_model(p) {}
    void load_stats  (llama_model_loader &) override {}
    void load_hparams(llama_model_loader &) override {}
    void load_vocab  (llama_model_loader &) override {}
    bool load_tensors(llama_model_loader &) override { return true; }
    void load_arch_hparams(llama_model_loader &) override {}
    void load_arch_tensors(llama_model_loader &) override {}
    std::unique_ptr<llm_graph_context> build_arch_graph(const llm_graph_params &) const override { return nullptr; }
};

}  // namespace probe
