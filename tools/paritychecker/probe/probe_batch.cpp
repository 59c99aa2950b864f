// Batch allocator outcome and ubatch splits, as src/llama-batch.cpp computes them.
//
// The batch is built without a llama_context (the way tests/test-batch-alloc.cpp does it):
// a llama_batch_ext filled either by a list of builder operations (add_token, add_seq,
// set_token_id, ..., plus direct "pokes" of fields that the setters would refuse) or by the
// legacy llama_batch path (llama_batch_compat::init). The memory module is a stand-in that
// only answers seq_pos_min/seq_pos_max from a table of ranges.
//
// Input and output are JSON documents; C++ exceptions are turned into {"exception": ...}.
// Inputs that make the reference abort (an empty batch: GGML_ASSERT(n_tok > 0); n_keep_tail >=
// n_ubatch in split_equal) must be run in a subprocess by the caller.
#include "probe.h"
#include "probe_json.h"
#include "probe_stderr.h"
#include "probe_legacy_batch.h"

#include "llama.h"

#include "llama-batch.h"
#include "llama-memory.h"
#include "llama-vocab.h"

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using probe::json;

namespace {

// seq_id -> [pos_min, pos_max]; every other operation of the interface is unreachable here
struct range_memory : public llama_memory_i {
    std::map<llama_seq_id, std::pair<llama_pos, llama_pos>> ranges;

    [[noreturn]] static void unreachable() { throw std::logic_error("range_memory: not implemented"); }

    llama_memory_context_ptr init_batch(llama_batch_allocr &, uint32_t, bool) override { unreachable(); }
    llama_memory_context_ptr init_full() override { unreachable(); }
    llama_memory_context_ptr init_update(llama_context *, bool) override { unreachable(); }
    bool get_can_shift() const override { unreachable(); }
    void clear(bool) override { unreachable(); }
    bool seq_rm  (llama_seq_id, llama_pos, llama_pos) override { unreachable(); }
    void seq_cp  (llama_seq_id, llama_seq_id, llama_pos, llama_pos) override { unreachable(); }
    void seq_keep(llama_seq_id) override { unreachable(); }
    void seq_add (llama_seq_id, llama_pos, llama_pos, llama_pos) override { unreachable(); }
    void seq_div (llama_seq_id, llama_pos, llama_pos, int) override { unreachable(); }

    llama_pos seq_pos_min(llama_seq_id s) const override {
        auto it = ranges.find(s);
        return it == ranges.end() ? -1 : it->second.first;
    }
    llama_pos seq_pos_max(llama_seq_id s) const override {
        auto it = ranges.find(s);
        return it == ranges.end() ? -1 : it->second.second;
    }

