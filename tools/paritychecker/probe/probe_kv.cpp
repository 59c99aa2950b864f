// KV cell metadata (src/llama-kv-cells.h, header-only): run a program of llama_kv_cells
// operations and dump the whole state after every step.
//
// The probe is built in Release, so the header's assert() preconditions are compiled out; the
// caller only sends operations whose preconditions hold (pyggml raises on the others).
#include "probe.h"
#include "probe_json.h"
#include "probe_legacy_batch.h"

#include "llama-hparams.h"
#include "llama-kv-cells.h"
#include "llama-kv-cache.h"
#include "llama-batch.h"
#include "llama-model.h"
#include "llama-vocab.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "llama-memory.h"

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using probe::json;

namespace {

std::string take_log() {
    const size_t n = ps_log_take(nullptr, 0);
    std::string s(n + 1, '\0');
    ps_log_take(s.data(), n + 1);
    s.resize(n);
    return s;
}

json cells_state(const llama_kv_cells & c) {
    const uint32_t n = c.size();
    json pos = json::array(), shift = json::array(), ext = json::array(), seq = json::array();
    for (uint32_t i = 0; i < n; i++) {
        if (c.is_empty(i)) {
            pos.push_back(-1);
            shift.push_back(0);
            ext.push_back(nullptr);
            seq.push_back(json::array());
            continue;
        }
        pos.push_back(c.pos_get(i));
        shift.push_back(c.get_shift(i));
        const auto & e = c.ext_get(i);
        ext.push_back({e.x, e.y, e.tok});
        json s = json::array();
        for (int k = 0; k < LLAMA_MAX_SEQ; k++) {
            if (c.seq_has(i, k)) {
                s.push_back(k);
            }
        }
        seq.push_back(std::move(s));
    }
    json seq_pos = json::array();  // [seq, min, max, [[pos, cell], ...]] for non-empty seqs
    for (int s = 0; s < LLAMA_MAX_SEQ; s++) {
        const auto & sp = c.seq_pos_get(s);
        if (sp.empty()) {
            continue;
        }
        json pairs = json::array();
        for (const auto & pc : sp) {
            pairs.push_back({pc.first, pc.second});
        }
        seq_pos.push_back({s, c.seq_pos_min(s), c.seq_pos_max(s), std::move(pairs)});
    }
    return {
        {"size", n}, {"used", c.get_used()}, {"used_min", c.used_min()}, {"used_max_p1", c.used_max_p1()},
        {"has_shift", c.get_has_shift()}, {"pos", pos}, {"shift", shift}, {"ext", ext}, {"seq", seq},
        {"seq_pos", seq_pos},
    };
}

std::vector<uint32_t> idxs_of(const json & j) {
    return j.get<std::vector<uint32_t>>();
}

json run_cells(const json & prog) {
    llama_kv_cells c;
    c.resize(prog.at("size").get<uint32_t>());
    std::map<std::string, llama_kv_cells> slots;
    const bool dump_all = prog.value("dump_every_step", true);
    json steps = json::array();
    for (const auto & op : prog.at("ops")) {
        const std::string name = op.at(0).get<std::string>();
        json r = nullptr;
        if (name == "resize") {
            c.resize(op.at(1).get<uint32_t>());
        } else if (name == "reset") {
            c.reset();
        } else if (name == "reset_shift") {
            c.reset_shift();
        } else if (name == "rm") {
            c.rm(op.at(1).get<uint32_t>());
        } else if (name == "seq_rm") {
            r = c.seq_rm(op.at(1).get<uint32_t>(), op.at(2).get<llama_seq_id>());
        } else if (name == "seq_keep") {
            r = c.seq_keep(op.at(1).get<uint32_t>(), op.at(2).get<llama_seq_id>());
        } else if (name == "seq_add") {
            c.seq_add(op.at(1).get<uint32_t>(), op.at(2).get<llama_seq_id>());
        } else if (name == "pos_set") {
            c.pos_set(op.at(1).get<uint32_t>(), op.at(2).get<llama_pos>());
        } else if (name == "ext_set") {
            llama_kv_cell_ext e;
            e.x = op.at(2).get<llama_pos>();
            e.y = op.at(3).get<llama_pos>();
            e.tok = op.at(4).get<llama_token>();
            c.ext_set(op.at(1).get<uint32_t>(), e);
        } else if (name == "pos_add") {
            r = c.pos_add(op.at(1).get<uint32_t>(), op.at(2).get<llama_pos>());
        } else if (name == "pos_div") {
            c.pos_div(op.at(1).get<uint32_t>(), op.at(2).get<int>());
        } else if (name == "cp") {
            slots[op.at(3).get<std::string>()] = c.cp(op.at(1).get<uint32_t>(), op.at(2).get<uint32_t>());
        } else if (name == "cp_idxs") {
            slots[op.at(2).get<std::string>()] = c.cp(idxs_of(op.at(1)));
        } else if (name == "set") {
            c.set(op.at(1).get<uint32_t>(), slots.at(op.at(2).get<std::string>()));
        } else if (name == "set_idxs") {
            c.set(idxs_of(op.at(1)), slots.at(op.at(2).get<std::string>()));
        } else if (name == "tok_le") {
            r = c.seq_pos_tok_le(op.at(1).get<llama_seq_id>(), op.at(2).get<llama_pos>());
        } else if (name == "seq_count") {
            r = c.seq_count(op.at(1).get<uint32_t>());
        } else if (name == "pos_in") {
            r = c.pos_in(op.at(1).get<uint32_t>(), op.at(2).get<llama_pos>(), op.at(3).get<llama_pos>());
        } else {
            throw std::invalid_argument("unknown kv_cells op: " + name);
        }
        json step = {{"result", r}};
        if (dump_all) {
            step["state"] = cells_state(c);
        }
        steps.push_back(std::move(step));
    }
    return {{"steps", std::move(steps)}, {"final", cells_state(c)}};
}

}  // namespace

