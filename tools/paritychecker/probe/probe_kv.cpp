// KV cell metadata (src/llama-kv-cells.h, header-only): run a program of llama_kv_cells
// operations and dump the whole state after every step.
//
// The probe is built in Release, so the header's assert() preconditions are compiled out; the
// caller only sends operations whose preconditions hold (pyggml raises on the others).
#include "probe.h"
#include "probe_json.h"
#include "probe_stderr.h"
#include "probe_legacy_batch.h"
#include "probe_stub_model.h"
#include "probe_kv_state.h"

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
#include "llama-kv-cache-iswa.h"
#include "llama-memory-recurrent.h"
#include "llama-context.h"
#include "llama.h"
#include "gguf.h"

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using probe::json;

namespace {

using probe::take_log;

using probe::cell_seqs;
using probe::seq_pos_state;

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
        seq.push_back(cell_seqs(c, i));
    }
    json seq_pos = seq_pos_state(c);
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

using probe::stub_model;

using probe::cells_state_compact;

// Digest mode (spec "digest": true): instead of the JSON state dumps and hex masks, each step
// carries [n_words, crc32] of the state packed as int32 words, and each mask its [n_bytes, crc32].
// pyggml packs its state the same way (pyggml/parity/memory.py _cells_words), so long programs are
// compared cheaply; on a mismatch the caller reruns the program with the full dumps.
bool g_digest = false;

uint32_t crc32_of(const void * data, size_t n) {
    // CRC-32 (IEEE, reflected 0xEDB88320), the same function as Python's zlib.crc32
    static uint32_t table[256];
    static bool init = false;
    if (!init) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) {
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }
            table[i] = c;
        }
        init = true;
    }
    uint32_t c = 0xFFFFFFFFu;
    const auto * p = static_cast<const uint8_t *>(data);
    for (size_t i = 0; i < n; i++) {
        c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    }
    return c ^ 0xFFFFFFFFu;
}

json words_digest(const std::vector<int32_t> & w) {
    return json::array({(uint64_t) w.size(), crc32_of(w.data(), w.size() * sizeof(int32_t))});
}

json mask_out(const void * data, size_t n) {
    if (g_digest) {
        return json::array({(uint64_t) n, crc32_of(data, n)});
    }
    return probe::hex(data, n);
}

// a stream's cells as int32 words: [size, used, used_min, used_max_p1, has_shift, n_used,
// idx..., pos..., shift..., x..., y..., tok..., n_seq per cell..., the seqs of each cell...,
// n_present, seq..., min..., max..., n_pairs..., then each seq's (pos, cell) pairs as pos... cell...]
void cells_words(const llama_kv_cells & c, std::vector<int32_t> & w) {
    w.insert(w.end(), {(int32_t) c.size(), (int32_t) c.get_used(), (int32_t) c.used_min(),
                       (int32_t) c.used_max_p1(), (int32_t) c.get_has_shift()});
    std::vector<uint32_t> used;
    for (uint32_t i = 0; i < c.size(); i++) {
        if (!c.is_empty(i)) {
            used.push_back(i);
        }
    }
    w.push_back((int32_t) used.size());
    for (uint32_t i : used) { w.push_back((int32_t) i); }
    for (uint32_t i : used) { w.push_back(c.pos_get(i)); }
    for (uint32_t i : used) { w.push_back(c.get_shift(i)); }
    for (uint32_t i : used) { w.push_back(c.ext_get(i).x); }
    for (uint32_t i : used) { w.push_back(c.ext_get(i).y); }
    for (uint32_t i : used) { w.push_back(c.ext_get(i).tok); }
    for (uint32_t i : used) { w.push_back(c.seq_count(i)); }
    for (uint32_t i : used) {
        for (int k = 0; k < LLAMA_MAX_SEQ; k++) {
            if (c.seq_has(i, k)) {
                w.push_back(k);
            }
        }
    }
    std::vector<int> present;
    for (int s = 0; s < LLAMA_MAX_SEQ; s++) {
        if (!c.seq_pos_get(s).empty()) {
            present.push_back(s);
        }
    }
    w.push_back((int32_t) present.size());
    for (int s : present) { w.push_back(s); }
    for (int s : present) { w.push_back(c.seq_pos_min(s)); }
    for (int s : present) { w.push_back(c.seq_pos_max(s)); }
    for (int s : present) { w.push_back((int32_t) c.seq_pos_get(s).size()); }
    for (int s : present) {
        for (const auto & pc : c.seq_pos_get(s)) { w.push_back(pc.first); }
    }
    for (int s : present) {
        for (const auto & pc : c.seq_pos_get(s)) { w.push_back((int32_t) pc.second); }
    }
}

