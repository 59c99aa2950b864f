// A llama_batch (the old C API) built from JSON, owning its arrays; shared by the batch and
// KV probes.  Fields that are absent or null stay NULL, except: an absent "n_tokens" is the
// token count, and an absent (not null) "n_seq_id" is the length of each "seq_id" row.
#pragma once
#include "probe_json.h"

#include "llama.h"

#include <vector>

namespace probe {

struct legacy_batch {
    std::vector<llama_token> token;
    std::vector<float> embd;
    std::vector<llama_pos> pos;
    std::vector<int32_t> n_seq_id;
    std::vector<std::vector<llama_seq_id>> seq_ids;
    std::vector<llama_seq_id *> seq_id;
    std::vector<int8_t> logits;
    llama_batch lb = {};

    explicit legacy_batch(const json & j) {
        auto has = [&](const char * key) { return j.contains(key) && !j.at(key).is_null(); };
        if (has("token")) {
            token = j.at("token").get<std::vector<llama_token>>();
            lb.token = token.data();
        }
        lb.n_tokens = has("n_tokens") ? j.at("n_tokens").get<int32_t>() : (int32_t) token.size();
        if (has("embd")) {
            embd = j.at("embd").get<std::vector<float>>();
            lb.embd = embd.data();
        }
        if (has("pos")) {
            pos = j.at("pos").get<std::vector<llama_pos>>();
            lb.pos = pos.data();
        }
        const bool derive_n_seq_id = !j.contains("n_seq_id") && has("seq_id");
        if (has("seq_id")) {
            for (const auto & row : j.at("seq_id")) {
                auto r = row.get<std::vector<llama_seq_id>>();
                if (derive_n_seq_id) {
                    n_seq_id.push_back((int32_t) r.size());
                }
                r.push_back(0);  // never read past n_seq_id[i]; keeps data() valid for empty rows
                seq_ids.push_back(std::move(r));
            }
            for (auto & r : seq_ids) {
                seq_id.push_back(r.data());
            }
            seq_id.push_back(nullptr);
            lb.seq_id = seq_id.data();
        }
        if (has("n_seq_id")) {
            n_seq_id = j.at("n_seq_id").get<std::vector<int32_t>>();
        }
        if (has("n_seq_id") || derive_n_seq_id) {
            lb.n_seq_id = n_seq_id.data();
        }
        if (has("logits")) {
            logits = j.at("logits").get<std::vector<int8_t>>();
            lb.logits = logits.data();
        }
    }
};

}  // namespace probe
