// Decode through the reference's own llama_decode, in process (pyggml/reference/decode.py):
// load a model (where every weight was placed), make a context, decode llama_batch'es, read
// logits, the KV cells, the last graph the context used and its perf counters.
//
// Private members of llama_context / llama_kv_cache (the active graph result, n_outputs,
// v_heads) are read through explicit template instantiation, which C++ allows to name private
// members ([temp.spec]/6); no `#define private public`, so the class layouts stay untouched.
#include "probe.h"
#include "probe_json.h"
#include "probe_kv_state.h"
#include "probe_params.h"
#include "probe_stderr.h"

#include "ggml-backend.h"
#include "ggml-impl.h"
#include "ggml.h"
#include "llama-context.h"
#include "llama-graph.h"
#include "llama-kv-cache-iswa.h"
#include "llama-kv-cache.h"
#include "llama-model.h"
#include "llama.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

using probe::json;

namespace {

// ---- private member access -----------------------------------------------------------------

template <typename Tag, typename Tag::type M>
struct steal {
    friend typename Tag::type member(Tag) { return M; }
};

struct ctx_gf_active {
    using type = llm_graph_result * llama_context::*;
    friend type member(ctx_gf_active);
};
template struct steal<ctx_gf_active, &llama_context::gf_res_prev_active>;

struct ctx_n_outputs {
    using type = uint32_t llama_context::*;
    friend type member(ctx_n_outputs);
};
template struct steal<ctx_n_outputs, &llama_context::n_outputs>;

struct kv_heads {
    using type = std::vector<uint32_t> llama_kv_cache::*;
    friend type member(kv_heads);
};
template struct steal<kv_heads, &llama_kv_cache::v_heads>;

// ---- helpers -------------------------------------------------------------------------------

// JSON to C: log text and tensor names are not guaranteed UTF-8, so invalid bytes are replaced
// (probe::dup would throw on them)
char * dup_lenient(const json & j) {
    const std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
    char * out = static_cast<char *>(malloc(s.size() + 1));
    memcpy(out, s.c_str(), s.size() + 1);
    return out;
}

void put(char ** out, const json & j) {
    if (out) {
        *out = dup_lenient(j);
    }
}

// the reference's error line in a captured log: the first line naming an error, else the last
std::string error_line(const std::string & log) {
    std::string last;
    size_t start = 0;
    while (start < log.size()) {
        size_t end = log.find('\n', start);
        if (end == std::string::npos) {
            end = log.size();
        }
        const std::string line = log.substr(start, end - start);
        if (line.find("error") != std::string::npos) {
            return line;
        }
        if (!line.empty()) {
            last = line;
        }
        start = end + 1;
    }
    return last;
}

json failure(const std::string & log) {
    return {{"ok", false}, {"error", error_line(log)}, {"log", log}};
}

ggml_type type_from_name(const std::string & name) {
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        const char * n = ggml_type_name((ggml_type) t);
        if (n && name == n) {
            return (ggml_type) t;
        }
    }
    throw std::invalid_argument("unknown ggml type: " + name);
}

const char * buft_name(const ggml_backend_buffer_t buf) {
    return buf ? ggml_backend_buft_name(ggml_backend_buffer_get_type(buf)) : nullptr;
}

// ---- model ---------------------------------------------------------------------------------

llama_model_params model_params(const json & p) {
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    for (const auto & [key, v] : p.items()) {
        if (key == "use_extra_bufts") {
            mp.use_extra_bufts = v.get<bool>();
        } else if (key == "use_mmap") {
            mp.load_mode = v.get<bool>() ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
        } else if (key == "n_gpu_layers") {
            mp.n_gpu_layers = v.get<int32_t>();
        } else if (key == "check_tensors") {
            mp.check_tensors = v.get<bool>();
        } else {
            throw std::invalid_argument("unknown model param: " + key);
        }
    }
    return mp;
}