// a cache as words: each stream's cells, then (min, max) of every seq < n_seq_max, has_shift
void kv_words(const llama_kv_cache & kv, uint32_t n_seq_max, std::vector<int32_t> & w) {
    for (uint32_t s = 0; s < kv.get_n_stream(); s++) {
        cells_words(kv.get_cells((llama_seq_id) s), w);
    }
    for (uint32_t s = 0; s < n_seq_max; s++) {
        w.push_back(kv.seq_pos_min(s));
        w.push_back(kv.seq_pos_max(s));
    }
    w.push_back((int32_t) kv.get_has_shift());
}

json kv_state(const llama_kv_cache & kv, uint32_t n_seq_max) {
    if (g_digest) {
        std::vector<int32_t> w;
        kv_words(kv, n_seq_max, w);
        return words_digest(w);
    }
    json streams = json::array();
    for (uint32_t s = 0; s < kv.get_n_stream(); s++) {
        streams.push_back(cells_state_compact(kv.get_cells((llama_seq_id) s)));
    }
    json seq_pos = json::array();
    for (uint32_t s = 0; s < n_seq_max; s++) {
        seq_pos.push_back({kv.seq_pos_min(s), kv.seq_pos_max(s)});
    }
    return {{"streams", streams}, {"seq_pos", seq_pos}, {"has_shift", kv.get_has_shift()}};
}

// the batch of a decode op ([_, batch, n_ubatch, ...]) through llama_batch_allocr::init, as
// llama_decode starts; records "init" and its "log" in res.  Owns what the batch points into.
struct decode_batch {
    llama_batch_ext ext;
    const probe::legacy_batch batch;
    llama_vocab vocab;
    llama_batch_allocr balloc{1};
    bool ok = false;

    decode_batch(llama_memory_i & mem, const json & op, const json & cfg, json & res)
        : ext(4096, 2, 2, cfg.at("n_seq_max").get<uint32_t>(), &mem, cfg.value("n_vocab", 32000), 1),
          batch(op.at(1)) {
        llama_batch_compat::init(ext, batch.lb, 0);
        take_log();
        ok = balloc.init(ext, vocab, false);
        res["init"] = ok;
        res["log"] = probe::str(take_log());
    }
};

json kv_decode(llama_kv_cache & kv, const json & op, const json & cfg) {
    json res;
    decode_batch in(kv, op, cfg, res);
    if (!in.ok) {
        return res;
    }
    llama_batch_allocr & balloc = in.balloc;
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
        u["mask"] = mask_out(dst->data, ggml_nbytes(dst));
        ggml_backend_buffer_free(buf);
        ggml_free(ctx);
        u["log"] = probe::str(take_log());
        ubs.push_back(std::move(u));
    }
    res["ubatches"] = std::move(ubs);
    return res;
}

// A tiny real llama context (1-layer LLaMA built from metadata alone, zero weights): only
// passed as the `lctx` of the stub caches' update(), which needs a scheduler to exist (the
// stub caches have no layers and rope_type NONE, so no graph is built). Created once.
void zero_tensor(ggml_tensor * t, void *) {
    std::vector<uint8_t> z(ggml_nbytes(t), 0);
    ggml_backend_tensor_set(t, z.data(), 0, z.size());
}

