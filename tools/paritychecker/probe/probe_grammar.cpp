// GBNF grammars as src/llama-grammar.cpp sees them: the parser's rule table (or the error it
// prints), grammar creation (optionally with a model's vocab), char/token acceptance, the
// candidates filter, and the stacks as (rule id, element offset) pairs.
// No C++ exception crosses these functions; GGML_ASSERT/ABORT paths are for the caller to
// run in a subprocess (pyggml/reference/grammar.py does).
#include "probe.h"
#include "probe_json.h"
#include "probe_stderr.h"

#include "llama.h"
#include "llama-grammar.h"
#include "llama-vocab.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <vector>

using probe::json;

namespace {

json rules_json(const llama_grammar_rules & rules) {
    json out = json::array();
    for (const auto & rule : rules) {
        json r = json::array();
        for (const auto & e : rule) {
            r.push_back(json::array({(int) e.type, e.value}));
        }
        out.push_back(std::move(r));
    }
    return out;
}

// The stacks in one compact canonical form (Python builds the same bytes for pyggml's side):
// int32 little-endian words, per stack its length then (rule id, element offset) per element,
// bottom first; an element outside every rule is (-1, -1).  Hex, so large stack sets cost one
// JSON string rather than nested arrays.
std::string stacks_raw(const llama_grammar & g) {
    // rules sorted by the address of their elements: one binary search per element
    std::vector<std::pair<const llama_grammar_element *, int32_t>> starts;
    starts.reserve(g.rules.size());
    for (size_t r = 0; r < g.rules.size(); r++) {
        starts.emplace_back(g.rules[r].data(), (int32_t) r);
    }
    std::sort(starts.begin(), starts.end());
    std::vector<int32_t> words;
    for (const auto & stack : g.stacks) {
        words.push_back((int32_t) stack.size());
        for (const llama_grammar_element * p : stack) {
            int32_t rule = -1;
            int32_t off  = -1;
            auto it = std::upper_bound(starts.begin(), starts.end(), std::make_pair(p, INT32_MAX));
            if (it != starts.begin()) {
                --it;
                const auto & rv = g.rules[(size_t) it->second];
                if (p >= rv.data() && p < rv.data() + rv.size()) {
                    rule = it->second;
                    off  = (int32_t) (p - rv.data());
                }
            }
            words.push_back(rule);
            words.push_back(off);
        }
    }
    std::string bytes(words.size() * 4, '\0');
    for (size_t i = 0; i < words.size(); i++) {
        const uint32_t w = (uint32_t) words[i];
        for (int b = 0; b < 4; b++) {
            bytes[i * 4 + b] = (char) ((w >> (8 * b)) & 0xFF);
        }
    }
    return probe::hex(bytes.data(), bytes.size());
}

json state_json(const llama_grammar & g) {
    return {
        {"stacks_raw", stacks_raw(g)},
        {"partial", json::array({g.partial_utf8.value, g.partial_utf8.n_remain})},
        {"awaiting_trigger", g.awaiting_trigger},
        {"trigger_buffer", probe::str(g.trigger_buffer)},
    };
}

}  // namespace

extern "C" int ps_grammar_parse(const char * src, char ** out) {
    json j;
    int ok = 0;
    try {
        llama_grammar_parser parser;
        bool res = false;
        const std::string err = probe::capture_stderr([&] { res = parser.parse(src); });
        ok = res ? 1 : 0;
        json symbols = json::array();
        for (const auto & kv : parser.symbol_ids) {
            symbols.push_back(json::array({kv.first, kv.second}));
        }
        j["ok"] = res;
        j["symbols"] = std::move(symbols);
        j["rules"] = rules_json(parser.rules);
        j["stderr"] = probe::str(err);
    } catch (const std::exception & e) {
        j = {{"ok", false}, {"exception", probe::str(e.what(), strlen(e.what()))}};
        ok = -1;
    }
    *out = probe::dup(j);
    return ok;
}