// Every tensor of the model's contexts (tensors_by_name walks them all). A tied output whose
// buffer type differs from token_embd's is a second tensor of the same name
// ("token_embd.weight", created with TENSOR_DUPLICATED in the output's buffer-type context);
// where both land in one buffer type the loader returns the same tensor and it appears once.
json placement(const llama_model & m) {
    json tensors = json::array();
    json buffers = json::array();
    std::vector<ggml_backend_buffer_t> seen;
    for (const auto & [name, t] : m.tensors_by_name) {
        tensors.push_back({{"name", name}, {"buft", buft_name(t->buffer)}, {"nbytes", ggml_nbytes(t)},
                           {"type", ggml_type_name(t->type)},
                           {"ne", {t->ne[0], t->ne[1], t->ne[2], t->ne[3]}}});
        if (t->buffer && std::find(seen.begin(), seen.end(), t->buffer) == seen.end()) {
            seen.push_back(t->buffer);
            buffers.push_back({{"buft", buft_name(t->buffer)}, {"size", ggml_backend_buffer_get_size(t->buffer)}});
        }
    }
    return {{"ok", true}, {"tensors", std::move(tensors)}, {"buffers", std::move(buffers)}};
}

// ---- context -------------------------------------------------------------------------------

struct dec_ctx {
    llama_context * ctx = nullptr;
    std::string last_log;   // the reference's log of the last call on this context
    int32_t abort_after = -1;
    int32_t abort_calls = 0;
};

llama_context_params context_params(const json & p) {
    llama_context_params cp = llama_context_default_params();
    cp.no_perf = false;
    for (const auto & [key, v] : p.items()) {
        if (key == "n_ctx") { cp.n_ctx = v.get<uint32_t>(); }
        else if (key == "n_batch") { cp.n_batch = v.get<uint32_t>(); }
        else if (key == "n_ubatch") { cp.n_ubatch = v.get<uint32_t>(); }
        else if (key == "n_seq_max") { cp.n_seq_max = v.get<uint32_t>(); }
        else if (key == "n_threads") { cp.n_threads = v.get<int32_t>(); }
        else if (key == "n_threads_batch") { cp.n_threads_batch = v.get<int32_t>(); }
        else if (key == "kv_unified") { cp.kv_unified = v.get<bool>(); }
        else if (key == "embeddings") { cp.embeddings = v.get<bool>(); }
        else if (key == "pooling_type") { cp.pooling_type = (enum llama_pooling_type) v.get<int>(); }
        else if (key == "swa_full") { cp.swa_full = v.get<bool>(); }
        else if (key == "no_perf") { cp.no_perf = v.get<bool>(); }
        else if (key == "type_k") { cp.type_k = type_from_name(v.get<std::string>()); }
        else if (key == "type_v") { cp.type_v = type_from_name(v.get<std::string>()); }
        // rope / YaRN overrides (0 or a negative value: the model's, as in llama.h)
        else if (key == "rope_freq_base") { cp.rope_freq_base = v.get<float>(); }
        else if (key == "rope_freq_scale") { cp.rope_freq_scale = v.get<float>(); }
        else if (key == "rope_scaling_type") { cp.rope_scaling_type = (llama_rope_scaling_type) v.get<int>(); }
        else if (key == "yarn_ext_factor") { cp.yarn_ext_factor = v.get<float>(); }
        else if (key == "yarn_attn_factor") { cp.yarn_attn_factor = v.get<float>(); }
        else if (key == "yarn_beta_fast") { cp.yarn_beta_fast = v.get<float>(); }
        else if (key == "yarn_beta_slow") { cp.yarn_beta_slow = v.get<float>(); }
        else if (key == "yarn_orig_ctx") { cp.yarn_orig_ctx = v.get<uint32_t>(); }
        else if (key == "flash_attn") {
            const std::string fa = v.get<std::string>();
            if (fa == "auto") { cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO; }
            else if (fa == "on") { cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED; }
            else if (fa == "off") { cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED; }
            else { throw std::invalid_argument("flash_attn: auto|on|off, not " + fa); }
        } else {
            throw std::invalid_argument("unknown context param: " + key);
        }
    }
    return cp;
}

