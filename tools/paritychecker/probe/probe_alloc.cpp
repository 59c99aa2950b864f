// Graph allocation (ggml/src/ggml-alloc.c): rebuild an allocator scenario (the IR of
// /tmp/alloc-ir.md, see pyggml/reference/alloc.py) in a no_alloc ggml context and run the
// reference gallocr over recording buffer types, the way tests/test-alloc.cpp observes it
// with its dummy backend.  Also: the decode graphs of real models serialized to the same IR,
// and a bench handle timing the reference calls in C.
//
// Every backend buffer a recording buffer type hands out gets its own base address
// ((k + 1) << 44 for the k-th buffer of the run), so a tensor's data pointer alone says
// which buffer holds it, even after that buffer was freed by a reallocation.
#include "probe.h"
#include "probe_json.h"

#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-backend-impl.h"
#include "ggml-cpu.h"
#include "ggml-impl.h"
#include "llama.h"
#include "llama-context.h"
#include "llama-memory.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

using probe::json;

namespace {

constexpr int      BASE_SHIFT = 44;
constexpr uint64_t EXT_BASE   = uint64_t(1) << 40;  // pre-allocated tensors live below buffer 0

struct rec_buft;

struct rec_buffer {
    rec_buft * owner;
    uint64_t   base;
    size_t     size;
    bool       live;
    ggml_backend_buffer_t buffer;
};

struct run_state;

// A dummy buffer type (configurable alignment and max size) that records its buffers.
struct rec_buft {
    ggml_backend_buffer_type buft{};
    ggml_backend_buffer_i    iface{};
    size_t      alignment = 8;
    size_t      max_size  = SIZE_MAX;
    size_t      fail_above = 0;   // alloc_buffer returns NULL for larger sizes (0: never)
    int         index = -1;       // first buffer id naming this type; -1: the external buffer
    run_state * run = nullptr;
    std::vector<rec_buffer *> live;  // in allocation order
};

struct run_state {
    std::vector<std::unique_ptr<rec_buffer>> all;  // every buffer of the run, k-th at base (k+1)<<44
};

const char * rec_name(ggml_backend_buffer_type_t) { return "pyggml_probe_alloc"; }
size_t rec_alignment(ggml_backend_buffer_type_t buft) { return static_cast<rec_buft *>(buft->context)->alignment; }
size_t rec_max_size(ggml_backend_buffer_type_t buft) { return static_cast<rec_buft *>(buft->context)->max_size; }
bool rec_is_host(ggml_backend_buffer_type_t) { return true; }

void * rec_get_base(ggml_backend_buffer_t buffer) {
    return reinterpret_cast<void *>(static_cast<rec_buffer *>(buffer->context)->base);
}

void rec_free(ggml_backend_buffer_t buffer) {
    auto * rb = static_cast<rec_buffer *>(buffer->context);
    auto & live = rb->owner->live;
    live.erase(std::find(live.begin(), live.end(), rb));
    rb->live = false;
    rb->buffer = nullptr;
}

ggml_status rec_init_tensor(ggml_backend_buffer_t, ggml_tensor *) { return GGML_STATUS_SUCCESS; }
void rec_memset(ggml_backend_buffer_t, ggml_tensor *, uint8_t, size_t, size_t) {}
void rec_set(ggml_backend_buffer_t, ggml_tensor *, const void *, size_t, size_t) {}
void rec_get(ggml_backend_buffer_t, const ggml_tensor *, void *, size_t, size_t) {}
void rec_clear(ggml_backend_buffer_t, uint8_t) {}

ggml_backend_buffer_t rec_alloc(ggml_backend_buffer_type_t buft, size_t size) {
    auto * rb = static_cast<rec_buft *>(buft->context);
    if (rb->fail_above && size > rb->fail_above) {
        return nullptr;
    }
    auto & all = rb->run->all;
    auto buf = std::make_unique<rec_buffer>();
    buf->owner = rb;
    buf->base = uint64_t(all.size() + 1) << BASE_SHIFT;
    buf->size = size;
    buf->live = true;
    buf->buffer = ggml_backend_buffer_init(buft, rb->iface, buf.get(), size);
    rb->live.push_back(buf.get());
    all.push_back(std::move(buf));
    return all.back()->buffer;
}

void rec_setup(rec_buft & rb, run_state * run) {
    rb.run = run;
    rb.iface.free_buffer   = rec_free;
    rb.iface.get_base      = rec_get_base;
    rb.iface.init_tensor   = rec_init_tensor;
    rb.iface.memset_tensor = rec_memset;
    rb.iface.set_tensor    = rec_set;
    rb.iface.get_tensor    = rec_get;
    rb.iface.clear         = rec_clear;
    rb.buft.iface.get_name      = rec_name;
    rb.buft.iface.alloc_buffer  = rec_alloc;
    rb.buft.iface.get_alignment = rec_alignment;
    rb.buft.iface.get_max_size  = rec_max_size;
    rb.buft.iface.is_host       = rec_is_host;
    rb.buft.device  = nullptr;
    rb.buft.context = &rb;
}

size_t size_of(const json & v) {
    if (v.is_null()) {
        return SIZE_MAX;
    }
    const uint64_t x = v.get<uint64_t>();
    return x == 0 ? SIZE_MAX : size_t(x);
}

struct graph_spec {
    ggml_cgraph *    graph = nullptr;
    std::vector<int> node_ids, leaf_ids;    // buffer ids
    bool             has_node_ids = false, has_leaf_ids = false;
    const int * nodes_ptr() const { return has_node_ids ? node_ids.data() : nullptr; }
    const int * leafs_ptr() const { return has_leaf_ids ? leaf_ids.data() : nullptr; }
};

// One scenario rebuilt: buffer types, tensors, graphs, the gallocr.
struct scenario {
    run_state run;
    std::vector<std::unique_ptr<rec_buft>> recs;  // distinct buffer types
    std::vector<ggml_backend_buffer_type_t> bufts;  // per buffer id
    rec_buft ext;
    rec_buffer ext_rb{};
    ggml_backend_buffer_t ext_buf = nullptr;
    ggml_context * ctx = nullptr;
    std::vector<ggml_tensor *> tensors;
    std::vector<std::pair<void *, ggml_backend_buffer_t>> initial;  // (data, buffer) after building
    graph_spec main;
    ggml_gallocr_t galloc = nullptr;
    std::vector<ggml_backend_buffer_t> ctx_buffers;  // from alloc_ctx_tensors

