// KV cell metadata (src/llama-kv-cells.h, header-only): run a program of llama_kv_cells
// operations and dump the whole state after every step.
//
// The probe is built in Release, so the header's assert() preconditions are compiled out; the
// caller only sends operations whose preconditions hold (pyggml raises on the others).
#include "probe.h"
#include "probe_json.h"

#include "llama-hparams.h"
#include "llama-kv-cells.h"
#include "llama-memory.h"

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using probe::json;

namespace {

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
    *out_json = nullptr;
    try {
        *out_json = probe::dup(run_cells(json::parse(program_json)));
        return 0;
    } catch (const std::exception & e) {
        *out_json = probe::dup(json{{"exception", probe::str(e.what())}});
        return -1;
    }
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