extern "C" void * ps_grammar_init(void * model, const char * src, const char * root, int lazy,
                                  const char ** patterns, int n_patterns, const int32_t * tokens,
                                  int n_tokens, char ** out) {
    json j;
    llama_grammar * g = nullptr;
    try {
        const llama_vocab * vocab = model ? llama_model_get_vocab((const llama_model *) model) : nullptr;
        const std::string err = probe::capture_stderr([&] {
            g = llama_grammar_init_impl(vocab, src, root, lazy != 0, patterns, (size_t) n_patterns,
                                        tokens, (size_t) n_tokens);
        });
        j["ok"] = g != nullptr;
        j["stderr"] = probe::str(err);
        if (g) {
            j["rules"] = rules_json(g->rules);
            j["state"] = state_json(*g);
        }
    } catch (const std::exception & e) {
        j = {{"ok", false}, {"exception", probe::str(e.what(), strlen(e.what()))}};
        g = nullptr;
    }
    *out = probe::dup(j);
    return g;
}

extern "C" void ps_grammar_free(void * g) {
    llama_grammar_free_impl((llama_grammar *) g);
}

extern "C" void * ps_grammar_clone(void * g) {
    try {
        return llama_grammar_clone_impl(*(llama_grammar *) g);
    } catch (...) {
        return nullptr;
    }
}

extern "C" char * ps_grammar_state(void * g) {
    try {
        return probe::dup(state_json(*(llama_grammar *) g));
    } catch (...) {
        return nullptr;
    }
}

// kind: 0 = llama_grammar_accept_str(piece), 1 = llama_grammar_accept_token(token, piece),
// 2 = llama_grammar_accept_impl(token) (needs a vocab; aborts on EOG with no complete stack),
// 3 = llama_grammar_accept_str once per UTF-8 character of piece (for timing); kind | 16: no
// state in *out. Returns 1, or 0 when the reference threw (*out then holds the message).
extern "C" int ps_grammar_accept(void * gp, int kind, int32_t token, const char * piece, size_t len,
                                 char ** out) {
    auto & g = *(llama_grammar *) gp;
    json j;
    int ok = 1;
    try {
        const std::string p(piece ? piece : "", piece ? len : 0);
        if ((kind & 15) == 3) {
            for (size_t i = 0; i < p.size();) {
                size_t k = 1;
                while (i + k < p.size() && (static_cast<uint8_t>(p[i + k]) & 0xC0) == 0x80) {
                    k++;
                }
                llama_grammar_accept_str(g, p.substr(i, k));
                i += k;
            }
        } else if ((kind & 15) == 0) {
            llama_grammar_accept_str(g, p);
        } else if ((kind & 15) == 1) {
            llama_grammar_accept_token(g, token, p);
        } else {
            llama_grammar_accept_impl(g, token);
        }
    } catch (const std::exception & e) {
        ok = 0;
        j["error"] = probe::str(e.what(), strlen(e.what()));
    }
    if (!(kind & 16)) {
        j["state"] = state_json(g);
    }
    *out = probe::dup(j);
    return ok;
}

// llama_grammar_apply_impl over the given token ids (logits all 0): keep[i] = 0 where the
// reference sets -inf.  Needs a vocab.
extern "C" int ps_grammar_apply(void * gp, const int32_t * ids, size_t n, uint8_t * keep) {
    try {
        std::vector<llama_token_data> data(n);
        for (size_t i = 0; i < n; i++) {
            data[i] = {ids[i], 0.0f, 0.0f};
        }
        llama_token_data_array arr = {data.data(), n, -1, false};
        llama_grammar_apply_impl(*(llama_grammar *) gp, &arr);
        for (size_t i = 0; i < n; i++) {
            keep[i] = std::isinf(data[i].logit) ? 0 : 1;
        }
        return 1;
    } catch (...) {
        return 0;
    }
}

// Every token's cached piece (hex) and end-of-generation flag, as the grammar reads them.
extern "C" int ps_grammar_vocab_pieces(void * model, char ** out) {
    try {
        const llama_vocab * vocab = llama_model_get_vocab((const llama_model *) model);
        json pieces = json::array();
        json eog = json::array();
        for (int32_t t = 0; t < (int32_t) vocab->n_tokens(); t++) {
            pieces.push_back(probe::hex(vocab->token_to_piece(t).data(), vocab->token_to_piece(t).size()));
            eog.push_back(vocab->is_eog(t) ? 1 : 0);
        }
        *out = probe::dup({{"pieces", std::move(pieces)}, {"eog", std::move(eog)}});
        return 1;
    } catch (...) {
        *out = nullptr;
        return 0;
    }
}