extern "C" int ps_kv_cells_run(const char * program_json, char ** out_json) {
    return probe::run_json(program_json, out_json, [](const json & j) { return run_cells(j); });
}

// llama_hparams::is_masked_swa (src/llama-hparams.h) over a grid of positions: out[i*n1 + j]
// for p0 = p0s[i], p1 = p1s[j] (positions >= 0; n_swa > 0 for the chunked type)
extern "C" void ps_swa_is_masked(uint32_t n_swa, int swa_type, const int32_t * p0s, int n0,
                                 const int32_t * p1s, int n1, uint8_t * out) {
    for (int i = 0; i < n0; i++) {
        for (int j = 0; j < n1; j++) {
            out[(size_t) i * n1 + j] = llama_hparams::is_masked_swa(n_swa, (llama_swa_type) swa_type, p0s[i], p1s[j]);
        }
    }
}

// src/llama-memory.cpp llama_memory_status_combine / llama_memory_status_is_fail
extern "C" int ps_memory_status_combine(int s0, int s1) {
    return (int) llama_memory_status_combine((llama_memory_status) s0, (llama_memory_status) s1);
}

extern "C" int ps_memory_status_is_fail(int s) {
    return llama_memory_status_is_fail((llama_memory_status) s);
}

// ---------------------------------------------------------------------------------------------
// llama_kv_cache without a model file: a cache with no layers (so no tensors), driven through
// its public methods. A program of decodes (llama_batch -> llama_batch_allocr::init -> the
// splits of init_batch -> prepare -> apply_ubatch + get_n_kv + set_input_kq_mask per ubatch)
// and sequence operations; the cells of every stream are dumped after each step.