llama_model * tiny_model_get(uint32_t n_ctx_train) {
    static std::map<uint32_t, llama_model *> models;
    auto it = models.find(n_ctx_train);
    if (it != models.end()) {
        return it->second;
    }
    gguf_context * g = gguf_init_empty();
    const uint32_t n_vocab = 16;
    gguf_set_val_str(g, "general.architecture", "llama");
    gguf_set_val_u32(g, "llama.vocab_size", n_vocab);
    gguf_set_val_u32(g, "llama.context_length", n_ctx_train);
    gguf_set_val_u32(g, "llama.embedding_length", 32);
    gguf_set_val_u32(g, "llama.block_count", 1);
    gguf_set_val_u32(g, "llama.feed_forward_length", 64);
    gguf_set_val_u32(g, "llama.attention.head_count", 2);
    gguf_set_val_u32(g, "llama.attention.head_count_kv", 2);
    gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_set_val_str(g, "tokenizer.ggml.model", "test");
    std::vector<std::string> toks;
    std::vector<const char *> tp;
    for (uint32_t i = 0; i < n_vocab; i++) {
        toks.push_back("tok_" + std::to_string(i));
    }
    for (auto & t : toks) {
        tp.push_back(t.c_str());
    }
    std::vector<float> scores(n_vocab, 0.0f);
    gguf_set_arr_str(g, "tokenizer.ggml.tokens", tp.data(), (int) tp.size());
    gguf_set_arr_data(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores.data(), scores.size());
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * m = llama_model_init_from_user(g, zero_tensor, nullptr, mp);
    gguf_free(g);
    if (!m) {
        throw std::runtime_error("failed to build the tiny model");
    }
    models[n_ctx_train] = m;
    return m;
}

llama_context * update_ctx() {
    static llama_context * ctx = nullptr;
    if (!ctx) {
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = 256;
        cp.n_batch = 32;
        cp.n_ubatch = 32;
        cp.n_threads = 1;
        cp.n_threads_batch = 1;
        ctx = llama_init_from_model(tiny_model_get(256), cp);
        if (!ctx) {
            throw std::runtime_error("failed to build the tiny context");
        }
        take_log();
    }
    return ctx;
}

const char * status_name(llama_memory_status s) {
    switch (s) {
        case LLAMA_MEMORY_STATUS_SUCCESS:        return "success";
        case LLAMA_MEMORY_STATUS_NO_UPDATE:      return "no_update";
        case LLAMA_MEMORY_STATUS_FAILED_PREPARE: return "failed_prepare";
        case LLAMA_MEMORY_STATUS_FAILED_COMPUTE: return "failed_compute";
    }
    return "?";
}

// llama_context::memory_update without the graph-result bookkeeping: init_update (which takes
// the pending stream copies out of the cache), then apply unless the status says otherwise
json mem_update(llama_memory_i & mem) {
    auto mctx = mem.init_update(update_ctx(), false);
    const auto st = mctx->get_status();
    json r = {{"status", status_name(st)}};
    if (st == LLAMA_MEMORY_STATUS_SUCCESS) {
        r["applied"] = mctx->apply();
    }
    take_log();
    return r;
}

json mask_hex(const llama_kv_cache_context & kctx, const llama_ubatch & ub, int64_t ns, bool causal, bool f16) {
    const uint32_t n_kv = kctx.get_n_kv();
    ggml_init_params ip = { ggml_tensor_overhead() * 2, nullptr, true };
    ggml_context * ctx = ggml_init(ip);
    ggml_tensor * dst = ggml_new_tensor_4d(ctx, f16 ? GGML_TYPE_F16 : GGML_TYPE_F32, n_kv, ub.n_tokens / ns, 1, ns);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(ctx, ggml_backend_cpu_buffer_type());
    kctx.set_input_kq_mask(dst, &ub, causal);
    json h = mask_out(dst->data, ggml_nbytes(dst));
    ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    return h;
}

