// Shared helpers of the probe: the cell metadata of a llama_kv_cells (src/llama-kv-cells.h) as
// JSON, for the KV probe (probe_kv.cpp) and the decode probe (probe_decode.cpp).
#pragma once
#include "probe_json.h"

#include "llama-kv-cells.h"

namespace probe {

// the sequences of cell i, ascending
inline json cell_seqs(const llama_kv_cells & c, uint32_t i) {
    json s = json::array();
    for (int k = 0; k < LLAMA_MAX_SEQ; k++) {
        if (c.seq_has(i, k)) {
            s.push_back(k);
        }
    }
    return s;
}

// [seq, min, max, [[pos, cell], ...]] for the non-empty seqs
inline json seq_pos_state(const llama_kv_cells & c) {
    json seq_pos = json::array();
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
    return seq_pos;
}

// the cells of a cache stream, listing the used ones only ([i, pos, shift, x, y, tok, [seqs]])
inline json cells_state_compact(const llama_kv_cells & c) {
    json cells = json::array();
    for (uint32_t i = 0; i < c.size(); i++) {
        if (c.is_empty(i)) {
            continue;
        }
        const auto & e = c.ext_get(i);
        cells.push_back({i, c.pos_get(i), c.get_shift(i), e.x, e.y, e.tok, cell_seqs(c, i)});
    }
    json seq_pos = seq_pos_state(c);
    return {{"size", c.size()}, {"used", c.get_used()}, {"used_min", c.used_min()}, {"used_max_p1", c.used_max_p1()},
            {"has_shift", c.get_has_shift()}, {"cells", std::move(cells)}, {"seq_pos", std::move(seq_pos)}};
}

}  // namespace probe
