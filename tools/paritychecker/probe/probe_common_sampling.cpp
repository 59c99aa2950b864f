// The reference tools' sampler (common/sampling.cpp): common_sampler_init builds the chain from a
// common_params_sampling, common_sampler_sample picks a token from a context's logits and
// common_sampler_accept feeds the pick back, as llama-cli / llama-server do.
//
// common_sampler_sample reads the logits of a llama_context, so a "host" is a model with a
// context that has decoded one token: its output row is then overwritten with the caller's
// logits before each sample (llama_get_logits_ith returns the context's own buffer).
#include "probe.h"
#include "probe_json.h"
#include "probe_params.h"

#include "common.h"
#include "llama.h"
#include "log.h"
#include "sampling.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

using probe::json;

namespace {

struct host {
    llama_model *   model = nullptr;
    llama_context * ctx   = nullptr;
    int32_t         n_vocab = 0;
};

// a float given as a JSON number, or as a string strtof reads ("inf", "-inf", "nan": JSON has none)
float num(const json & v) {
    return v.is_string() ? std::strtof(v.get<std::string>().c_str(), nullptr) : v.get<float>();
}

// {"type": "word"|"pattern"|"pattern_full"|"token", "value": str, "token": int}
common_grammar_trigger trigger_from_json(const json & t) {
    static const std::pair<const char *, common_grammar_trigger_type> types[] = {
        {"word", COMMON_GRAMMAR_TRIGGER_TYPE_WORD},
        {"pattern", COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN},
        {"pattern_full", COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL},
        {"token", COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN},
    };
    const std::string name = t.at("type").get<std::string>();
    common_grammar_trigger trig;
    auto it = std::find_if(std::begin(types), std::end(types), [&](const auto & e) { return name == e.first; });
    if (it == std::end(types)) throw std::invalid_argument("unknown grammar trigger type: " + name);
    trig.type = it->second;
    trig.value = t.value("value", std::string());
    trig.token = t.value("token", (llama_token) LLAMA_TOKEN_NULL);
    return trig;
}

// common_params_sampling from JSON: every field named in the request overrides the default.
common_params_sampling params_from_json(const json & j) {
    common_params_sampling p;
    auto f = [&](const char * key, float & dst) { if (j.contains(key)) dst = num(j.at(key)); };
    auto i = [&](const char * key, int32_t & dst) { if (j.contains(key)) dst = j.at(key).get<int32_t>(); };
    if (j.contains("seed")) p.seed = j.at("seed").get<uint32_t>();
    i("n_prev", p.n_prev);
    i("min_keep", p.min_keep);
    i("top_k", p.top_k);
    f("top_p", p.top_p);
    f("min_p", p.min_p);
    f("xtc_probability", p.xtc_probability);
    f("xtc_threshold", p.xtc_threshold);
    f("typ_p", p.typ_p);
    f("temp", p.temp);
    f("dynatemp_range", p.dynatemp_range);
    f("dynatemp_exponent", p.dynatemp_exponent);
    i("penalty_last_n", p.penalty_last_n);
    f("penalty_repeat", p.penalty_repeat);
    f("penalty_freq", p.penalty_freq);
    f("penalty_present", p.penalty_present);
    f("dry_multiplier", p.dry_multiplier);
    f("dry_base", p.dry_base);
    i("dry_allowed_length", p.dry_allowed_length);
    i("dry_penalty_last_n", p.dry_penalty_last_n);
    f("adaptive_target", p.adaptive_target);
    f("adaptive_decay", p.adaptive_decay);
    i("mirostat", p.mirostat);
    f("top_n_sigma", p.top_n_sigma);
    f("mirostat_tau", p.mirostat_tau);
    f("mirostat_eta", p.mirostat_eta);
    if (j.contains("no_perf")) p.no_perf = j.at("no_perf").get<bool>();
    if (j.contains("dry_sequence_breakers")) {
        p.dry_sequence_breakers = j.at("dry_sequence_breakers").get<std::vector<std::string>>();
    }
    if (j.contains("samplers")) {
        // names as the tools take them (--samplers), resolved by the reference's own parser
        p.samplers = common_sampler_types_from_names(j.at("samplers").get<std::vector<std::string>>());
    }
    if (j.contains("logit_bias")) {
        p.logit_bias.clear();
        for (const auto & e : j.at("logit_bias")) {
            p.logit_bias.push_back({e.at(0).get<llama_token>(), num(e.at(1))});
        }
    }
    if (j.contains("grammar")) {
        // a user grammar (--grammar / the server's "grammar" field): the type that is never
        // prefilled with a generation prompt
        p.grammar = common_grammar(COMMON_GRAMMAR_TYPE_USER, j.at("grammar").get<std::string>());
    }
    if (j.contains("grammar_lazy")) p.grammar_lazy = j.at("grammar_lazy").get<bool>();
    if (j.contains("grammar_triggers")) {
        for (const auto & t : j.at("grammar_triggers")) {
            p.grammar_triggers.push_back(trigger_from_json(t));
        }
    }
    return p;
}

}  // namespace

// the one sampling-params reader, shared through probe_params.h (probe_generate.cpp)
common_params_sampling probe::sampling_params_from_json(const json & j) {
    return params_from_json(j);
}

