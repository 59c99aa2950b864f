// KV cache hot-path bench (pyggml/bench/memory.py): the pieces of a decode that the KV cache
// does per ubatch, timed apart from the batch allocator.  A unified cache of kv_size cells holds
// n_fill tokens of sequence 0 and one ubatch of n_tokens more tokens (positions n_fill..) is kept
// ready; "slot" does find_slot + apply_ubatch + get_n_kv and then removes the tokens again
// (seq_rm), "mask" fills the F32/F16 KQ mask of the ubatch, which is applied once at creation.
#include "probe.h"
#include "probe_stub_model.h"

#include "llama-batch.h"
#include "llama-hparams.h"
#include "llama-kv-cache.h"
#include "llama-model.h"
#include "llama-vocab.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <exception>
#include <memory>
#include <vector>

namespace {

struct kvperf {
    probe::stub_model model;
    llama_hparams hparams = {};
    std::unique_ptr<llama_kv_cache> kv;
    llama_vocab vocab;
    std::unique_ptr<llama_batch_allocr> balloc;
    llama_ubatch ub = {};
    llama_pos p0 = 0;
    ggml_context * ctx[2] = {nullptr, nullptr};  // F32, F16 mask tensors
    ggml_backend_buffer_t buf[2] = {nullptr, nullptr};
    uint32_t n_kv = 0;

    explicit kvperf(uint32_t kv_size) : model(llama_model_default_params()) {
        kv = std::make_unique<llama_kv_cache>(model, hparams, GGML_TYPE_F16, GGML_TYPE_F16, false, false, true,
                                              kv_size, 1, 1, 0, LLAMA_SWA_TYPE_NONE, nullptr,
                                              [](int32_t) { return false; }, nullptr, nullptr);
    }

    ~kvperf() {
        for (int k = 0; k < 2; k++) {
            if (buf[k]) {
                ggml_backend_buffer_free(buf[k]);
            }
            if (ctx[k]) {
                ggml_free(ctx[k]);
            }
        }
    }

    // one ubatch of n_tokens tokens of sequence 0 continuing the cache (split_simple)
    bool make_ubatch(uint32_t n_tokens) {
        std::vector<llama_token> tokens(n_tokens, 1);
        llama_batch lb = {};
        lb.n_tokens = (int32_t) n_tokens;
        lb.token = tokens.data();
        llama_batch_ext ext(n_tokens, 2, 2, 1, kv.get(), 32000, 1);
        llama_batch_compat::init(ext, lb, 0);
        balloc = std::make_unique<llama_batch_allocr>(1);
        if (!balloc->init(ext, vocab, false)) {
            return false;
        }
        p0 = balloc->seq_pos_min(0);
        balloc->split_reset();
        ub = balloc->split_simple(n_tokens);
        return ub.n_tokens == n_tokens;
    }

    int slot(bool keep) {
        const auto sinfo = kv->find_slot(ub, false);
        if (sinfo.empty()) {
            return -1;
        }
        kv->apply_ubatch(sinfo, ub);
        const int res = (int) kv->get_n_kv(sinfo);
        if (!keep) {
            kv->seq_rm(0, p0, -1);
        }
        return res;
    }

    int mask(bool f16) {
        const int k = f16 ? 1 : 0;
        if (!ctx[k]) {
            ggml_init_params ip = { ggml_tensor_overhead() * 2, nullptr, true };
            ctx[k] = ggml_init(ip);
            ggml_new_tensor_4d(ctx[k], f16 ? GGML_TYPE_F16 : GGML_TYPE_F32, n_kv, ub.n_tokens, 1, 1);
            buf[k] = ggml_backend_alloc_ctx_tensors_from_buft(ctx[k], ggml_backend_cpu_buffer_type());
        }
        kv->set_input_kq_mask(ggml_get_first_tensor(ctx[k]), &ub, true);
        return (int) n_kv;
    }
};

}  // namespace

extern "C" void * ps_kvperf_new(uint32_t kv_size, uint32_t n_fill, uint32_t n_tokens, int applied) {
    try {
        auto b = std::make_unique<kvperf>(kv_size);
        if (n_fill > 0 && (!b->make_ubatch(n_fill) || b->slot(true) < 0)) {
            return nullptr;
        }
        if (n_tokens == 0 || !b->make_ubatch(n_tokens)) {
            return nullptr;
        }
        if (applied) {
            const int n_kv = b->slot(true);
            if (n_kv < 0) {
                return nullptr;
            }
            b->n_kv = (uint32_t) n_kv;
        }
        return b.release();
    } catch (const std::exception &) {
        return nullptr;
    }
}

extern "C" int ps_kvperf_slot(void * handle) {
    auto * b = static_cast<kvperf *>(handle);
    return b->n_kv ? -1 : b->slot(false);
}

extern "C" int ps_kvperf_mask(void * handle, int f16) {
    auto * b = static_cast<kvperf *>(handle);
    return b->n_kv ? b->mask(f16 != 0) : -1;
}

extern "C" void ps_kvperf_free(void * handle) {
    delete static_cast<kvperf *>(handle);
}