json context_summary(const llama_context * ctx) {
    const llama_cparams & c = ctx->get_cparams();
    return {{"ok", true}, {"n_ctx", llama_n_ctx(ctx)}, {"n_ctx_seq", llama_n_ctx_seq(ctx)},
            {"n_batch", llama_n_batch(ctx)}, {"n_ubatch", llama_n_ubatch(ctx)}, {"n_seq_max", llama_n_seq_max(ctx)},
            // resolved by sched_reserve (AUTO -> on/off), read from the context's cparams
            {"flash_attn", c.flash_attn}, {"kv_unified", c.kv_unified},
            {"n_threads", llama_n_threads(const_cast<llama_context *>(ctx))},
            {"n_threads_batch", llama_n_threads_batch(const_cast<llama_context *>(ctx))},
            // the resolved pooling type and the widths of its outputs (embeddings getters)
            {"pooling_type", llama_pooling_type(ctx)}, {"n_embd_out", llama_model_n_embd_out(llama_get_model(ctx))},
            {"n_cls_out", llama_model_n_cls_out(llama_get_model(ctx))}};
}

bool abort_cb(void * data) {
    auto * h = static_cast<dec_ctx *>(data);
    return h->abort_calls++ >= h->abort_after;
}

// ---- KV state ------------------------------------------------------------------------------

json kv_cache_state(const llama_kv_cache & kv, uint32_t n_seq_max) {
    const auto & heads = kv.*member(kv_heads());
    json streams = json::array();
    for (uint32_t s = 0; s < kv.get_n_stream(); s++) {
        json st = probe::cells_state_compact(kv.get_cells((llama_seq_id) s));
        st["head"] = heads[s];
        streams.push_back(std::move(st));
    }
    json seq_pos = json::array();
    for (uint32_t s = 0; s < n_seq_max; s++) {
        seq_pos.push_back({kv.seq_pos_min(s), kv.seq_pos_max(s)});
    }
    return {{"streams", std::move(streams)}, {"seq_pos", std::move(seq_pos)}, {"has_shift", kv.get_has_shift()}};
}

json memory_state(llama_context * ctx) {
    llama_memory_i * mem = llama_get_memory(ctx);
    const uint32_t n_seq_max = llama_n_seq_max(ctx);
    if (!mem) {
        return {{"kind", "none"}};
    }
    if (const auto * kv = dynamic_cast<const llama_kv_cache *>(mem)) {
        return {{"kind", "kv"}, {"caches", {{{"name", "kv"}, {"state", kv_cache_state(*kv, n_seq_max)}}}}};
    }
    if (const auto * iswa = dynamic_cast<const llama_kv_cache_iswa *>(mem)) {
        return {{"kind", "iswa"},
                {"caches", {{{"name", "base"}, {"state", kv_cache_state(*iswa->get_base(), n_seq_max)}},
                            {{"name", "swa"}, {"state", kv_cache_state(*iswa->get_swa(), n_seq_max)}}}}};
    }
    return {{"kind", "other"}};
}

// ---- graph dump ----------------------------------------------------------------------------

struct graph_refs {
    std::unordered_map<const ggml_tensor *, int> nodes, leafs;

    json ref(const ggml_tensor * t) const {
        if (!t) {
            return nullptr;
        }
        if (auto it = nodes.find(t); it != nodes.end()) {
            return {{"node", it->second}};
        }
        if (auto it = leafs.find(t); it != leafs.end()) {
            return {{"leaf", it->second}};
        }
        return {{"tensor", t->name}};
    }
};