// a decode through the memory's own init_batch / apply / next (the iSWA and recurrent paths)
template <typename F>
json mem_decode(llama_memory_i & mem, const json & op, const json & cfg, bool embd_all, F && per_ubatch) {
    json res;
    decode_batch in(mem, op, cfg, res);
    if (!in.ok) {
        return res;
    }
    llama_batch_allocr & balloc = in.balloc;
    auto mctx = mem.init_batch(balloc, op.at(2).get<uint32_t>(), embd_all);
    res["status"] = status_name(mctx->get_status());
    res["prepare_log"] = probe::str(take_log());
    if (mctx->get_status() != LLAMA_MEMORY_STATUS_SUCCESS) {
        return res;
    }
    json ubs = json::array();
    do {
        mctx->apply();
        json u = per_ubatch(*mctx);
        u["log"] = probe::str(take_log());
        ubs.push_back(std::move(u));
    } while (mctx->next());
    res["ubatches"] = std::move(ubs);
    return res;
}

json iswa_state(const llama_kv_cache_iswa & m, uint32_t n_seq_max) {
    if (g_digest) {
        std::vector<int32_t> w;
        kv_words(*m.get_base(), n_seq_max, w);
        kv_words(*m.get_swa(), n_seq_max, w);
        for (uint32_t s = 0; s < n_seq_max; s++) {
            w.push_back(m.seq_pos_min(s));
            w.push_back(m.seq_pos_max(s));
        }
        return words_digest(w);
    }
    json seq_pos = json::array();
    for (uint32_t s = 0; s < n_seq_max; s++) {
        seq_pos.push_back({m.seq_pos_min(s), m.seq_pos_max(s)});
    }
    return {{"base", kv_state(*m.get_base(), n_seq_max)}, {"swa", kv_state(*m.get_swa(), n_seq_max)},
            {"seq_pos", seq_pos}};
}

json rec_state(const llama_memory_recurrent & m, uint32_t n_seq_max) {
    json cells = json::array();
    for (uint32_t i = 0; i < m.size; i++) {
        const auto & c = m.cells[i];
        cells.push_back({c.pos, c.src, c.src0, c.tail, std::vector<int>(c.seq_id.begin(), c.seq_id.end())});
    }
    json seq_pos = json::array();
    for (uint32_t s = 0; s < n_seq_max; s++) {
        seq_pos.push_back({m.seq_pos_min(s), m.seq_pos_max(s)});
    }
    return {{"head", m.head}, {"size", m.size}, {"used", m.used}, {"n", m.n}, {"rs_z", m.rs_z},
            {"rs_idx", m.rs_idx}, {"cells", cells}, {"seq_pos", seq_pos}};
}

// sequence ops shared by every memory type (the llama_memory_i interface)
bool mem_seq_op(llama_memory_i & mem, const std::string & name, const json & op, json & r) {
    if (name == "seq_rm") {
        r = mem.seq_rm(op.at(1).get<llama_seq_id>(), op.at(2).get<llama_pos>(), op.at(3).get<llama_pos>());
    } else if (name == "seq_cp") {
        mem.seq_cp(op.at(1).get<llama_seq_id>(), op.at(2).get<llama_seq_id>(), op.at(3).get<llama_pos>(),
                   op.at(4).get<llama_pos>());
    } else if (name == "seq_keep") {
        mem.seq_keep(op.at(1).get<llama_seq_id>());
    } else if (name == "seq_add") {
        mem.seq_add(op.at(1).get<llama_seq_id>(), op.at(2).get<llama_pos>(), op.at(3).get<llama_pos>(),
                    op.at(4).get<llama_pos>());
    } else if (name == "seq_div") {
        mem.seq_div(op.at(1).get<llama_seq_id>(), op.at(2).get<llama_pos>(), op.at(3).get<llama_pos>(),
                    op.at(4).get<int>());
    } else if (name == "clear") {
        mem.clear(false);
    } else if (name == "update") {
        r = mem_update(mem);
    } else if (name == "can_shift") {
        r = mem.get_can_shift();
    } else {
        return false;
    }
    return true;
}