    std::map<ggml_backend_buffer_type_t, size_t> memory_breakdown() const override { return {}; }
    void state_write(llama_io_write_i &, llama_seq_id, llama_state_seq_flags) const override { unreachable(); }
    void state_read (llama_io_read_i &,  llama_seq_id, llama_state_seq_flags) override { unreachable(); }
};

using probe::take_log;

std::vector<float> floats(const json & j) {
    std::vector<float> v;
    for (const auto & x : j) {
        v.push_back(x.get<float>());
    }
    return v;
}

// Builder operations on a llama_batch_ext; each returns what the reference returns.
json apply_op(llama_batch_ext & b, const json & op) {
    const std::string name = op.at(0).get<std::string>();
    if (name == "add") {
        return b.add_token(op.at(1).get<llama_seq_id>());
    }
    if (name == "add_seq") {
        return b.add_seq(op.at(1).get<int32_t>(), op.at(2).get<llama_seq_id>());
    }
    if (name == "set_id") {
        return b.set_token_id(op.at(1).get<int32_t>(), op.at(2).get<llama_token>());
    }
    if (name == "set_embd") {
        // ["set_embd", idx, n_rows, n_embd, [floats] | null]
        const std::vector<float> data = op.at(4).is_null() ? std::vector<float>() : floats(op.at(4));
        llama_embd e = { op.at(4).is_null() ? nullptr : data.data(), op.at(2).get<size_t>(), op.at(3).get<size_t>() };
        return b.set_token_embd(op.at(1).get<int32_t>(), e);
    }
    if (name == "set_pos") {
        if (op.at(2).is_null()) {
            return b.set_token_pos(op.at(1).get<int32_t>(), nullptr);
        }
        std::vector<llama_pos> p(GGML_MROPE_SECTIONS, 0);
        for (size_t k = 0; k < op.at(2).size() && k < p.size(); k++) {
            p[k] = op.at(2)[k].get<llama_pos>();
        }
        return b.set_token_pos(op.at(1).get<int32_t>(), p.data());
    }
    if (name == "set_output") {
        return b.set_output(op.at(1).get<int32_t>(), op.at(2).get<bool>());
    }
    // pokes: write a field directly (reaching the init() checks that the setters guard)
    if (name == "poke_id") {
        b.tokens.at(op.at(1).get<size_t>()).id = op.at(2).get<llama_token>();
        return nullptr;
    }
    if (name == "poke_seqs") {
        auto & t = b.tokens.at(op.at(1).get<size_t>());
        t.seq_ids.clear();
        for (const auto & s : op.at(2)) {
            t.seq_ids.insert(s.get<llama_seq_id>());
        }
        return nullptr;
    }
    throw std::invalid_argument("unknown batch op: " + name);
}

json ubatch_json(const llama_ubatch & ub, size_t n_embd) {
    json u;
    u["equal_seqs"]   = ub.equal_seqs();
    u["n_tokens"]     = ub.n_tokens;
    u["n_seq_tokens"] = ub.n_seq_tokens;
    u["n_seqs"]       = ub.n_seqs;
    u["n_seqs_unq"]   = ub.n_seqs_unq;
    u["n_pos"]        = ub.n_pos;
    if (ub.token) {
        u["token"] = std::vector<llama_token>(ub.token, ub.token + ub.n_tokens);
    } else {
        u["token"] = nullptr;
    }
    u["embd"] = ub.embd ? json(probe::hex(ub.embd, sizeof(float) * n_embd * ub.n_tokens)) : json(nullptr);
    u["pos"] = std::vector<llama_pos>(ub.pos, ub.pos + (size_t) ub.n_tokens * ub.n_pos);
    json seq_id = json::array();
    for (uint32_t i = 0; i < ub.n_tokens; i++) {
        seq_id.push_back(std::vector<llama_seq_id>(ub.seq_id[i], ub.seq_id[i] + ub.n_seq_id[i]));
    }
    u["seq_id"] = std::move(seq_id);
    u["seq_id_unq"] = std::vector<llama_seq_id>(ub.seq_id_unq, ub.seq_id_unq + ub.n_seqs_unq);
    json seq_idx = json::array();  // the entries of seq_idx[LLAMA_MAX_SEQ] that are not -1
    for (int s = 0; s < LLAMA_MAX_SEQ; s++) {
        if (ub.seq_idx[s] != -1) {
            seq_idx.push_back({s, ub.seq_idx[s]});
        }
    }
    u["seq_idx"] = std::move(seq_idx);
    u["output"] = std::vector<int>(ub.output, ub.output + ub.n_tokens);
    u["batch_idxs"] = ub.data ? json(ub.data->batch_idxs) : json(nullptr);
    return u;
}

json ext_json(const llama_batch_ext & b) {
    json toks = json::array();
    for (const auto & t : b.tokens) {
        std::vector<llama_seq_id> seqs(t.seq_ids.begin(), t.seq_ids.end());  // iteration order
        toks.push_back({
            {"id", t.id}, {"has_embd", t.has_embd}, {"embd_off", t.embd_off}, {"output", t.output},
            {"seq_ids", seqs}, {"pos", std::vector<llama_pos>(t.pos.begin(), t.pos.end())},
        });
    }
    return {{"tokens", toks}, {"n_embd", b.n_embd}, {"embd", probe::hex(b.embd.data(), b.embd.size() * sizeof(float))}};
}

json run(const json & spec) {
    range_memory mem;
    const bool has_mem = !spec.value("mem", json(nullptr)).is_null();
    if (has_mem) {
        for (const auto & r : spec.at("mem")) {
            mem.ranges[r.at(0).get<llama_seq_id>()] = { r.at(1).get<llama_pos>(), r.at(2).get<llama_pos>() };
        }
    }

    const uint32_t n_pos_per_embd = spec.value("n_pos_per_embd", 1u);
    llama_batch_ext b(
        spec.value("n_tokens_max", (size_t) 64),
        spec.value("n_embd_inp", (size_t) 2),
        spec.value("n_embd_inp_enc", spec.value("n_embd_inp", (size_t) 2)),
        spec.value("n_seq_max", 4),
        has_mem ? &mem : nullptr,
        spec.value("n_vocab", 0),
        n_pos_per_embd);

    json out;
    take_log();

    if (spec.contains("legacy")) {
        probe::legacy_batch lb(spec.at("legacy"));
        llama_batch_compat::init(b, lb.lb, spec.value("n_embd_row", (size_t) 0));
    } else {
        json results = json::array();
        for (const auto & op : spec.at("ops")) {
            results.push_back(apply_op(b, op));
        }
        out["ops"] = std::move(results);
        out["ops_log"] = probe::str(take_log());
    }
    out["ext"] = ext_json(b);

    llama_vocab vocab;
    llama_batch_allocr ba(n_pos_per_embd);
    const bool ok = ba.init(b, vocab, spec.value("output_all", false));
    out["init"] = ok;
    out["log"] = probe::str(take_log());
    if (!ok) {
        return out;
    }

    const llama_batch & batch = ba.get_batch();
    const size_t n_embd = b.n_embd > 0 ? b.n_embd : b.n_embd_inp;
    out["n_tokens"]  = ba.get_n_tokens();
    out["n_outputs"] = ba.get_n_outputs();
    json seq_pos = json::array();  // [seq, min, max] for each seq present in the batch
    for (int s = 0; s < b.n_seq_max && s < LLAMA_MAX_SEQ; s++) {
        if (ba.seq_pos_min(s) >= 0 || ba.seq_pos_max(s) >= 0) {
            seq_pos.push_back({s, ba.seq_pos_min(s), ba.seq_pos_max(s)});
        }
    }
    out["seq_pos"] = std::move(seq_pos);
    json seq_id = json::array();
    for (int32_t i = 0; i < batch.n_tokens; i++) {
        seq_id.push_back(std::vector<llama_seq_id>(batch.seq_id[i], batch.seq_id[i] + batch.n_seq_id[i]));
    }
    out["seq_id"] = std::move(seq_id);
    out["output"] = std::vector<int>(batch.logits, batch.logits + batch.n_tokens);

    json splits = json::array();
    for (const auto & plan : spec.value("splits", json::array())) {
        const std::string mode = plan.at("mode").get<std::string>();
        const uint32_t n_ubatch = plan.at("n_ubatch").get<uint32_t>();
        ba.split_reset();
        json ubs = json::array();
        while (true) {
            llama_ubatch ub;
            if (mode == "simple") {
                ub = ba.split_simple(n_ubatch);
            } else if (mode == "equal") {
                ub = ba.split_equal(n_ubatch, plan.value("sequential", false), plan.value("keep_tail", 0u));
            } else if (mode == "seq") {
                ub = ba.split_seq(n_ubatch);
            } else {
                throw std::invalid_argument("unknown split mode: " + mode);
            }
            if (ub.n_tokens == 0) {
                break;
            }
            ubs.push_back(ubatch_json(ub, n_embd));
        }
        splits.push_back({
            {"ubatches", std::move(ubs)}, {"n_used", ba.get_n_used()},
            {"out_ids", ba.get_out_ids()}, {"log", probe::str(take_log())},
        });
    }
    out["splits"] = std::move(splits);
    return out;
}

// A prepared ext batch for the bench: init + a full split, repeated.
struct bench_state {
    range_memory mem;
    std::unique_ptr<llama_batch_ext> b;
    llama_vocab vocab;
    std::unique_ptr<llama_batch_allocr> ba;
};

}  // namespace

