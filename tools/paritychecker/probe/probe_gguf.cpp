// GGUF parse outcome and summary, as ggml/src/gguf.cpp sees a file or a buffer.
#include "probe.h"
#include "probe_json.h"

#include "ggml.h"
#include "gguf.h"

using probe::json;

static json scalar(const gguf_context * ctx, int64_t i, gguf_type t, size_t j, const void * arr) {
    // arr != nullptr: element j of an array of type t
#define PS_GET(ctype, getter) (arr ? static_cast<const ctype *>(arr)[j] : getter(ctx, i))
    switch (t) {
        case GGUF_TYPE_UINT8:   return PS_GET(uint8_t,  gguf_get_val_u8);
        case GGUF_TYPE_INT8:    return PS_GET(int8_t,   gguf_get_val_i8);
        case GGUF_TYPE_UINT16:  return PS_GET(uint16_t, gguf_get_val_u16);
        case GGUF_TYPE_INT16:   return PS_GET(int16_t,  gguf_get_val_i16);
        case GGUF_TYPE_UINT32:  return PS_GET(uint32_t, gguf_get_val_u32);
        case GGUF_TYPE_INT32:   return PS_GET(int32_t,  gguf_get_val_i32);
        case GGUF_TYPE_UINT64:  return PS_GET(uint64_t, gguf_get_val_u64);
        case GGUF_TYPE_INT64:   return PS_GET(int64_t,  gguf_get_val_i64);
        case GGUF_TYPE_FLOAT32: return probe::f32(PS_GET(float,  gguf_get_val_f32));
        case GGUF_TYPE_FLOAT64: return probe::f64(PS_GET(double, gguf_get_val_f64));
        case GGUF_TYPE_BOOL:    return (bool) PS_GET(int8_t, gguf_get_val_bool);
        case GGUF_TYPE_STRING: {
            const char * s = arr ? gguf_get_arr_str(ctx, i, j) : gguf_get_val_str(ctx, i);
            return probe::str(s, strlen(s));
        }
        default: return nullptr;
    }
#undef PS_GET
}

static json summarize(const gguf_context * ctx) {
    json j;
    j["version"]     = gguf_get_version(ctx);
    j["alignment"]   = gguf_get_alignment(ctx);
    j["data_offset"] = gguf_get_data_offset(ctx);
    json kv = json::array();
    for (int64_t i = 0; i < gguf_get_n_kv(ctx); i++) {
        const char * key = gguf_get_key(ctx, i);
        const gguf_type t = gguf_get_kv_type(ctx, i);
        json e = {{"key", probe::str(key, strlen(key))}, {"type", (int) t}};
        if (t == GGUF_TYPE_ARRAY) {
            const gguf_type at = gguf_get_arr_type(ctx, i);
            const size_t n = gguf_get_arr_n(ctx, i);
            const void * data = at == GGUF_TYPE_STRING ? nullptr : gguf_get_arr_data(ctx, i);
            json vals = json::array();
            for (size_t k = 0; k < n; k++) {
                vals.push_back(scalar(ctx, i, at, k, data ? data : (const void *) 1));
            }
            e["arr_type"] = (int) at;
            e["value"] = std::move(vals);
        } else {
            e["value"] = scalar(ctx, i, t, 0, nullptr);
        }
        kv.push_back(std::move(e));
    }
    j["kv"] = std::move(kv);
    json tensors = json::array();
    for (int64_t i = 0; i < gguf_get_n_tensors(ctx); i++) {
        const int64_t * ne = gguf_get_tensor_ne(ctx, i);
        const char * name = gguf_get_tensor_name(ctx, i);
        tensors.push_back({
            {"name", probe::str(name, strlen(name))},
            {"type", (int) gguf_get_tensor_type(ctx, i)},
            {"ne", {ne[0], ne[1], ne[2], ne[3]}},
            {"offset", gguf_get_tensor_offset(ctx, i)},
            {"size", gguf_get_tensor_size(ctx, i)},
        });
    }
    j["tensors"] = std::move(tensors);
    return j;
}

extern "C" int ps_gguf_parse_buffer(const void * data, size_t size, int with_data, char ** out) {
    ggml_context * gctx = nullptr;
    gguf_init_params params = {/*no_alloc =*/ false, /*ctx =*/ with_data ? &gctx : nullptr};
    gguf_context * ctx = gguf_init_from_buffer(data, size, params);
    if (!ctx) {
        return 0;
    }
    if (out) {
        *out = probe::dup(summarize(ctx));
    }
    gguf_free(ctx);
    if (gctx) {
        ggml_free(gctx);
    }
    return 1;
}

extern "C" int ps_gguf_parse_file(const char * path, int no_alloc, char ** out) {
    gguf_init_params params = {/*no_alloc =*/ (bool) no_alloc, /*ctx =*/ nullptr};
    gguf_context * ctx = gguf_init_from_file(path, params);
    if (!ctx) {
        return 0;
    }
    if (out) {
        *out = probe::dup(summarize(ctx));
    }
    gguf_free(ctx);
    return 1;
}