llama_hparams stub_hparams(const json & cfg) {
    llama_hparams hparams = {};
    hparams.swa_type = (llama_swa_type) cfg.value("swa_type", 0);
    hparams.n_swa = cfg.value("n_swa", 0u);
    hparams.use_alibi = cfg.value("alibi", false);
    hparams.rope_type = (llama_rope_type) cfg.value("rope_type", (int) LLAMA_ROPE_TYPE_NONE);
    return hparams;
}

json run_kv(const json & spec) {
    const json & cfg = spec.at("config");
    llama_model_params mp = llama_model_default_params();
    stub_model model(mp);
    llama_hparams hparams = stub_hparams(cfg);
    const uint32_t n_seq_max = cfg.at("n_seq_max").get<uint32_t>();
    const bool dump_all = spec.value("dump_every_step", true);
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
        } else if (!mem_seq_op(kv, name, op, r)) {
            throw std::invalid_argument("unknown kv op: " + name);
        }
        json step = {{"result", r}};
        if (dump_all) {
            step["state"] = kv_state(kv, n_seq_max);
        }
        steps.push_back(std::move(step));
    }
    return {{"steps", std::move(steps)}, {"final", kv_state(kv, n_seq_max)}};
}

// llama_kv_cache_iswa over a stub model (no layers): base + SWA caches sized by its constructor
json run_iswa(const json & spec) {
    const json & cfg = spec.at("config");
    llama_model_params mp = llama_model_default_params();
    stub_model model(mp);
    model.hparams = stub_hparams(cfg);
    const uint32_t n_seq_max = cfg.at("n_seq_max").get<uint32_t>();
    const bool unified = cfg.value("unified", true);
    take_log();
    llama_kv_cache_iswa mem(model, GGML_TYPE_F16, GGML_TYPE_F16, false, false, cfg.value("swa_full", false), unified,
                            cfg.at("kv_size").get<uint32_t>(), n_seq_max, cfg.at("n_ubatch").get<uint32_t>(), 1,
                            nullptr, nullptr, nullptr, nullptr);
    take_log();
    const bool causal = cfg.value("causal", true);
    const bool f16 = cfg.value("f16", false);
    json steps = json::array();
    for (const auto & op : spec.at("ops")) {
        const std::string name = op.at(0).get<std::string>();
        json r = nullptr;
        if (name == "decode") {
            r = mem_decode(mem, op, cfg, false, [&](llama_memory_context_i & c) {
                auto & ic = static_cast<llama_kv_cache_iswa_context &>(c);
                const auto & ub = ic.get_ubatch();
                const int64_t ns = unified ? 1 : ub.n_seqs_unq;
                return json{{"n_tokens", ub.n_tokens},
                            {"n_kv", {ic.get_base()->get_n_kv(), ic.get_swa()->get_n_kv()}},
                            {"mask", {mask_hex(*ic.get_base(), ub, ns, causal, f16),
                                      mask_hex(*ic.get_swa(), ub, ns, causal, f16)}}};
            });
        } else if (!mem_seq_op(mem, name, op, r)) {
            throw std::invalid_argument("unknown iswa op: " + name);
        }
        json step = {{"result", r}};
        step["state"] = iswa_state(mem, n_seq_max);
        steps.push_back(std::move(step));
    }
    return {{"sizes", {mem.get_base()->get_size(), mem.get_swa()->get_size()}}, {"steps", std::move(steps)}};
}