    ~scenario() {
        ggml_gallocr_free(galloc);
        for (auto * b : ctx_buffers) {
            ggml_backend_buffer_free(b);
        }
        if (ext_buf) {
            ggml_backend_buffer_free(ext_buf);
        }
        if (ctx) {
            ggml_free(ctx);
        }
    }

    void restore() {
        for (size_t i = 0; i < tensors.size(); i++) {
            tensors[i]->data = initial[i].first;
            tensors[i]->buffer = initial[i].second;
        }
    }
};

int tensor_id(const json & v, size_t n, const char * what) {
    const int64_t id = v.get<int64_t>();
    if (id < -1 || id >= int64_t(n)) {
        throw std::runtime_error(std::string("bad tensor id in ") + what + ": " + std::to_string(id));
    }
    return int(id);
}

graph_spec make_graph(scenario & s, const json & g) {
    const json & nodes = g.at("nodes");
    const json & leafs = g.at("leafs");
    graph_spec gs;
    const size_t size = std::max<size_t>({nodes.size(), leafs.size(), 1});
    gs.graph = ggml_new_graph_custom(s.ctx, size, false);
    for (const auto & v : nodes) {
        const int id = tensor_id(v, s.tensors.size(), "nodes");
        if (id < 0) throw std::runtime_error("a node cannot be -1");
        gs.graph->nodes[gs.graph->n_nodes++] = s.tensors[id];
    }
    for (const auto & v : leafs) {
        const int id = tensor_id(v, s.tensors.size(), "leafs");
        if (id < 0) throw std::runtime_error("a leaf cannot be -1");
        gs.graph->leafs[gs.graph->n_leafs++] = s.tensors[id];
    }
    const int n_bufs = int(s.bufts.size());
    auto ids = [&](const char * key, size_t n, std::vector<int> & out) {
        if (!g.contains(key) || g.at(key).is_null()) {
            return false;
        }
        const json & a = g.at(key);
        if (a.size() != n) throw std::runtime_error(std::string(key) + " has the wrong length");
        for (const auto & v : a) {
            const int b = v.get<int>();
            if (b < 0 || b >= n_bufs) throw std::runtime_error(std::string("bad buffer id in ") + key);
            out.push_back(b);
        }
        return true;
    };
    gs.has_node_ids = ids("node_buffer_ids", nodes.size(), gs.node_ids);
    gs.has_leaf_ids = ids("leaf_buffer_ids", leafs.size(), gs.leaf_ids);
    if (!gs.has_node_ids && n_bufs < 1) throw std::runtime_error("no buffer types");
    return gs;
}

size_t count_graphs(const json & sc) {
    size_t n = 1;
    if (sc.contains("steps")) {
        for (const auto & st : sc.at("steps")) {
            n += st.contains("graph") ? 1 : 0;
        }
    }
    return n;
}

size_t graph_size(const json & g) {
    return std::max<size_t>({g.at("nodes").size(), g.at("leafs").size(), 1});
}

std::unique_ptr<scenario> build(const json & sc) {
    auto s = std::make_unique<scenario>();
    const json & bufts = sc.at("bufts");
    for (size_t i = 0; i < bufts.size(); i++) {
        const json & b = bufts[i];
        if (b.contains("shared_with") && !b.at("shared_with").is_null()) {
            const int j = b.at("shared_with").get<int>();
            if (j < 0 || j >= int(i)) throw std::runtime_error("shared_with must name an earlier buffer type");
            s->bufts.push_back(s->bufts[j]);
            continue;
        }
        auto rb = std::make_unique<rec_buft>();
        rec_setup(*rb, &s->run);
        rb->alignment = b.at("alignment").get<size_t>();
        if (rb->alignment == 0 || (rb->alignment & (rb->alignment - 1))) {
            throw std::runtime_error("alignment must be a power of 2");
        }
        rb->max_size = size_of(b.value("max_size", json()));
        const json fail_above = b.value("fail_above", json());
        rb->fail_above = fail_above.is_null() ? 0 : fail_above.get<size_t>();
        rb->index = int(i);
        s->bufts.push_back(&rb->buft);
        s->recs.push_back(std::move(rb));
    }
    rec_setup(s->ext, &s->run);

    const json & ts = sc.at("tensors");
    size_t mem = ts.size() * ggml_tensor_overhead() + 1024;
    mem += ggml_graph_overhead_custom(graph_size(sc), false);
    if (sc.contains("steps")) {
        for (const auto & st : sc.at("steps")) {
            if (st.contains("graph")) {
                mem += ggml_graph_overhead_custom(graph_size(st.at("graph")), false);
            }
        }
    }
    ggml_init_params params{mem, nullptr, true};
    s->ctx = ggml_init(params);
    if (!s->ctx) throw std::runtime_error("ggml_init failed");

    // pre-allocated tensors: one external buffer, never a recording one
    uint64_t ext_size = 0;
    std::vector<uint64_t> ext_offs(ts.size(), 0);
    for (size_t i = 0; i < ts.size(); i++) {
        if (ts[i].value("preallocated", false)) {
            ext_offs[i] = ext_size;
            ext_size += 64;  // the probe never touches tensor memory: any distinct address will do
        }
    }
    if (ext_size) {
        s->ext_rb = rec_buffer{&s->ext, EXT_BASE, size_t(ext_size), true, nullptr};
        s->ext_buf = ggml_backend_buffer_init(&s->ext.buft, s->ext.iface, &s->ext_rb, ext_size);
        s->ext_rb.buffer = s->ext_buf;
        s->ext.live.push_back(&s->ext_rb);
    }

    for (size_t i = 0; i < ts.size(); i++) {
        const json & tj = ts[i];
        const int type = tj.at("type").get<int>();
        if (type < 0 || type >= GGML_TYPE_COUNT || ggml_blck_size(ggml_type(type)) == 0 ||
            ggml_type_size(ggml_type(type)) == 0) {
            throw std::runtime_error("bad ggml type " + std::to_string(type));
        }
        const int op = tj.value("op", 0);
        if (op < 0 || op >= GGML_OP_COUNT) throw std::runtime_error("bad op " + std::to_string(op));
        ggml_tensor * t = ggml_new_tensor_1d(s->ctx, ggml_type(type), 1);
        if (tj.contains("name")) {
            ggml_set_name(t, tj.at("name").get<std::string>().c_str());
        }
        const json & ne = tj.at("ne");
        const json & nb = tj.at("nb");
        if (ne.size() != 4 || nb.size() != 4) throw std::runtime_error("ne/nb need 4 entries");
        for (int d = 0; d < 4; d++) {
            t->ne[d] = ne[d].get<int64_t>();
            t->nb[d] = nb[d].get<size_t>();
        }
        t->op = ggml_op(op);
        t->flags = tj.value("flags", 0);
        const json src = tj.value("src", json::array());
        if (src.size() > GGML_MAX_SRC) throw std::runtime_error("too many srcs");
        for (size_t j = 0; j < src.size(); j++) {
            // ids now, pointers once every tensor exists (a src may be created later)
            const int id = tensor_id(src[j], ts.size(), "src");
            t->src[j] = id < 0 ? nullptr : reinterpret_cast<ggml_tensor *>(intptr_t(id) + 1);
        }
        const int vs = tensor_id(tj.value("view_src", json(-1)), ts.size(), "view_src");
        const bool pre = tj.value("preallocated", false);
        if (vs >= 0) {
            if (vs >= int(i)) throw std::runtime_error("view_src must be created before its view");
            if (pre) throw std::runtime_error("a view cannot be pre-allocated");
            t->view_src = s->tensors[vs];
            t->view_offs = tj.value("view_offs", size_t(0));
            // ggml_new_tensor_impl: a view of a tensor that has data gets data at creation
            if (t->view_src->data) {
                t->data = static_cast<char *>(t->view_src->data) + t->view_offs;
            }
        } else if (pre) {
            t->buffer = s->ext_buf;
            t->data = reinterpret_cast<void *>(EXT_BASE + ext_offs[i]);
        }
        s->tensors.push_back(t);
    }
    for (ggml_tensor * t : s->tensors) {
        for (int j = 0; j < GGML_MAX_SRC; j++) {
            if (t->src[j]) {
                t->src[j] = s->tensors[reinterpret_cast<intptr_t>(t->src[j]) - 1];
            }
        }
    }
    for (ggml_tensor * t : s->tensors) {
        s->initial.emplace_back(t->data, t->buffer);
    }
    s->main = make_graph(*s, sc);
    s->galloc = ggml_gallocr_new_n(s->bufts.data(), int(s->bufts.size()));
    return s;
}

// Where each tensor's data lies: [buffer id, chunk, offset] in a live recording buffer.
json placement(const scenario & s, const ggml_tensor * t) {
    const uint64_t p = reinterpret_cast<uint64_t>(t->data);
    const uint64_t k = p >> BASE_SHIFT;
    if (k == 0 || k > s.run.all.size()) {
        return nullptr;
    }
    const rec_buffer * rb = s.run.all[k - 1].get();
    if (!rb->live) {
        return json();  // caller keeps the previous record
    }
    const auto & live = rb->owner->live;
    const int chunk = int(std::find(live.begin(), live.end(), rb) - live.begin());
    return json{{"buffer", rb->owner->index}, {"chunk", chunk}, {"offset", p - rb->base}};
}

json buffer_sizes(const scenario & s) {
    json out = json::array();
    for (auto * bt : s.bufts) {
        json sizes = json::array();
        for (const rec_buffer * rb : static_cast<rec_buft *>(bt->context)->live) {
            sizes.push_back(rb->size);
        }
        out.push_back(std::move(sizes));
    }
    return out;
}

json run_scenario(const json & sc) {
    auto s = build(sc);
    json steps = sc.contains("steps") ? sc.at("steps")
                                      : json::array({json{{"call", "reserve"}}, json{{"call", "alloc_graph"}}});
    std::vector<json> placed(s->tensors.size());
    json results = json::array();
    bool ok = true;
    json error = nullptr;
    const int n_bufs = int(s->bufts.size());
    for (size_t i = 0; i < steps.size(); i++) {
        const json & st = steps[i];
        const std::string call = st.at("call").get<std::string>();
        graph_spec extra;
        const graph_spec * gs = &s->main;
        if (st.contains("graph")) {
            extra = make_graph(*s, st.at("graph"));
            gs = &extra;
        }
        json r;
        bool failed = false;
        if (call == "reserve") {
            r = ggml_gallocr_reserve_n(s->galloc, gs->graph, gs->nodes_ptr(), gs->leafs_ptr());
            failed = !r.get<bool>();
        } else if (call == "alloc_graph") {
            r = ggml_gallocr_alloc_graph(s->galloc, gs->graph);
            failed = !r.get<bool>();
        } else if (call == "reserve_n_size") {
            std::vector<size_t> sizes(n_bufs, 0);
            ggml_gallocr_reserve_n_size(s->galloc, gs->graph, gs->nodes_ptr(), gs->leafs_ptr(), sizes.data());
            r = sizes;
        } else if (call == "needs_realloc") {
            r = ps_gallocr_needs_realloc(s->galloc, gs->graph) != 0;
        } else if (call == "get_buffer_size") {
            r = json::array();
            for (int b = 0; b < n_bufs; b++) {
                r.push_back(ggml_gallocr_get_buffer_size(s->galloc, b));
            }
        } else if (call == "alloc_ctx_tensors" || call == "alloc_ctx_tensors_size") {
            const int b = st.value("buft", 0);
            if (b < 0 || b >= n_bufs) throw std::runtime_error("bad buft in alloc_ctx_tensors");
            if (call == "alloc_ctx_tensors_size") {
                r = ggml_backend_alloc_ctx_tensors_from_buft_size(s->ctx, s->bufts[b]);
            } else {
                ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(s->ctx, s->bufts[b]);
                if (buf) {
                    s->ctx_buffers.push_back(buf);
                }
                r = buf != nullptr;
            }
        } else {
            throw std::runtime_error("unknown call " + call);
        }
        if (failed && ok) {
            ok = false;
            error = call + " failed";
        }
        results.push_back(std::move(r));
        for (size_t t = 0; t < s->tensors.size(); t++) {
            json p = placement(*s, s->tensors[t]);
            if (!p.is_null()) {
                placed[t] = std::move(p);
            }
        }
    }
    json tensors = json::array();
    for (auto & p : placed) {
        tensors.push_back(std::move(p));
    }
    return json{{"ok", ok}, {"error", error}, {"buffers", buffer_sizes(*s)}, {"tensors", tensors},
                {"steps", results}};
}

// ---- decode graphs of real models -------------------------------------------------------

json tensor_ir(const ggml_tensor * t, const std::unordered_map<const ggml_tensor *, int> & ids) {
    json src = json::array();
    int last = -1;
    for (int j = 0; j < GGML_MAX_SRC; j++) {
        if (t->src[j]) last = j;
    }
    for (int j = 0; j <= last; j++) {
        src.push_back(t->src[j] ? ids.at(t->src[j]) : -1);
    }
    return json{
        {"name", std::string(t->name)}, {"type", int(t->type)},
        {"ne", {t->ne[0], t->ne[1], t->ne[2], t->ne[3]}}, {"nb", {t->nb[0], t->nb[1], t->nb[2], t->nb[3]}},
        {"op", int(t->op)}, {"src", src}, {"view_src", t->view_src ? ids.at(t->view_src) : -1},
        {"view_offs", t->view_offs},
        // INPUT|OUTPUT|PARAM|LOSS; the COMPUTE mark of ggml_build_forward_expand is not read by gallocr
        {"flags", t->flags & 15},
        {"preallocated", t->view_src == nullptr && t->data != nullptr},
    };
}

json graph_ir(const ggml_cgraph * gf) {
    std::unordered_map<const ggml_tensor *, int> ids;
    std::vector<const ggml_tensor *> order;
    // creation order for the IR: a view's source comes first, then its srcs, then itself
    std::vector<std::pair<const ggml_tensor *, bool>> stack;
    auto visit = [&](const ggml_tensor * root) {
        stack.emplace_back(root, false);
        while (!stack.empty()) {
            auto [t, expanded] = stack.back();
            stack.pop_back();
            if (ids.count(t)) continue;
            if (expanded) {
                ids.emplace(t, int(order.size()));
                order.push_back(t);
                continue;
            }
            stack.emplace_back(t, true);
            for (int j = GGML_MAX_SRC - 1; j >= 0; j--) {
                if (t->src[j] && !ids.count(t->src[j])) stack.emplace_back(t->src[j], false);
            }
            if (t->view_src && !ids.count(t->view_src)) stack.emplace_back(t->view_src, false);
        }
    };
    for (int i = 0; i < gf->n_leafs; i++) visit(gf->leafs[i]);
    for (int i = 0; i < gf->n_nodes; i++) visit(gf->nodes[i]);
    json tensors = json::array();
    for (const ggml_tensor * t : order) tensors.push_back(tensor_ir(t, ids));
    json nodes = json::array(), leafs = json::array();
    for (int i = 0; i < gf->n_nodes; i++) nodes.push_back(ids.at(gf->nodes[i]));
    for (int i = 0; i < gf->n_leafs; i++) leafs.push_back(ids.at(gf->leafs[i]));
    return json{{"tensors", tensors}, {"nodes", nodes}, {"leafs", leafs}};
}

json decode_graph(const char * path, const json & p) {
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.use_extra_bufts = false;
    llama_model * model = llama_model_load_from_file(path, mp);
    if (!model) throw std::runtime_error("model load failed");
    std::unique_ptr<llama_model, decltype(&llama_model_free)> model_guard(model, llama_model_free);
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = p.at("n_ctx").get<uint32_t>();
    const uint32_t n_ubatch = p.at("n_ubatch").get<uint32_t>();
    cp.n_batch = n_ubatch;
    cp.n_ubatch = n_ubatch;
    cp.n_seq_max = 1;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    cp.flash_attn_type = llama_flash_attn_type(p.value("flash_attn", 0));
    cp.no_perf = true;
    llama_context * lctx = llama_init_from_model(model, cp);
    if (!lctx) throw std::runtime_error("context init failed");
    std::unique_ptr<llama_context, decltype(&llama_free)> ctx_guard(lctx, llama_free);
    const uint32_t n_tokens = p.value("n_tokens", n_ubatch);
    const uint32_t n_outputs = p.value("n_outputs", 1u);
    llama_memory_context_ptr mctx = llama_get_memory(lctx)->init_full();
    ggml_cgraph * gf = lctx->graph_reserve(n_tokens, 1, n_outputs, mctx.get(), /*split_only=*/true);
    if (!gf) throw std::runtime_error("graph_reserve failed");
    json ir = graph_ir(gf);
    ggml_backend_buffer_type_t cpu = ggml_backend_cpu_buffer_type();
    const size_t max_size = ggml_backend_buft_get_max_size(cpu);
    ir["bufts"] = json::array({json{{"alignment", ggml_backend_buft_get_alignment(cpu)},
                                    {"max_size", max_size == SIZE_MAX ? 0 : max_size}}});
    ir["node_buffer_ids"] = nullptr;
    ir["leaf_buffer_ids"] = nullptr;
    ir["meta"] = json{{"n_ctx", llama_n_ctx(lctx)}, {"n_ubatch", n_ubatch}, {"n_tokens", n_tokens},
                      {"n_outputs", n_outputs}};
    return ir;
}

struct bench_handle {
    std::unique_ptr<scenario> s;
    bool reserved = false;  // s->galloc holds a reservation of the main graph (mode 1)
};

}  // namespace