json tensor_dump(const ggml_tensor * t, const graph_refs & refs) {
    int last = -1;
    for (int j = 0; j < GGML_MAX_SRC; j++) {
        if (t->src[j]) {
            last = j;
        }
    }
    json src = json::array();
    for (int j = 0; j <= last; j++) {
        src.push_back(refs.ref(t->src[j]));
    }
    json op_params = json::array();
    for (size_t k = 0; k < GGML_MAX_OP_PARAMS / sizeof(int32_t); k++) {
        op_params.push_back(t->op_params[k]);
    }
    return {{"op", ggml_op_desc(t)}, {"name", t->name}, {"type", ggml_type_name(t->type)},
            {"ne", {t->ne[0], t->ne[1], t->ne[2], t->ne[3]}}, {"nb", {t->nb[0], t->nb[1], t->nb[2], t->nb[3]}},
            {"op_params", std::move(op_params)}, {"flags", t->flags}, {"src", std::move(src)},
            {"view_src", refs.ref(t->view_src)}, {"view_offs", t->view_offs}};
}

json graph_dump(const ggml_cgraph * gf) {
    graph_refs refs;
    for (int i = 0; i < gf->n_nodes; i++) {
        refs.nodes.emplace(gf->nodes[i], i);
    }
    for (int i = 0; i < gf->n_leafs; i++) {
        refs.leafs.emplace(gf->leafs[i], i);
    }
    json nodes = json::array(), leafs = json::array();
    for (int i = 0; i < gf->n_nodes; i++) {
        nodes.push_back(tensor_dump(gf->nodes[i], refs));
    }
    for (int i = 0; i < gf->n_leafs; i++) {
        leafs.push_back(tensor_dump(gf->leafs[i], refs));
    }
    return {{"nodes", std::move(nodes)}, {"leafs", std::move(leafs)}};
}

// Run fn with the log captured into h->last_log; a C++ exception becomes `fallback` and its
// message is appended to the log.
template <typename F>
auto logged(dec_ctx * h, decltype(std::declval<F>()()) fallback, F && fn) {
    probe::take_log();
    auto r = fallback;
    try {
        r = fn();
        h->last_log = probe::take_log();
    } catch (const std::exception & e) {
        h->last_log = probe::take_log() + "exception: " + e.what() + "\n";
    }
    return r;
}

}  // namespace

// the one context-params reader, shared through probe_params.h (probe_generate.cpp)
llama_context_params probe::context_params_from_json(const json & p) {
    return context_params(p);
}

extern "C" {

void * ps_dec_model_load(const char * path, const char * params_json, char ** out) {
    probe::take_log();
    try {
        ggml_backend_load_all();
        const llama_model_params mp = model_params(json::parse(params_json ? params_json : "{}"));
        llama_model * model = llama_model_load_from_file(path, mp);
        const std::string log = probe::take_log();
        put(out, model ? placement(*model) : failure(log));
        return model;
    } catch (const std::exception & e) {
        put(out, failure(probe::take_log() + "exception: " + e.what() + "\n"));
        return nullptr;
    }
}

void ps_dec_model_free(void * model) {
    llama_model_free(static_cast<llama_model *>(model));
}

void * ps_dec_ctx_new(void * model, const char * cparams_json, char ** out) {
    probe::take_log();
    try {
        const llama_context_params cp = context_params(json::parse(cparams_json ? cparams_json : "{}"));
        llama_context * ctx = llama_init_from_model(static_cast<llama_model *>(model), cp);
        const std::string log = probe::take_log();
        if (!ctx) {
            put(out, failure(log));
            return nullptr;
        }
        put(out, context_summary(ctx));
        auto * h = new dec_ctx;
        h->ctx = ctx;
        h->last_log = log;
        return h;
    } catch (const std::exception & e) {
        put(out, failure(probe::take_log() + "exception: " + e.what() + "\n"));
        return nullptr;
    }
}

void ps_dec_ctx_free(void * handle) {
    auto * h = static_cast<dec_ctx *>(handle);
    if (h) {
        llama_free(h->ctx);
        delete h;
    }
}

}  // extern "C"