// llama_memory_recurrent over a stub model (no layers): only the cell metadata
json run_rec(const json & spec) {
    const json & cfg = spec.at("config");
    llama_model_params mp = llama_model_default_params();
    stub_model model(mp);
    const uint32_t n_seq_max = cfg.at("n_seq_max").get<uint32_t>();
    take_log();
    llama_memory_recurrent mem(model, GGML_TYPE_F32, GGML_TYPE_F32, false, cfg.at("mem_size").get<uint32_t>(),
                               n_seq_max, cfg.value("n_rs_seq", 0u), nullptr);
    take_log();
    json steps = json::array();
    for (const auto & op : spec.at("ops")) {
        const std::string name = op.at(0).get<std::string>();
        json r = nullptr;
        if (name == "decode") {
            r = mem_decode(mem, op, cfg, op.size() > 3 && op.at(3).get<bool>(), [&](llama_memory_context_i & c) {
                auto & rc = static_cast<llama_memory_recurrent_context &>(c);
                const auto & ub = rc.get_ubatch();
                return json{{"n_tokens", ub.n_tokens}, {"head", rc.get_head()}, {"n_rs", rc.get_n_rs()},
                            {"rs_z", rc.get_rs_z()}};
            });
        } else if (!mem_seq_op(mem, name, op, r)) {
            throw std::invalid_argument("unknown recurrent op: " + name);
        }
        json step = {{"result", r}, {"log", probe::str(take_log())}};
        step["state"] = rec_state(mem, n_seq_max);
        steps.push_back(std::move(step));
    }
    return {{"steps", std::move(steps)}};
}

// context sizing (llama_context's constructor) on the tiny real model: n_ctx, n_ctx_seq,
// n_batch, n_ubatch and the KV cache it created
json ctx_layout(const json & spec) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = spec.at("n_ctx").get<uint32_t>();
    cp.n_batch = spec.at("n_batch").get<uint32_t>();
    cp.n_ubatch = spec.at("n_ubatch").get<uint32_t>();
    cp.n_seq_max = spec.at("n_seq_max").get<uint32_t>();
    cp.kv_unified = spec.at("kv_unified").get<bool>();
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    llama_model * m = tiny_model_get(spec.at("n_ctx_train").get<uint32_t>());
    take_log();
    llama_context * ctx = llama_init_from_model(m, cp);
    take_log();
    if (!ctx) {
        return {{"ok", false}};
    }
    auto * kv = dynamic_cast<llama_kv_cache *>(llama_get_memory(ctx));
    json r = {{"ok", true}, {"n_ctx", llama_n_ctx(ctx)}, {"n_ctx_seq", llama_n_ctx_seq(ctx)},
              {"n_batch", llama_n_batch(ctx)}, {"n_ubatch", llama_n_ubatch(ctx)},
              {"kv_size", kv ? kv->get_size() : 0}, {"n_stream", kv ? kv->get_n_stream() : 0}};
    llama_free(ctx);
    return r;
}

json run_mem_kind(const json & spec);

json run_mem(const json & spec) {
    // "digest" applies to the program and, for a batch, to the programs inside it (each may
    // override it)
    const bool saved = g_digest;
    g_digest = spec.value("digest", g_digest);
    try {
        json r = run_mem_kind(spec);
        g_digest = saved;
        return r;
    } catch (...) {
        g_digest = saved;
        throw;
    }
}

json run_mem_kind(const json & spec) {
    const std::string kind = spec.value("kind", "kv");
    if (kind == "kv") {
        return run_kv(spec);
    }
    if (kind == "iswa") {
        return run_iswa(spec);
    }
    if (kind == "recurrent") {
        return run_rec(spec);
    }
    if (kind == "layout") {
        json out = json::array();
        for (const auto & c : spec.at("cases")) {
            out.push_back(ctx_layout(c));
        }
        return out;
    }
    if (kind == "batch") {
        // several programs in one call: one JSON back
        json out = json::array();
        for (const auto & p : spec.at("programs")) {
            out.push_back(run_mem(p));
        }
        return out;
    }
    throw std::invalid_argument("unknown memory kind: " + kind);
}

}  // namespace

extern "C" int ps_kv_run(const char * spec_json, char ** out_json) {
    return probe::run_json(spec_json, out_json, [](const json & j) { return run_mem(j); });
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