extern "C" {

int ps_alloc_run(const char * scenario_json, char ** out_json) {
    return probe::run_json(scenario_json, out_json, [](const json & sc) { return run_scenario(sc); });
}

int ps_alloc_decode_graph(const char * model_path, const char * params_json, char ** out_json) {
    const std::string path = model_path;
    return probe::run_json(params_json, out_json, [&](const json & p) { return decode_graph(path.c_str(), p); });
}

void * ps_alloc_bench_new(const char * scenario_json) {
    try {
        auto h = std::make_unique<bench_handle>();
        h->s = build(json::parse(scenario_json));
        return h.release();
    } catch (const std::exception &) {
        return nullptr;
    }
}

// One timed operation (mode 0: gallocr_new_n + reserve_n + alloc_graph + free on the fresh
// graph; 1: the reference's needs_realloc scan of the graph as reserved, tensors unallocated;
// 2: ggml_backend_alloc_ctx_tensors_from_buft of every tensor into buffer type 0 + free),
// repeated iters times; returns the nanoseconds spent inside the timed calls (the state
// restores between repetitions are not counted), or -1.
int64_t ps_alloc_bench_run(void * handle, int mode, int iters) {
    auto * h = static_cast<bench_handle *>(handle);
    scenario & s = *h->s;
    using clock = std::chrono::steady_clock;
    int64_t total = 0;
    if (mode == 1) {
        // reserve once (the graph as a fresh build leaves it: tensors without memory), then
        // only the scan is repeated
        if (!h->reserved) {
            s.restore();
            if (!ggml_gallocr_reserve_n(s.galloc, s.main.graph, s.main.nodes_ptr(), s.main.leafs_ptr())) return -1;
            h->reserved = true;
        }
        int dirty = 0;
        const auto t0 = clock::now();
        for (int i = 0; i < iters; i++) {
            dirty += ps_gallocr_needs_realloc(s.galloc, s.main.graph);
        }
        total = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count();
        return dirty ? -1 : total;
    }
    for (int i = 0; i < iters; i++) {
        s.restore();
        const auto t0 = clock::now();
        if (mode == 0) {
            ggml_gallocr_t g = ggml_gallocr_new_n(s.bufts.data(), int(s.bufts.size()));
            const bool ok = ggml_gallocr_reserve_n(g, s.main.graph, s.main.nodes_ptr(), s.main.leafs_ptr()) &&
                            ggml_gallocr_alloc_graph(g, s.main.graph);
            ggml_gallocr_free(g);
            if (!ok) return -1;
        } else if (mode == 2) {
            ggml_backend_buffer_t b = ggml_backend_alloc_ctx_tensors_from_buft(s.ctx, s.bufts[0]);
            ggml_backend_buffer_free(b);
        } else {
            return -1;
        }
        total += std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count();
    }
    s.restore();
    return total;
}

void ps_alloc_bench_free(void * handle) {
    delete static_cast<bench_handle *>(handle);
}

}  // extern "C"