namespace {

// llama_model is abstract; the cache only keeps a reference to it (offload = false)
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

json kv_state(const llama_kv_cache & kv, uint32_t n_seq_max) {
    json streams = json::array();
    for (uint32_t s = 0; s < kv.get_n_stream(); s++) {
        streams.push_back(cells_state(kv.get_cells((llama_seq_id) s)));
    }
    json seq_pos = json::array();
    for (uint32_t s = 0; s < n_seq_max; s++) {
        seq_pos.push_back({kv.seq_pos_min(s), kv.seq_pos_max(s)});
    }
    return {{"streams", streams}, {"seq_pos", seq_pos}, {"has_shift", kv.get_has_shift()}};
}

json kv_decode(llama_kv_cache & kv, const json & op, const json & cfg) {
    const uint32_t n_seq_max = cfg.at("n_seq_max").get<uint32_t>();
    llama_batch_ext ext(4096, 2, 2, n_seq_max, &kv, cfg.value("n_vocab", 32000), 1);
    const probe::legacy_batch batch(op.at(1));
    llama_batch_compat::init(ext, batch.lb, 0);

    json res;
    llama_vocab vocab;
    llama_batch_allocr balloc(1);
    take_log();
    const bool ok = balloc.init(ext, vocab, false);
    res["init"] = ok;
    res["log"] = probe::str(take_log());
    if (!ok) {
        return res;
    }
    // llama_kv_cache::init_batch: the splits, then prepare
    const uint32_t n_ubatch = op.at(2).get<uint32_t>();
    balloc.split_reset();
    std::vector<llama_ubatch> ubatches;
    while (true) {
        auto ub = kv.get_n_stream() == 1 ? balloc.split_simple(n_ubatch) : balloc.split_equal(n_ubatch, true, 0);
        if (ub.n_tokens == 0) {
            break;
        }
        ubatches.push_back(std::move(ub));
    }
    res["split_log"] = probe::str(take_log());
    if (balloc.get_n_used() < balloc.get_n_tokens()) {
        res["status"] = "failed_prepare";
        return res;
    }
    auto sinfos = kv.prepare(ubatches);
    res["prepare_log"] = probe::str(take_log());
    if (sinfos.empty()) {
        res["status"] = "failed_prepare";
        return res;
    }
    res["status"] = "success";
    json ubs = json::array();
    const bool causal = cfg.value("causal", true);
    const bool f16 = cfg.value("f16", false);
    for (size_t k = 0; k < ubatches.size(); k++) {
        const auto & ub = ubatches[k];
        const auto & si = sinfos[k];
        kv.apply_ubatch(si, ub);
        const uint32_t n_kv = kv.get_n_kv(si);
        json u;
        u["strm"] = std::vector<int>(si.strm.begin(), si.strm.end());
        json idxs = json::array();
        for (const auto & v : si.idxs) {
            idxs.push_back(v);
        }
        u["idxs"] = std::move(idxs);
        u["n_kv"] = n_kv;
        // the KQ mask of this ubatch: [n_kv, n_tokens/n_stream, 1, n_stream]
        const int64_t ns = (int64_t) si.n_stream();
        ggml_init_params ip = { ggml_tensor_overhead() * 2, nullptr, true };
        ggml_context * ctx = ggml_init(ip);
        ggml_tensor * dst = ggml_new_tensor_4d(ctx, f16 ? GGML_TYPE_F16 : GGML_TYPE_F32, n_kv, ub.n_tokens / ns, 1, ns);
        ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(ctx, ggml_backend_cpu_buffer_type());
        kv.set_input_kq_mask(dst, &ub, causal);
        u["mask"] = probe::hex(dst->data, ggml_nbytes(dst));
        ggml_backend_buffer_free(buf);
        ggml_free(ctx);
        u["log"] = probe::str(take_log());
        ubs.push_back(std::move(u));
    }
    res["ubatches"] = std::move(ubs);
    return res;
}

json run_kv(const json & spec) {
    const json & cfg = spec.at("config");
    llama_model_params mp = llama_model_default_params();
    stub_model model(mp);
    llama_hparams hparams = {};
    hparams.swa_type = (llama_swa_type) cfg.value("swa_type", 0);
    hparams.n_swa = cfg.value("n_swa", 0u);
    hparams.use_alibi = cfg.value("alibi", false);
    const uint32_t n_seq_max = cfg.at("n_seq_max").get<uint32_t>();
    take_log();
    llama_kv_cache kv(model, hparams, GGML_TYPE_F16, GGML_TYPE_F16, false, false, cfg.value("unified", true),
                      cfg.at("kv_size").get<uint32_t>(), n_seq_max, 1, hparams.n_swa, hparams.swa_type,
                      nullptr, [](int32_t) { return false; }, nullptr, nullptr);
    take_log();
    json steps = json::array();
    for (const auto & op : spec.at("ops")) {
        const std::string name = op.at(0).get<std::string>();
        json r = nullptr;
        if (name == "decode") {
            r = kv_decode(kv, op, cfg);
        } else if (name == "seq_rm") {
            r = kv.seq_rm(op.at(1).get<llama_seq_id>(), op.at(2).get<llama_pos>(), op.at(3).get<llama_pos>());
        } else if (name == "seq_cp") {
            kv.seq_cp(op.at(1).get<llama_seq_id>(), op.at(2).get<llama_seq_id>(), op.at(3).get<llama_pos>(),
                      op.at(4).get<llama_pos>());
        } else if (name == "seq_keep") {
            kv.seq_keep(op.at(1).get<llama_seq_id>());
        } else if (name == "seq_add") {
            kv.seq_add(op.at(1).get<llama_seq_id>(), op.at(2).get<llama_pos>(), op.at(3).get<llama_pos>(),
                       op.at(4).get<llama_pos>());
        } else if (name == "seq_div") {
            kv.seq_div(op.at(1).get<llama_seq_id>(), op.at(2).get<llama_pos>(), op.at(3).get<llama_pos>(),
                       op.at(4).get<int>());
        } else if (name == "clear") {
            kv.clear(false);
        } else {
            throw std::invalid_argument("unknown kv op: " + name);
        }
        steps.push_back({{"result", r}, {"state", kv_state(kv, n_seq_max)}});
    }
    return {{"steps", std::move(steps)}};
}

}  // namespace