// probe_generate.cpp runs its loop on a handle's context (ps_gen_run_ctx)
namespace probe {
llama_context * dec_ctx_llama(void * handle) {
    return static_cast<dec_ctx *>(handle)->ctx;
}
}  // namespace probe

namespace {

// llama_decode or llama_encode of a llama_batch over the caller's arrays
template <typename F>
int run_batch(void * handle, F && fn, int32_t n_tokens, const int32_t * tokens, const int32_t * pos,
              const int32_t * n_seq_id, const int32_t * seq_id_flat, const int8_t * logits) {
    auto * h = static_cast<dec_ctx *>(handle);
    // seq_id rows point into seq_id_flat (n_seq_id[i] ids each); NULL when not given
    std::vector<llama_seq_id *> rows;
    if (seq_id_flat && n_seq_id) {
        size_t off = 0;
        for (int32_t i = 0; i < n_tokens; i++) {
            rows.push_back(const_cast<llama_seq_id *>(seq_id_flat + off));
            off += n_seq_id[i] > 0 ? (size_t) n_seq_id[i] : 0;
        }
    }
    llama_batch batch = {};
    batch.n_tokens = n_tokens;
    batch.token = const_cast<llama_token *>(tokens);
    batch.pos = const_cast<llama_pos *>(pos);
    batch.n_seq_id = const_cast<int32_t *>(n_seq_id);
    batch.seq_id = rows.empty() ? nullptr : rows.data();
    batch.logits = const_cast<int8_t *>(logits);
    return logged(h, PS_DEC_EXCEPTION, [&] { return (int) fn(h->ctx, batch); });
}

}  // namespace

extern "C" {

int ps_dec_decode(void * handle, int32_t n_tokens, const int32_t * tokens, const int32_t * pos,
                  const int32_t * n_seq_id, const int32_t * seq_id_flat, const int8_t * logits) {
    return run_batch(handle, llama_decode, n_tokens, tokens, pos, n_seq_id, seq_id_flat, logits);
}

int ps_dec_encode(void * handle, int32_t n_tokens, const int32_t * tokens, const int32_t * pos,
                  const int32_t * n_seq_id, const int32_t * seq_id_flat, const int8_t * logits) {
    return run_batch(handle, llama_encode, n_tokens, tokens, pos, n_seq_id, seq_id_flat, logits);
}

int ps_dec_embeddings_ith(void * handle, int32_t i, float * out, int32_t n) {
    auto * h = static_cast<dec_ctx *>(handle);
    const float * row = logged(h, (float *) nullptr, [&] { return llama_get_embeddings_ith(h->ctx, i); });
    if (!row) {
        return -1;
    }
    memcpy(out, row, sizeof(float) * n);
    return 0;
}

int ps_dec_embeddings_seq(void * handle, int32_t seq_id, float * out, int32_t n) {
    auto * h = static_cast<dec_ctx *>(handle);
    const float * row = logged(h, (float *) nullptr, [&] { return llama_get_embeddings_seq(h->ctx, seq_id); });
    if (!row) {
        return -1;
    }
    memcpy(out, row, sizeof(float) * n);
    return 0;
}

int ps_dec_last_log(void * handle, char ** text) {
    const std::string & log = static_cast<dec_ctx *>(handle)->last_log;
    *text = static_cast<char *>(malloc(log.size() + 1));
    memcpy(*text, log.c_str(), log.size() + 1);
    return (int) log.size();
}

int ps_dec_logits(void * handle, int32_t i, float * out) {
    auto * h = static_cast<dec_ctx *>(handle);
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(h->ctx)));
    const float * row = logged(h, (float *) nullptr, [&] { return llama_get_logits_ith(h->ctx, i); });
    if (!row) {
        return -1;
    }
    memcpy(out, row, sizeof(float) * n_vocab);
    return 0;
}

int ps_dec_n_outputs(void * handle) {
    const auto * h = static_cast<dec_ctx *>(handle);
    return (int) (h->ctx->*member(ctx_n_outputs()));
}