extern "C" {

void * ps_csmpl_host_new(const char * model_path, char ** out_json) {
    json res;
    host * h = new host();
    try {
        llama_backend_init();
        llama_model_params mp = llama_model_default_params();
        mp.n_gpu_layers = 0;
        mp.use_extra_bufts = false;
        h->model = llama_model_load_from_file(model_path, mp);
        if (!h->model) throw std::runtime_error("model load failed");
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = 16;
        cp.n_batch = 1;
        cp.n_ubatch = 1;
        cp.n_seq_max = 1;
        cp.n_threads = 1;
        cp.n_threads_batch = 1;
        cp.no_perf = true;
        h->ctx = llama_init_from_model(h->model, cp);
        if (!h->ctx) throw std::runtime_error("context init failed");
        const llama_vocab * vocab = llama_model_get_vocab(h->model);
        h->n_vocab = llama_vocab_n_tokens(vocab);
        llama_token tok = llama_vocab_bos(vocab);
        if (tok < 0) tok = 0;
        if (llama_decode(h->ctx, llama_batch_get_one(&tok, 1)) != 0) throw std::runtime_error("decode failed");
        res["n_vocab"] = h->n_vocab;
    } catch (const std::exception & e) {
        if (h->ctx) llama_free(h->ctx);
        if (h->model) llama_model_free(h->model);
        delete h;
        h = nullptr;
        res = {{"exception", e.what()}};
    }
    if (out_json) *out_json = probe::dup(res);
    return h;
}

void ps_csmpl_host_free(void * handle) {
    auto * h = static_cast<host *>(handle);
    if (!h) return;
    llama_free(h->ctx);
    llama_model_free(h->model);
    delete h;
}

// common_sampler_init(model, params). NULL when it threw; *out_json = {"exception": what(),
// "type": "invalid_argument" | "out_of_range" | "runtime_error" | "exception"} then, else {}.
void * ps_csmpl_new(void * handle, const char * params_json, char ** out_json) {
    auto * h = static_cast<host *>(handle);
    json res = json::object();
    common_sampler * s = nullptr;
    const int verbosity = common_log_get_verbosity_thold();
    common_log_set_verbosity_thold(-1);
    try {
        common_params_sampling p = params_from_json(json::parse(params_json));
        s = common_sampler_init(h->model, p);
    } catch (const std::invalid_argument & e) {  // its own argument checks
        res = {{"exception", e.what()}, {"type", "invalid_argument"}};
    } catch (const std::out_of_range & e) {  // e.g. a DRY breaker the tokenizer cannot encode
        res = {{"exception", e.what()}, {"type", "out_of_range"}};
    } catch (const std::runtime_error & e) {
        res = {{"exception", e.what()}, {"type", "runtime_error"}};
    } catch (const std::exception & e) {
        res = {{"exception", e.what()}, {"type", "exception"}};
    }
    common_log_set_verbosity_thold(verbosity);
    if (out_json) *out_json = probe::dup(res);
    return s;
}

void ps_csmpl_free(void * s) { common_sampler_free(static_cast<common_sampler *>(s)); }

void * ps_csmpl_clone(void * s) { return common_sampler_clone(static_cast<common_sampler *>(s)); }

void ps_csmpl_reset(void * s) { common_sampler_reset(static_cast<common_sampler *>(s)); }

// the chain common_sampler_init built (owned by the common_sampler)
void * ps_csmpl_chain(void * s) { return common_sampler_get(static_cast<common_sampler *>(s)); }

uint32_t ps_csmpl_seed(void * s) { return common_sampler_get_seed(static_cast<common_sampler *>(s)); }

void ps_csmpl_accept(void * s, int32_t token, int is_generated) {
    common_sampler_accept(static_cast<common_sampler *>(s), token, is_generated != 0);
}

// Write logits[0..n_vocab) into the host context's output row, then common_sampler_sample.
// *selected receives the candidate array's selection index after sampling (-1: none, in which
// case the returned token is LLAMA_TOKEN_NULL rather than whatever data[-1] held).
int32_t ps_csmpl_sample(void * s, void * handle, const float * logits, int64_t * selected) {
    auto * h = static_cast<host *>(handle);
    auto * gs = static_cast<common_sampler *>(s);
    float * row = llama_get_logits_ith(h->ctx, 0);
    memcpy(row, logits, sizeof(float) * (size_t) h->n_vocab);
    llama_token id = common_sampler_sample(gs, h->ctx, 0, false);
    const llama_token_data_array * cur = common_sampler_get_candidates(gs, false);
    *selected = cur->selected;
    return cur->selected < 0 ? LLAMA_TOKEN_NULL : id;
}

// The candidate array the last sample left (common_sampler_get_candidates without sorting):
// copies up to cap entries as (id, logit, p) triples; returns the size.
int64_t ps_csmpl_candidates(void * s, int32_t * ids, float * logits, float * p, int64_t cap, int * sorted) {
    const llama_token_data_array * cur = common_sampler_get_candidates(static_cast<common_sampler *>(s), false);
    const int64_t n = (int64_t) cur->size;
    for (int64_t i = 0; i < n && i < cap; i++) {
        ids[i] = cur->data[i].id;
        logits[i] = cur->data[i].logit;
        p[i] = cur->data[i].p;
    }
    *sorted = cur->sorted ? 1 : 0;
    return n;
}

}  // extern "C"