extern "C" int ps_kv_run(const char * spec_json, char ** out_json) {
    return probe::run_json(spec_json, out_json, [](const json & j) { return run_kv(j); });
}

// ---------------------------------------------------------------------------------------------
// bench: a unified cache of kv_size cells holding n_fill tokens of sequence 0; each step decodes
// n_tokens more tokens of sequence 0 (allocator init, split_simple, prepare, apply_ubatch,
// get_n_kv and, if mask != 0, the F32 KQ mask), then removes them again.

namespace {

struct kv_bench {
    stub_model model;
    llama_hparams hparams = {};
    std::unique_ptr<llama_kv_cache> kv;
    llama_vocab vocab;
    ggml_context * ctx = nullptr;
    ggml_backend_buffer_t buf = nullptr;
    std::vector<llama_token> tokens;

    explicit kv_bench(uint32_t kv_size) : model(llama_model_default_params()) {
        kv = std::make_unique<llama_kv_cache>(model, hparams, GGML_TYPE_F16, GGML_TYPE_F16, false, false, true,
                                              kv_size, 1, 1, 0, LLAMA_SWA_TYPE_NONE, nullptr,
                                              [](int32_t) { return false; }, nullptr, nullptr);
    }

    ~kv_bench() {
        if (buf) {
            ggml_backend_buffer_free(buf);
        }
        if (ctx) {
            ggml_free(ctx);
        }
    }

    // returns n_kv of the last ubatch, or -1 on failure
    int decode(uint32_t n_tokens, bool mask, bool keep) {
        tokens.assign(n_tokens, 1);
        llama_batch lb = {};
        lb.n_tokens = (int32_t) n_tokens;
        lb.token = tokens.data();
        llama_batch_ext ext(n_tokens, 2, 2, 1, kv.get(), 32000, 1);
        llama_batch_compat::init(ext, lb, 0);
        llama_batch_allocr balloc(1);
        if (!balloc.init(ext, vocab, false)) {
            return -1;
        }
        const llama_pos p0 = balloc.seq_pos_min(0);
        balloc.split_reset();
        std::vector<llama_ubatch> ubs;
        while (true) {
            auto ub = balloc.split_simple(n_tokens);
            if (ub.n_tokens == 0) {
                break;
            }
            ubs.push_back(std::move(ub));
        }
        auto sinfos = kv->prepare(ubs);
        if (sinfos.empty()) {
            return -1;
        }
        int n_kv = 0;
        for (size_t k = 0; k < ubs.size(); k++) {
            kv->apply_ubatch(sinfos[k], ubs[k]);
            n_kv = (int) kv->get_n_kv(sinfos[k]);
            if (mask) {
                if (!ctx || ggml_get_first_tensor(ctx)->ne[0] != n_kv || ggml_get_first_tensor(ctx)->ne[1] != ubs[k].n_tokens) {
                    if (buf) { ggml_backend_buffer_free(buf); }
                    if (ctx) { ggml_free(ctx); }
                    ggml_init_params ip = { ggml_tensor_overhead() * 2, nullptr, true };
                    ctx = ggml_init(ip);
                    ggml_new_tensor_4d(ctx, GGML_TYPE_F32, n_kv, ubs[k].n_tokens, 1, 1);
                    buf = ggml_backend_alloc_ctx_tensors_from_buft(ctx, ggml_backend_cpu_buffer_type());
                }
                kv->set_input_kq_mask(ggml_get_first_tensor(ctx), &ubs[k], true);
            }
        }
        if (!keep) {
            kv->seq_rm(0, p0, -1);
        }
        return n_kv;
    }
};

}  // namespace

extern "C" void * ps_kv_bench_new(uint32_t kv_size, uint32_t n_fill) {
    try {
        auto * b = new kv_bench(kv_size);
        if (n_fill > 0 && b->decode(n_fill, false, true) < 0) {
            delete b;
            return nullptr;
        }
        return b;
    } catch (const std::exception &) {
        return nullptr;
    }
}

extern "C" int ps_kv_bench_step(void * handle, uint32_t n_tokens, int mask) {
    return static_cast<kv_bench *>(handle)->decode(n_tokens, mask != 0, false);
}

extern "C" void ps_kv_bench_free(void * handle) {
    delete static_cast<kv_bench *>(handle);
}
