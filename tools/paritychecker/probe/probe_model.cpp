// Model load outcome (llama.h semantics) with the hparams, vocab metadata and tensors
// the reference extracted; tensor bytes are read back from the backend buffers.
#include "probe.h"
#include "probe_json.h"

#include "ggml-backend.h"
#include "llama.h"
#include "llama-model.h"

#include <string>
#include <vector>

using probe::json;

namespace {

struct progress_state {
    int cancel_after;  // < 0: never
    int calls = 0;
    json values = json::array();
};

bool on_progress(float p, void * ud) {
    auto * st = static_cast<progress_state *>(ud);
    st->values.push_back(probe::f32(p));
    const int call = st->calls++;
    return st->cancel_after < 0 || call < st->cancel_after;
}

template <typename A>
json per_layer(const A & arr, uint32_t n) {
    json out = json::array();
    for (uint32_t i = 0; i < n && i < arr.size(); i++) {
        out.push_back(arr[i]);
    }
    return out;
}

json hparams_json(const llama_model & m) {
    const llama_hparams & h = m.hparams;
    const uint32_t n_layer = h.n_layer_all;
    return {
        {"n_ctx_train", h.n_ctx_train},
        {"n_embd", h.n_embd},
        {"n_layer", n_layer},
        {"n_expert", h.n_expert},
        {"n_expert_used", per_layer(h.n_expert_used_arr, n_layer)},
        {"n_head", per_layer(h.n_head_arr, n_layer)},
        {"n_head_kv", per_layer(h.n_head_kv_arr, n_layer)},
        {"n_ff", per_layer(h.n_ff_arr, n_layer)},
        {"n_rot", h.n_rot_full},
        {"n_embd_head_k", h.n_embd_head_k_full},
        {"n_embd_head_v", h.n_embd_head_v_full},
        {"n_rot_swa", h.n_rot_swa},
        {"n_embd_head_k_swa", h.n_embd_head_k_swa},
        {"n_embd_head_v_swa", h.n_embd_head_v_swa},
        {"f_norm_rms_eps", probe::f32(h.f_norm_rms_eps)},
        {"rope_freq_base_train", probe::f32(h.rope_freq_base_train)},
        {"rope_freq_scale_train", probe::f32(h.rope_freq_scale_train)},
        {"rope_scaling_type_train", (int) h.rope_scaling_type_train},
        {"rope_attn_factor", probe::f32(h.rope_attn_factor)},
        {"rope_scaling_alpha", probe::f32(h.rope_scaling_alpha)},
        {"rope_finetuned", h.rope_finetuned},
        {"n_ctx_orig_yarn", h.n_ctx_orig_yarn},
        {"causal_attn", h.causal_attn},
        {"pooling_type", (int) h.pooling_type},
        {"rope_type", (int) h.rope_type},
        {"use_alibi", h.use_alibi},
        {"n_cls_out", h.n_cls_out},
    };
}

json vocab_json(const llama_model & m) {
    const llama_vocab * v = llama_model_get_vocab(&m);
    return {
        {"type", (int) llama_vocab_type(v)},
        {"n_tokens", llama_vocab_n_tokens(v)},
        {"bos", llama_vocab_bos(v)}, {"eos", llama_vocab_eos(v)}, {"eot", llama_vocab_eot(v)},
        {"sep", llama_vocab_sep(v)}, {"nl", llama_vocab_nl(v)}, {"pad", llama_vocab_pad(v)},
        {"mask", llama_vocab_mask(v)},
        {"fim_pre", llama_vocab_fim_pre(v)}, {"fim_suf", llama_vocab_fim_suf(v)},
        {"fim_mid", llama_vocab_fim_mid(v)}, {"fim_pad", llama_vocab_fim_pad(v)},
        {"fim_rep", llama_vocab_fim_rep(v)}, {"fim_sep", llama_vocab_fim_sep(v)},
        {"add_bos", llama_vocab_get_add_bos(v)}, {"add_eos", llama_vocab_get_add_eos(v)},
        {"add_sep", llama_vocab_get_add_sep(v)},
    };
}

}  // namespace

extern "C" void * ps_model_load(const char * path, int vocab_only, int use_mmap, int check_tensors,
                                int cancel_after, char ** out) {
    ggml_backend_load_all();
    progress_state st{cancel_after};
    llama_model_params params = llama_model_default_params();
    params.vocab_only = vocab_only;
    params.check_tensors = check_tensors;
    params.load_mode = use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
    params.use_extra_bufts = false;  // no weight repacking: buffers hold the file's bytes
    params.n_gpu_layers = 0;
    params.progress_callback = on_progress;
    params.progress_callback_user_data = &st;

    ps_log_take(nullptr, 0);
    llama_model * model = llama_model_load_from_file(path, params);

    json j;
    j["ok"] = model != nullptr;
    j["progress"] = st.values;
    if (model) {
        j["name"] = probe::str(model->name);
        j["vocab"] = vocab_json(*model);
        if (!vocab_only) {
            j["hparams"] = hparams_json(*model);
            json tensors = json::array();
            for (const auto & [name, t] : model->tensors_by_name) {
                tensors.push_back({{"name", name}, {"type", (int) t->type},
                                   {"ne", {t->ne[0], t->ne[1], t->ne[2], t->ne[3]}},
                                   {"nbytes", ggml_nbytes(t)}});
            }
            j["tensors"] = std::move(tensors);
        }
    }
    if (out) {
        *out = probe::dup(j);
    }
    return model;
}

extern "C" int ps_model_tensor_read(void * handle, const char * name, void * dst, size_t size) {
    auto * model = static_cast<llama_model *>(handle);
    for (const auto & [tname, t] : model->tensors_by_name) {
        if (tname == name) {
            if (size != ggml_nbytes(t) || t->buffer == nullptr) {
                return 0;
            }
            ggml_backend_tensor_get(t, dst, 0, size);
            return 1;
        }
    }
    return 0;
}

extern "C" void ps_model_free(void * handle) {
    llama_model_free(static_cast<llama_model *>(handle));
}