int ps_dec_logits_all(void * handle, float * out) {
    auto * h = static_cast<dec_ctx *>(handle);
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(h->ctx)));
    const float * rows = logged(h, (float *) nullptr, [&] { return llama_get_logits(h->ctx); });
    if (!rows) {
        return -1;
    }
    memcpy(out, rows, sizeof(float) * (size_t) n_vocab * ps_dec_n_outputs(handle));
    return 0;
}

int ps_dec_memory(void * handle, const char * op, int32_t a, int32_t b, int32_t c, int32_t d) {
    auto * h = static_cast<dec_ctx *>(handle);
    llama_memory_t mem = llama_get_memory(h->ctx);
    const std::string o = op;
    return logged(h, PS_DEC_EXCEPTION, [&]() -> int {
        if (o == "clear") { llama_memory_clear(mem, a != 0); return 0; }
        if (o == "seq_rm") { return llama_memory_seq_rm(mem, a, b, c); }
        if (o == "seq_cp") { llama_memory_seq_cp(mem, a, b, c, d); return 0; }
        if (o == "seq_keep") { llama_memory_seq_keep(mem, a); return 0; }
        if (o == "seq_add") { llama_memory_seq_add(mem, a, b, c, d); return 0; }
        if (o == "seq_div") { llama_memory_seq_div(mem, a, b, c, d); return 0; }
        if (o == "seq_pos_min") { return llama_memory_seq_pos_min(mem, a); }
        if (o == "seq_pos_max") { return llama_memory_seq_pos_max(mem, a); }
        throw std::invalid_argument("unknown memory op: " + o);
    });
}

int ps_dec_kv_state(void * handle, char ** out) {
    auto * h = static_cast<dec_ctx *>(handle);
    try {
        put(out, memory_state(h->ctx));
        return 0;
    } catch (const std::exception & e) {
        put(out, {{"exception", e.what()}});
        return -1;
    }
}

int ps_graph_dump(void * cgraph, char ** out) {
    try {
        put(out, graph_dump(static_cast<const ggml_cgraph *>(cgraph)));
        return 0;
    } catch (const std::exception & e) {
        put(out, {{"exception", e.what()}});
        return -1;
    }
}

int ps_dec_graph(void * handle, char ** out) {
    auto * h = static_cast<dec_ctx *>(handle);
    // the graph result of the last ubatch computed; null before the first decode and after a
    // memory update (K-shift), a graph reserve or a failed graph allocation reset it
    const llm_graph_result * res = h->ctx->*member(ctx_gf_active());
    if (!res || !res->get_gf()) {
        *out = nullptr;
        return -1;
    }
    return ps_graph_dump(res->get_gf(), out);
}

int ps_dec_stats(void * handle, char ** out) {
    auto * h = static_cast<dec_ctx *>(handle);
    const llama_perf_context_data d = llama_perf_context(h->ctx);
    // as llama_perf_context reports them (n_p_eval and n_eval are at least 1); the reference
    // counts no graph builds, only reuses
    put(out, {{"t_start_ms", d.t_start_ms}, {"t_load_ms", d.t_load_ms}, {"t_p_eval_ms", d.t_p_eval_ms},
              {"t_eval_ms", d.t_eval_ms}, {"n_p_eval", d.n_p_eval}, {"n_eval", d.n_eval},
              {"n_reused", d.n_reused}, {"abort_calls", h->abort_calls}});
    return 0;
}

void ps_dec_set_abort(void * handle, int32_t after) {
    auto * h = static_cast<dec_ctx *>(handle);
    h->abort_after = after;
    h->abort_calls = 0;
    if (after < 0) {
        llama_set_abort_callback(h->ctx, nullptr, nullptr);
    } else {
        llama_set_abort_callback(h->ctx, abort_cb, h);
    }
}

void ps_dec_set_threads(void * handle, int32_t n, int32_t n_batch) {
    llama_set_n_threads(static_cast<dec_ctx *>(handle)->ctx, n, n_batch);
}

}  // extern "C"