extern "C" int ps_batch_run(const char * spec_json, char ** out_json) {
    return probe::run_json(spec_json, out_json, [](const json & j) { return run(j); });
}

extern "C" void * ps_batch_bench_new(const char * spec_json) {
    try {
        const json spec = json::parse(spec_json);
        auto st = new bench_state();
        const uint32_t n_pos_per_embd = spec.value("n_pos_per_embd", 1u);
        st->b = std::make_unique<llama_batch_ext>(
            spec.value("n_tokens_max", (size_t) 4096), spec.value("n_embd_inp", (size_t) 2),
            spec.value("n_embd_inp", (size_t) 2), spec.value("n_seq_max", 4), nullptr,
            spec.value("n_vocab", 0), n_pos_per_embd);
        probe::legacy_batch lb(spec.at("legacy"));
        llama_batch_compat::init(*st->b, lb.lb, 0);
        st->ba = std::make_unique<llama_batch_allocr>(n_pos_per_embd);
        return st;
    } catch (const std::exception &) {
        return nullptr;
    }
}

// init + split the whole batch (mode 0 simple, 1 equal, 2 equal sequential, 3 seq); returns the
// number of ubatches, or -1 when init fails
extern "C" int ps_batch_bench_run(void * handle, int mode, uint32_t n_ubatch) {
    auto * st = static_cast<bench_state *>(handle);
    if (!st->ba->init(*st->b, st->vocab, false)) {
        return -1;
    }
    int n = 0;
    while (true) {
        llama_ubatch ub;
        switch (mode) {
            case 0:  ub = st->ba->split_simple(n_ubatch); break;
            case 1:  ub = st->ba->split_equal(n_ubatch, false, 0); break;
            case 2:  ub = st->ba->split_equal(n_ubatch, true, 0); break;
            default: ub = st->ba->split_seq(n_ubatch); break;
        }
        if (ub.n_tokens == 0) {
            break;
        }
        n++;
    }
    return n;
}

extern "C" void ps_batch_bench_free(void * handle) {
    delete static_cast<bench_state *>(handle);
}
