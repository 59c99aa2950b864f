"""cffi: every C declaration pyggml uses, and the loading of the shared libraries.

ABI mode (``ffi.dlopen``): nothing is compiled at install time beyond the CMake build.
The libraries live in ``pyggml/lib`` (installed by CMakeLists.txt); ``PYGGML_LIB_DIR``
overrides that folder.  Sections: ggml (compute), gguf, probe (the reference; only
``pyggml.reference`` may call it).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import cffi

ffi = cffi.FFI()

# --- ggml ------------------------------------------------------------------------------
# (declarations of ggml.h / ggml-backend.h / ggml-alloc.h / ggml-cpu.h that pyggml.ggml uses)
GGML_CDEF = """
// ggml.h: constants and enums pyggml.ggml reads (enum ggml_type itself is
// gguf.GGMLQuantizationType on the Python side; here it is only a C type)
#define GGML_MAX_DIMS 4
#define GGML_MAX_SRC 10
#define GGML_MAX_OP_PARAMS 64
#define GGML_MAX_NAME 64
#define GGML_DEFAULT_GRAPH_SIZE 2048
#define GGML_ROPE_TYPE_NORMAL 0
#define GGML_ROPE_TYPE_NEOX 2
enum ggml_status {
    GGML_STATUS_ALLOC_FAILED = -2,
    GGML_STATUS_FAILED = -1,
    GGML_STATUS_SUCCESS = 0,
    GGML_STATUS_ABORTED = 1,
};
// ABI mode cannot take `...` in enums; the long value lists are not retyped (ggml_type is
// gguf.GGMLQuantizationType, op names come from ggml_op_name), only the first value is
// declared so that cffi sizes the enum as a 4-byte int.
enum ggml_type { GGML_TYPE_F32 = 0, GGML_TYPE_COUNT = 43 };
enum ggml_op { GGML_OP_NONE = 0 };
enum ggml_unary_op { GGML_UNARY_OP_ABS = 0 };
enum ggml_prec { GGML_PREC_UNDEFINED = 0, GGML_PREC_F32 = 10 };
enum ggml_glu_op {
    GGML_GLU_OP_REGLU, GGML_GLU_OP_GEGLU, GGML_GLU_OP_SWIGLU, GGML_GLU_OP_SWIGLU_OAI,
    GGML_GLU_OP_GEGLU_ERF, GGML_GLU_OP_GEGLU_QUICK, GGML_GLU_OP_SWIGLU_CLAMP, GGML_GLU_OP_COUNT,
};
enum ggml_sort_order { GGML_SORT_ORDER_ASC, GGML_SORT_ORDER_DESC };
enum ggml_log_level {
    GGML_LOG_LEVEL_NONE = 0, GGML_LOG_LEVEL_DEBUG = 1, GGML_LOG_LEVEL_INFO = 2,
    GGML_LOG_LEVEL_WARN = 3, GGML_LOG_LEVEL_ERROR = 4, GGML_LOG_LEVEL_CONT = 5,
};
enum ggml_tensor_flag {
    GGML_TENSOR_FLAG_INPUT = 1,
    GGML_TENSOR_FLAG_OUTPUT = 2,
    GGML_TENSOR_FLAG_PARAM = 4,
    GGML_TENSOR_FLAG_LOSS = 8,
    GGML_TENSOR_FLAG_COMPUTE = 16,
};
typedef uint16_t ggml_fp16_t;
typedef struct { uint16_t bits; } ggml_bf16_t;
typedef bool (*ggml_abort_callback)(void * data);
typedef void (*ggml_log_callback)(enum ggml_log_level level, const char * text, void * user_data);

struct ggml_context;
struct ggml_cgraph;
struct ggml_backend_buffer;

struct ggml_init_params {
    size_t mem_size;
    void * mem_buffer;
    bool   no_alloc;
};

// Field by field as ggml.h 0c1e57098 declares it (pyggml.ggml reads type/ne/nb/data/view_src
// directly; _native.ggml() compares sizeof with ggml_tensor_overhead at load).
struct ggml_tensor {
    enum ggml_type type;
    struct ggml_backend_buffer * buffer;
    int64_t ne[4];
    size_t  nb[4];
    enum ggml_op op;
    int32_t op_params[16];
    int32_t flags;
    struct ggml_tensor * src[10];
    struct ggml_tensor * view_src;
    size_t               view_offs;
    void * data;
    char name[64];
    void * extra;
    char padding[8];
};

void ggml_log_set(ggml_log_callback log_callback, void * user_data);
const char * ggml_status_to_string(enum ggml_status status);
const char * ggml_version(void);
const char * ggml_commit(void);

float       ggml_fp16_to_fp32(ggml_fp16_t);
ggml_fp16_t ggml_fp32_to_fp16(float);
void        ggml_fp16_to_fp32_row(const ggml_fp16_t *, float *, int64_t);
void        ggml_fp32_to_fp16_row(const float *, ggml_fp16_t *, int64_t);
void        ggml_bf16_to_fp32_row(const ggml_bf16_t *, float *, int64_t);
void        ggml_fp32_to_bf16_row(const float *, ggml_bf16_t *, int64_t);

// type and tensor facts
int64_t ggml_nelements(const struct ggml_tensor * tensor);
int64_t ggml_nrows(const struct ggml_tensor * tensor);
size_t  ggml_nbytes(const struct ggml_tensor * tensor);
size_t  ggml_nbytes_pad(const struct ggml_tensor * tensor);
int64_t ggml_blck_size(enum ggml_type type);
size_t  ggml_type_size(enum ggml_type type);
size_t  ggml_row_size(enum ggml_type type, int64_t ne);
const char * ggml_type_name(enum ggml_type type);
const char * ggml_op_name(enum ggml_op op);
const char * ggml_op_desc(const struct ggml_tensor * t);
const char * ggml_unary_op_name(enum ggml_unary_op op);
const char * ggml_glu_op_name(enum ggml_glu_op op);
size_t  ggml_element_size(const struct ggml_tensor * tensor);
bool    ggml_is_quantized(enum ggml_type type);
bool ggml_is_transposed(const struct ggml_tensor * tensor);
bool ggml_is_permuted(const struct ggml_tensor * tensor);
bool ggml_is_empty(const struct ggml_tensor * tensor);
bool ggml_is_view(const struct ggml_tensor * tensor);
bool ggml_is_scalar(const struct ggml_tensor * tensor);
bool ggml_is_vector(const struct ggml_tensor * tensor);
bool ggml_is_matrix(const struct ggml_tensor * tensor);
bool ggml_is_3d(const struct ggml_tensor * tensor);
int  ggml_n_dims(const struct ggml_tensor * tensor);
bool ggml_is_contiguous(const struct ggml_tensor * tensor);
bool ggml_is_contiguous_1(const struct ggml_tensor * tensor);
bool ggml_is_contiguous_2(const struct ggml_tensor * tensor);
bool ggml_is_contiguously_allocated(const struct ggml_tensor * tensor);
bool ggml_is_contiguous_rows(const struct ggml_tensor * tensor);
bool ggml_are_same_shape(const struct ggml_tensor * t0, const struct ggml_tensor * t1);
bool ggml_are_same_stride(const struct ggml_tensor * t0, const struct ggml_tensor * t1);
bool ggml_can_repeat(const struct ggml_tensor * t0, const struct ggml_tensor * t1);
size_t ggml_tensor_overhead(void);
bool ggml_validate_row_data(enum ggml_type type, const void * data, size_t nbytes);

// contexts
struct ggml_context * ggml_init(struct ggml_init_params params);
void   ggml_reset(struct ggml_context * ctx);
void   ggml_free(struct ggml_context * ctx);
size_t ggml_used_mem(const struct ggml_context * ctx);
bool   ggml_get_no_alloc(struct ggml_context * ctx);
void   ggml_set_no_alloc(struct ggml_context * ctx, bool no_alloc);
void * ggml_get_mem_buffer(const struct ggml_context * ctx);
size_t ggml_get_mem_size(const struct ggml_context * ctx);
size_t ggml_get_max_tensor_size(const struct ggml_context * ctx);

// tensors
struct ggml_tensor * ggml_new_tensor(struct ggml_context * ctx, enum ggml_type type, int n_dims,
                                     const int64_t * ne);
struct ggml_tensor * ggml_new_tensor_1d(struct ggml_context * ctx, enum ggml_type type, int64_t ne0);
struct ggml_tensor * ggml_new_tensor_2d(struct ggml_context * ctx, enum ggml_type type, int64_t ne0,
                                        int64_t ne1);
struct ggml_tensor * ggml_new_tensor_3d(struct ggml_context * ctx, enum ggml_type type, int64_t ne0,
                                        int64_t ne1, int64_t ne2);
struct ggml_tensor * ggml_new_tensor_4d(struct ggml_context * ctx, enum ggml_type type, int64_t ne0,
                                        int64_t ne1, int64_t ne2, int64_t ne3);
struct ggml_tensor * ggml_dup_tensor(struct ggml_context * ctx, const struct ggml_tensor * src);
struct ggml_tensor * ggml_view_tensor(struct ggml_context * ctx, struct ggml_tensor * src);
struct ggml_tensor * ggml_get_first_tensor(const struct ggml_context * ctx);
struct ggml_tensor * ggml_get_next_tensor(const struct ggml_context * ctx, struct ggml_tensor * tensor);
struct ggml_tensor * ggml_get_tensor(struct ggml_context * ctx, const char * name);
enum ggml_unary_op ggml_get_unary_op(const struct ggml_tensor * tensor);
enum ggml_glu_op ggml_get_glu_op(const struct ggml_tensor * tensor);
void * ggml_get_data(const struct ggml_tensor * tensor);
const char * ggml_get_name(const struct ggml_tensor * tensor);
struct ggml_tensor * ggml_set_name(struct ggml_tensor * tensor, const char * name);
void ggml_set_input(struct ggml_tensor * tensor);
void ggml_set_output(struct ggml_tensor * tensor);
void ggml_set_param(struct ggml_tensor * tensor);
struct ggml_tensor * ggml_set_zero(struct ggml_tensor * tensor);

// ops (all return a new node in ctx)
struct ggml_tensor * ggml_dup(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_add(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor * ggml_add_inplace(struct ggml_context * ctx, struct ggml_tensor * a,
                                      struct ggml_tensor * b);
struct ggml_tensor * ggml_add_cast(struct ggml_context * ctx, struct ggml_tensor * a,
                                   struct ggml_tensor * b, enum ggml_type type);
struct ggml_tensor * ggml_add_id(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b,
                                 struct ggml_tensor * ids);
struct ggml_tensor * ggml_sub(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor * ggml_mul(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor * ggml_mul_inplace(struct ggml_context * ctx, struct ggml_tensor * a,
                                      struct ggml_tensor * b);
struct ggml_tensor * ggml_div(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor * ggml_sqr(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_sqrt(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_log(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_sin(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_cos(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_sum(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_sum_rows(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_mean(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_argmax(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_repeat(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor * ggml_repeat_4d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0,
                                    int64_t ne1, int64_t ne2, int64_t ne3);
struct ggml_tensor * ggml_concat(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b,
                                 int dim);
struct ggml_tensor * ggml_abs(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_neg(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_tanh(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_elu(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_relu(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_sigmoid(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_gelu(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_gelu_erf(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_gelu_quick(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_silu(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_exp(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_softplus(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_glu(struct ggml_context * ctx, struct ggml_tensor * a, enum ggml_glu_op op,
                              bool swapped);
struct ggml_tensor * ggml_glu_split(struct ggml_context * ctx, struct ggml_tensor * a,
                                    struct ggml_tensor * b, enum ggml_glu_op op);
struct ggml_tensor * ggml_swiglu(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_swiglu_split(struct ggml_context * ctx, struct ggml_tensor * a,
                                       struct ggml_tensor * b);
struct ggml_tensor * ggml_geglu(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_geglu_split(struct ggml_context * ctx, struct ggml_tensor * a,
                                      struct ggml_tensor * b);
struct ggml_tensor * ggml_norm(struct ggml_context * ctx, struct ggml_tensor * a, float eps);
struct ggml_tensor * ggml_rms_norm(struct ggml_context * ctx, struct ggml_tensor * a, float eps);
struct ggml_tensor * ggml_group_norm(struct ggml_context * ctx, struct ggml_tensor * a, int n_groups,
                                     float eps);
struct ggml_tensor * ggml_l2_norm(struct ggml_context * ctx, struct ggml_tensor * a, float eps);
bool ggml_prec_set_acc(struct ggml_tensor * a, enum ggml_prec prec);
struct ggml_tensor * ggml_mul_mat(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor * ggml_mul_mat_id(struct ggml_context * ctx, struct ggml_tensor * as,
                                     struct ggml_tensor * b, struct ggml_tensor * ids);
struct ggml_tensor * ggml_out_prod(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor * ggml_scale(struct ggml_context * ctx, struct ggml_tensor * a, float s);
struct ggml_tensor * ggml_scale_inplace(struct ggml_context * ctx, struct ggml_tensor * a, float s);
struct ggml_tensor * ggml_scale_bias(struct ggml_context * ctx, struct ggml_tensor * a, float s, float b);
struct ggml_tensor * ggml_set_1d(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b,
                                 size_t offset);
struct ggml_tensor * ggml_set_2d(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b,
                                 size_t nb1, size_t offset);
struct ggml_tensor * ggml_cpy(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor * ggml_cast(struct ggml_context * ctx, struct ggml_tensor * a, enum ggml_type type);
struct ggml_tensor * ggml_cont(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_cont_4d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0,
                                  int64_t ne1, int64_t ne2, int64_t ne3);
struct ggml_tensor * ggml_reshape(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor * ggml_reshape_1d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0);
struct ggml_tensor * ggml_reshape_2d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0,
                                     int64_t ne1);
struct ggml_tensor * ggml_reshape_3d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0,
                                     int64_t ne1, int64_t ne2);
struct ggml_tensor * ggml_reshape_4d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0,
                                     int64_t ne1, int64_t ne2, int64_t ne3);
struct ggml_tensor * ggml_view_1d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0,
                                  size_t offset);
struct ggml_tensor * ggml_view_2d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0,
                                  int64_t ne1, size_t nb1, size_t offset);
struct ggml_tensor * ggml_view_3d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0,
                                  int64_t ne1, int64_t ne2, size_t nb1, size_t nb2, size_t offset);
struct ggml_tensor * ggml_view_4d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0,
                                  int64_t ne1, int64_t ne2, int64_t ne3, size_t nb1, size_t nb2,
                                  size_t nb3, size_t offset);
struct ggml_tensor * ggml_permute(struct ggml_context * ctx, struct ggml_tensor * a, int axis0, int axis1,
                                  int axis2, int axis3);
struct ggml_tensor * ggml_transpose(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_get_rows(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b);
struct ggml_tensor * ggml_set_rows(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b,
                                   struct ggml_tensor * c);
struct ggml_tensor * ggml_diag_mask_inf(struct ggml_context * ctx, struct ggml_tensor * a, int n_past);
struct ggml_tensor * ggml_clamp(struct ggml_context * ctx, struct ggml_tensor * a, float min, float max);
struct ggml_tensor * ggml_soft_max(struct ggml_context * ctx, struct ggml_tensor * a);
struct ggml_tensor * ggml_soft_max_ext(struct ggml_context * ctx, struct ggml_tensor * a,
                                       struct ggml_tensor * mask, float scale, float max_bias);
void ggml_soft_max_add_sinks(struct ggml_tensor * a, struct ggml_tensor * sinks);
struct ggml_tensor * ggml_rope_ext(struct ggml_context * ctx, struct ggml_tensor * a, struct ggml_tensor * b,
                                   struct ggml_tensor * c, int n_dims, int mode, int n_ctx_orig,
                                   float freq_base, float freq_scale, float ext_factor,
                                   float attn_factor, float beta_fast, float beta_slow);
struct ggml_tensor * ggml_rope_multi(struct ggml_context * ctx, struct ggml_tensor * a,
                                     struct ggml_tensor * b, struct ggml_tensor * c, int n_dims,
                                     int sections[4], int mode, int n_ctx_orig, float freq_base,
                                     float freq_scale, float ext_factor, float attn_factor,
                                     float beta_fast, float beta_slow);
void ggml_rope_yarn_corr_dims(int n_dims, int n_ctx_orig, float freq_base, float beta_fast,
                              float beta_slow, float dims[2]);
struct ggml_tensor * ggml_pad(struct ggml_context * ctx, struct ggml_tensor * a, int p0, int p1, int p2,
                              int p3);
struct ggml_tensor * ggml_argsort(struct ggml_context * ctx, struct ggml_tensor * a,
                                  enum ggml_sort_order order);
struct ggml_tensor * ggml_top_k(struct ggml_context * ctx, struct ggml_tensor * a, int k);
struct ggml_tensor * ggml_argsort_top_k(struct ggml_context * ctx, struct ggml_tensor * a, int k);
struct ggml_tensor * ggml_arange(struct ggml_context * ctx, float start, float stop, float step);
struct ggml_tensor * ggml_fill(struct ggml_context * ctx, struct ggml_tensor * a, float c);
struct ggml_tensor * ggml_flash_attn_ext(struct ggml_context * ctx, struct ggml_tensor * q,
                                         struct ggml_tensor * k, struct ggml_tensor * v,
                                         struct ggml_tensor * mask, float scale, float max_bias,
                                         float logit_softcap);
enum ggml_prec ggml_flash_attn_ext_get_prec(const struct ggml_tensor * a);
void ggml_flash_attn_ext_add_sinks(struct ggml_tensor * a, struct ggml_tensor * sinks);

// graphs
void ggml_build_forward_expand(struct ggml_cgraph * cgraph, struct ggml_tensor * tensor);
struct ggml_tensor * ggml_build_forward_select(struct ggml_cgraph * cgraph, struct ggml_tensor ** tensors,
                                               int n_tensors, int idx);
// the decoder's extra ops (llama-graph.cpp, llama-kv-cache.cpp)
struct ggml_tensor * ggml_cont_2d(struct ggml_context * ctx, struct ggml_tensor * a, int64_t ne0,
                                  int64_t ne1);
struct ggml_tensor * ggml_rope_ext_inplace(struct ggml_context * ctx, struct ggml_tensor * a,
                                           struct ggml_tensor * b, struct ggml_tensor * c, int n_dims,
                                           int mode, int n_ctx_orig, float freq_base, float freq_scale,
                                           float ext_factor, float attn_factor, float beta_fast,
                                           float beta_slow);
void ggml_flash_attn_ext_set_n_kv_max(struct ggml_tensor * a, int32_t n_kv_max);
struct ggml_cgraph * ggml_new_graph(struct ggml_context * ctx);
struct ggml_cgraph * ggml_new_graph_custom(struct ggml_context * ctx, size_t size, bool grads);
void ggml_graph_clear(struct ggml_cgraph * cgraph);
int  ggml_graph_size(struct ggml_cgraph * cgraph);
struct ggml_tensor * ggml_graph_node(struct ggml_cgraph * cgraph, int i);
struct ggml_tensor ** ggml_graph_nodes(struct ggml_cgraph * cgraph);
int  ggml_graph_n_nodes(struct ggml_cgraph * cgraph);
size_t ggml_graph_overhead(void);
size_t ggml_graph_overhead_custom(size_t size, bool grads);
struct ggml_tensor * ggml_graph_get_tensor(const struct ggml_cgraph * cgraph, const char * name);

// ggml-alloc.h
typedef struct ggml_backend_buffer_type * ggml_backend_buffer_type_t;
typedef struct ggml_backend_buffer * ggml_backend_buffer_t;
typedef struct ggml_backend * ggml_backend_t;
struct ggml_tallocr {
    ggml_backend_buffer_t buffer;
    void * base;
    size_t alignment;
    size_t offset;
};
struct ggml_tallocr ggml_tallocr_new(ggml_backend_buffer_t buffer);
enum ggml_status ggml_tallocr_alloc(struct ggml_tallocr * talloc, struct ggml_tensor * tensor);
typedef struct ggml_gallocr * ggml_gallocr_t;
ggml_gallocr_t ggml_gallocr_new(ggml_backend_buffer_type_t buft);
ggml_gallocr_t ggml_gallocr_new_n(ggml_backend_buffer_type_t * bufts, int n_bufs);
void ggml_gallocr_free(ggml_gallocr_t galloc);
bool ggml_gallocr_reserve(ggml_gallocr_t galloc, struct ggml_cgraph * graph);
bool ggml_gallocr_reserve_n(ggml_gallocr_t galloc, struct ggml_cgraph * graph, const int * node_buffer_ids,
                            const int * leaf_buffer_ids);
bool ggml_gallocr_alloc_graph(ggml_gallocr_t galloc, struct ggml_cgraph * graph);
size_t ggml_gallocr_get_buffer_size(ggml_gallocr_t galloc, int buffer_id);
size_t ggml_backend_alloc_ctx_tensors_from_buft_size(struct ggml_context * ctx,
                                                     ggml_backend_buffer_type_t buft);
struct ggml_backend_buffer * ggml_backend_alloc_ctx_tensors_from_buft(struct ggml_context * ctx,
                                                                     ggml_backend_buffer_type_t buft);
struct ggml_backend_buffer * ggml_backend_alloc_ctx_tensors(struct ggml_context * ctx,
                                                           ggml_backend_t backend);

// ggml-backend.h
typedef struct ggml_backend_event * ggml_backend_event_t;
typedef struct ggml_backend_reg * ggml_backend_reg_t;
typedef struct ggml_backend_device * ggml_backend_dev_t;
enum ggml_backend_buffer_usage {
    GGML_BACKEND_BUFFER_USAGE_ANY = 0,
    GGML_BACKEND_BUFFER_USAGE_WEIGHTS = 1,
    GGML_BACKEND_BUFFER_USAGE_COMPUTE = 2,
};
enum ggml_backend_dev_type {
    GGML_BACKEND_DEVICE_TYPE_CPU,
    GGML_BACKEND_DEVICE_TYPE_GPU,
    GGML_BACKEND_DEVICE_TYPE_IGPU,
    GGML_BACKEND_DEVICE_TYPE_ACCEL,
    GGML_BACKEND_DEVICE_TYPE_META,
};
struct ggml_backend_dev_caps {
    bool async;
    bool host_buffer;
    bool buffer_from_host_ptr;
    bool events;
    bool mmap_support;
};
struct ggml_backend_dev_props {
    const char * name;
    const char * description;
    size_t memory_free;
    size_t memory_total;
    enum ggml_backend_dev_type type;
    const char * device_id;
    struct ggml_backend_dev_caps caps;
};
const char * ggml_backend_buft_name(ggml_backend_buffer_type_t buft);
ggml_backend_buffer_t ggml_backend_buft_alloc_buffer(ggml_backend_buffer_type_t buft, size_t size);
size_t ggml_backend_buft_get_alignment(ggml_backend_buffer_type_t buft);
size_t ggml_backend_buft_get_max_size(ggml_backend_buffer_type_t buft);
size_t ggml_backend_buft_get_alloc_size(ggml_backend_buffer_type_t buft, const struct ggml_tensor * tensor);
bool   ggml_backend_buft_is_host(ggml_backend_buffer_type_t buft);
ggml_backend_dev_t ggml_backend_buft_get_device(ggml_backend_buffer_type_t buft);
const char * ggml_backend_buffer_name(ggml_backend_buffer_t buffer);
void   ggml_backend_buffer_free(ggml_backend_buffer_t buffer);
void * ggml_backend_buffer_get_base(ggml_backend_buffer_t buffer);
size_t ggml_backend_buffer_get_size(ggml_backend_buffer_t buffer);
enum ggml_status ggml_backend_buffer_init_tensor(ggml_backend_buffer_t buffer, struct ggml_tensor * tensor);
size_t ggml_backend_buffer_get_alignment(ggml_backend_buffer_t buffer);
size_t ggml_backend_buffer_get_max_size(ggml_backend_buffer_t buffer);
size_t ggml_backend_buffer_get_alloc_size(ggml_backend_buffer_t buffer, const struct ggml_tensor * tensor);
void   ggml_backend_buffer_clear(ggml_backend_buffer_t buffer, uint8_t value);
bool   ggml_backend_buffer_is_host(ggml_backend_buffer_t buffer);
void   ggml_backend_buffer_set_usage(ggml_backend_buffer_t buffer, enum ggml_backend_buffer_usage usage);
enum ggml_backend_buffer_usage ggml_backend_buffer_get_usage(ggml_backend_buffer_t buffer);
ggml_backend_buffer_type_t ggml_backend_buffer_get_type(ggml_backend_buffer_t buffer);
void   ggml_backend_buffer_reset(ggml_backend_buffer_t buffer);
void   ggml_backend_tensor_copy(const struct ggml_tensor * src, struct ggml_tensor * dst);
const char * ggml_backend_name(ggml_backend_t backend);
void   ggml_backend_free(ggml_backend_t backend);
ggml_backend_buffer_type_t ggml_backend_get_default_buffer_type(ggml_backend_t backend);
ggml_backend_buffer_t ggml_backend_alloc_buffer(ggml_backend_t backend, size_t size);
size_t ggml_backend_get_alignment(ggml_backend_t backend);
size_t ggml_backend_get_max_size(ggml_backend_t backend);
void ggml_backend_tensor_set_async(ggml_backend_t backend, struct ggml_tensor * tensor, const void * data,
                                   size_t offset, size_t size);
void ggml_backend_tensor_get_async(ggml_backend_t backend, const struct ggml_tensor * tensor, void * data,
                                   size_t offset, size_t size);
void ggml_backend_tensor_set(struct ggml_tensor * tensor, const void * data, size_t offset, size_t size);
void ggml_backend_tensor_get(const struct ggml_tensor * tensor, void * data, size_t offset, size_t size);
void ggml_backend_tensor_memset(struct ggml_tensor * tensor, uint8_t value, size_t offset, size_t size);
void ggml_backend_synchronize(ggml_backend_t backend);
enum ggml_status ggml_backend_graph_compute(ggml_backend_t backend, struct ggml_cgraph * cgraph);
enum ggml_status ggml_backend_graph_compute_async(ggml_backend_t backend, struct ggml_cgraph * cgraph);
bool ggml_backend_supports_op(ggml_backend_t backend, const struct ggml_tensor * op);
bool ggml_backend_supports_buft(ggml_backend_t backend, ggml_backend_buffer_type_t buft);
ggml_backend_dev_t ggml_backend_get_device(ggml_backend_t backend);
const char * ggml_backend_dev_name(ggml_backend_dev_t device);
const char * ggml_backend_dev_description(ggml_backend_dev_t device);
void ggml_backend_dev_memory(ggml_backend_dev_t device, size_t * free, size_t * total);
enum ggml_backend_dev_type ggml_backend_dev_type(ggml_backend_dev_t device);
void ggml_backend_dev_get_props(ggml_backend_dev_t device, struct ggml_backend_dev_props * props);
ggml_backend_t ggml_backend_dev_init(ggml_backend_dev_t device, const char * params);
ggml_backend_buffer_type_t ggml_backend_dev_buffer_type(ggml_backend_dev_t device);
ggml_backend_buffer_type_t ggml_backend_dev_host_buffer_type(ggml_backend_dev_t device);
ggml_backend_buffer_t ggml_backend_dev_buffer_from_host_ptr(ggml_backend_dev_t device, void * ptr,
                                                            size_t size, size_t max_tensor_size);
bool ggml_backend_dev_supports_op(ggml_backend_dev_t device, const struct ggml_tensor * op);
const char * ggml_backend_reg_name(ggml_backend_reg_t reg);
size_t ggml_backend_reg_dev_count(ggml_backend_reg_t reg);
ggml_backend_dev_t ggml_backend_reg_dev_get(ggml_backend_reg_t reg, size_t index);
void * ggml_backend_reg_get_proc_address(ggml_backend_reg_t reg, const char * name);
ggml_backend_reg_t ggml_backend_dev_backend_reg(ggml_backend_dev_t device);
typedef ggml_backend_buffer_type_t * (*ggml_backend_dev_get_extra_bufts_t)(ggml_backend_dev_t device);
typedef void (*ggml_backend_set_n_threads_t)(ggml_backend_t backend, int n_threads);
typedef void (*ggml_backend_set_abort_callback_t)(ggml_backend_t backend, ggml_abort_callback abort_callback,
                                                  void * abort_callback_data);
size_t ggml_backend_reg_count(void);
ggml_backend_reg_t ggml_backend_reg_get(size_t index);
ggml_backend_reg_t ggml_backend_reg_by_name(const char * name);
size_t ggml_backend_dev_count(void);
ggml_backend_dev_t ggml_backend_dev_get(size_t index);
ggml_backend_dev_t ggml_backend_dev_by_name(const char * name);
ggml_backend_dev_t ggml_backend_dev_by_type(enum ggml_backend_dev_type type);
ggml_backend_t ggml_backend_init_by_name(const char * name, const char * params);
ggml_backend_t ggml_backend_init_by_type(enum ggml_backend_dev_type type, const char * params);
ggml_backend_t ggml_backend_init_best(void);
typedef struct ggml_backend_sched * ggml_backend_sched_t;
typedef bool (*ggml_backend_sched_eval_callback)(struct ggml_tensor * t, bool ask, void * user_data);
ggml_backend_sched_t ggml_backend_sched_new(ggml_backend_t * backends, ggml_backend_buffer_type_t * bufts,
                                            int n_backends, size_t graph_size, bool parallel,
                                            bool op_offload);
void ggml_backend_sched_free(ggml_backend_sched_t sched);
void ggml_backend_sched_reserve_size(ggml_backend_sched_t sched, struct ggml_cgraph * measure_graph,
                                     size_t * sizes);
bool ggml_backend_sched_reserve(ggml_backend_sched_t sched, struct ggml_cgraph * measure_graph);
int  ggml_backend_sched_get_n_backends(ggml_backend_sched_t sched);
ggml_backend_t ggml_backend_sched_get_backend(ggml_backend_sched_t sched, int i);
int  ggml_backend_sched_get_n_splits(ggml_backend_sched_t sched);
int  ggml_backend_sched_get_n_copies(ggml_backend_sched_t sched);
ggml_backend_buffer_type_t ggml_backend_sched_get_buffer_type(ggml_backend_sched_t sched,
                                                              ggml_backend_t backend);
size_t ggml_backend_sched_get_buffer_size(ggml_backend_sched_t sched, ggml_backend_t backend);
void ggml_backend_sched_set_tensor_backend(ggml_backend_sched_t sched, struct ggml_tensor * node,
                                           ggml_backend_t backend);
ggml_backend_t ggml_backend_sched_get_tensor_backend(ggml_backend_sched_t sched, struct ggml_tensor * node);
bool ggml_backend_sched_alloc_graph(ggml_backend_sched_t sched, struct ggml_cgraph * graph);
enum ggml_status ggml_backend_sched_graph_compute(ggml_backend_sched_t sched, struct ggml_cgraph * graph);
enum ggml_status ggml_backend_sched_graph_compute_async(ggml_backend_sched_t sched,
                                                        struct ggml_cgraph * graph);
void ggml_backend_sched_synchronize(ggml_backend_sched_t sched);
void ggml_backend_sched_reset(ggml_backend_sched_t sched);
void ggml_backend_sched_set_eval_callback(ggml_backend_sched_t sched,
                                          ggml_backend_sched_eval_callback callback, void * user_data);
enum ggml_status ggml_backend_tensor_alloc(ggml_backend_buffer_t buffer, struct ggml_tensor * tensor,
                                           void * addr);
enum ggml_status ggml_backend_view_init(struct ggml_tensor * tensor);
ggml_backend_buffer_t ggml_backend_cpu_buffer_from_ptr(void * ptr, size_t size);
ggml_backend_buffer_type_t ggml_backend_cpu_buffer_type(void);

// ggml-cpu.h
enum ggml_status ggml_graph_compute_with_ctx(struct ggml_context * ctx, struct ggml_cgraph * cgraph,
                                             int n_threads);
void ggml_cpu_init(void);
ggml_backend_t ggml_backend_cpu_init(void);
bool ggml_backend_is_cpu(ggml_backend_t backend);
void ggml_backend_cpu_set_n_threads(ggml_backend_t backend_cpu, int n_threads);
void ggml_backend_cpu_set_abort_callback(ggml_backend_t backend_cpu, ggml_abort_callback abort_callback,
                                         void * abort_callback_data);
ggml_backend_reg_t ggml_backend_cpu_reg(void);
"""

# --- probe (tools/paritychecker/probe/probe.h) -----------------------------------------
PROBE_CDEF = """
void   ps_log_capture(int echo);
size_t ps_log_take(char * out, size_t cap);
void   ps_free(void * p);
int    ps_gguf_parse_buffer(const void * data, size_t size, int with_data, char ** json);
int    ps_gguf_parse_file(const char * path, int no_alloc, char ** json);
void * ps_model_load(const char * path, int vocab_only, int use_mmap, int check_tensors,
                     int cancel_after, char ** json);
int    ps_model_tensor_read(void * model, const char * name, void * dst, size_t size);
void   ps_model_free(void * model);
// sampling (probe_sampling.cpp)
void * ps_sampler_init_dry_testing(float multiplier, float base, int32_t allowed_length,
                                   int32_t penalty_last_n, const int32_t * tokens,
                                   const int32_t * lengths, size_t n_breakers);
void   ps_libm_f32(int op, const float * x, float * y, size_t n);
// the reference tools' sampler (probe_common_sampling.cpp)
void *   ps_csmpl_host_new(const char * model_path, char ** json);
void     ps_csmpl_host_free(void * host);
void *   ps_csmpl_new(void * host, const char * params_json, char ** json);
void     ps_csmpl_free(void * smpl);
void *   ps_csmpl_clone(void * smpl);
void     ps_csmpl_reset(void * smpl);
void *   ps_csmpl_chain(void * smpl);
uint32_t ps_csmpl_seed(void * smpl);
void     ps_csmpl_accept(void * smpl, int32_t token, int is_generated);
int32_t  ps_csmpl_sample(void * smpl, void * host, const float * logits, int64_t * selected);
int64_t  ps_csmpl_candidates(void * smpl, int32_t * ids, float * logits, float * p, int64_t cap,
                             int * sorted);
// grammar
int    ps_grammar_parse(const char * src, char ** json);
void * ps_grammar_init(void * model, const char * src, const char * root, int lazy,
                       const char ** patterns, int n_patterns, const int32_t * tokens, int n_tokens,
                       char ** json);
void   ps_grammar_free(void * grammar);
void * ps_grammar_clone(void * grammar);
char * ps_grammar_state(void * grammar);
int    ps_grammar_accept(void * grammar, int kind, int32_t token, const char * piece, size_t len,
                         char ** json);
int    ps_grammar_apply(void * grammar, const int32_t * ids, size_t n, uint8_t * keep);
int    ps_grammar_vocab_pieces(void * model, char ** json);
// jinja
int    ps_jinja_render(const char * tmpl, const char * vars_json, int mark_input, char ** json);
int    ps_chat_apply_common(const char * tmpl, const char * inputs_json, char ** json);
// batch
int    ps_batch_run(const char * spec_json, char ** out_json);
void * ps_batch_bench_new(const char * spec_json);
int    ps_batch_bench_run(void * handle, int mode, uint32_t n_ubatch);
void   ps_batch_bench_free(void * handle);
// kv
int    ps_kv_cells_run(const char * program_json, char ** out_json);
void   ps_swa_is_masked(uint32_t n_swa, int swa_type, const int32_t * p0s, int n0,
                        const int32_t * p1s, int n1, uint8_t * out);
int    ps_memory_status_combine(int s0, int s1);
int    ps_memory_status_is_fail(int s);
int    ps_kv_run(const char * spec_json, char ** out_json);
void * ps_kv_bench_new(uint32_t kv_size, uint32_t n_fill);
int    ps_kv_bench_step(void * handle, uint32_t n_tokens, int mask);
void   ps_kv_bench_free(void * handle);
// json schema (probe_json_schema.cpp)
int    ps_json_schema_to_grammar(const char * schema_text, int force_gbnf, char ** json);
int    ps_json_schema_build_grammar(const char * schema_text, const char * name, int dotall, char ** json);
// kv hot-path bench (probe_kvperf.cpp)
void * ps_kvperf_new(uint32_t kv_size, uint32_t n_fill, uint32_t n_tokens, int applied);
int    ps_kvperf_slot(void * handle);
int    ps_kvperf_mask(void * handle, int f16);
void   ps_kvperf_free(void * handle);
// allocator (probe_alloc.cpp, probe_alloc_static.c)
int     ps_alloc_run(const char * scenario_json, char ** out_json);
int     ps_alloc_decode_graph(const char * model_path, const char * params_json, char ** out_json);
void *  ps_alloc_bench_new(const char * scenario_json);
int64_t ps_alloc_bench_run(void * handle, int mode, int iters);
void    ps_alloc_bench_free(void * handle);
int     ps_gallocr_needs_realloc(void * galloc, void * graph);
// decode (probe_decode.cpp)
void * ps_dec_model_load(const char * path, const char * params_json, char ** json);
void   ps_dec_model_free(void * model);
void * ps_dec_ctx_new(void * model, const char * cparams_json, char ** json);
void   ps_dec_ctx_free(void * ctx);
int    ps_dec_decode(void * ctx, int32_t n_tokens, const int32_t * tokens, const int32_t * pos,
                     const int32_t * n_seq_id, const int32_t * seq_id_flat, const int8_t * logits);
int    ps_dec_encode(void * ctx, int32_t n_tokens, const int32_t * tokens, const int32_t * pos,
                     const int32_t * n_seq_id, const int32_t * seq_id_flat, const int8_t * logits);
int    ps_dec_embeddings_ith(void * ctx, int32_t i, float * out, int32_t n);
int    ps_dec_embeddings_seq(void * ctx, int32_t seq_id, float * out, int32_t n);
int    ps_dec_last_log(void * ctx, char ** text);
int    ps_dec_logits(void * ctx, int32_t i, float * out);
int    ps_dec_n_outputs(void * ctx);
int    ps_dec_logits_all(void * ctx, float * out);
int    ps_dec_memory(void * ctx, const char * op, int32_t a, int32_t b, int32_t c, int32_t d);
int    ps_dec_kv_state(void * ctx, char ** json);
int    ps_dec_graph(void * ctx, char ** json);
int    ps_graph_dump(void * cgraph, char ** json);
int    ps_dec_stats(void * ctx, char ** json);
void   ps_dec_set_abort(void * ctx, int32_t after);
void   ps_dec_set_threads(void * ctx, int32_t n, int32_t n_batch);
// generate (probe_generate.cpp)
int    ps_gen_run(void * model, const char * cparams_json, const char * request_json, char ** json);
int    ps_gen_run_ctx(void * ctx, const char * request_json, char ** json);
size_t ps_gen_find_partial_stop(const char * str, size_t n, const char * stop, size_t m);
"""

# --- llama.h (the reference's public C API; only pyggml.reference calls it) -------------
# Only functions with plain signatures are declared; structs passed by value stay in the probe.
# Each area owns one block; a function is declared in exactly one block.
LLAMA_BASE_CDEF = """
typedef int32_t llama_token;
typedef int32_t llama_pos;
typedef int32_t llama_seq_id;
struct llama_model;
struct llama_vocab;
struct llama_context;
const struct llama_vocab * llama_model_get_vocab(const struct llama_model * model);
"""
LLAMA_VOCAB_CDEF = """
int32_t     llama_vocab_n_tokens(const struct llama_vocab * vocab);
int         llama_vocab_type(const struct llama_vocab * vocab);
const char * llama_vocab_get_text(const struct llama_vocab * vocab, llama_token token);
float       llama_vocab_get_score(const struct llama_vocab * vocab, llama_token token);
int         llama_vocab_get_attr(const struct llama_vocab * vocab, llama_token token);
bool        llama_vocab_is_eog(const struct llama_vocab * vocab, llama_token token);
bool        llama_vocab_is_control(const struct llama_vocab * vocab, llama_token token);
llama_token llama_vocab_bos(const struct llama_vocab * vocab);
llama_token llama_vocab_eos(const struct llama_vocab * vocab);
llama_token llama_vocab_eot(const struct llama_vocab * vocab);
llama_token llama_vocab_sep(const struct llama_vocab * vocab);
llama_token llama_vocab_nl(const struct llama_vocab * vocab);
llama_token llama_vocab_pad(const struct llama_vocab * vocab);
llama_token llama_vocab_mask(const struct llama_vocab * vocab);
bool        llama_vocab_get_add_bos(const struct llama_vocab * vocab);
bool        llama_vocab_get_add_eos(const struct llama_vocab * vocab);
bool        llama_vocab_get_add_sep(const struct llama_vocab * vocab);
llama_token llama_vocab_fim_pre(const struct llama_vocab * vocab);
llama_token llama_vocab_fim_suf(const struct llama_vocab * vocab);
llama_token llama_vocab_fim_mid(const struct llama_vocab * vocab);
llama_token llama_vocab_fim_pad(const struct llama_vocab * vocab);
llama_token llama_vocab_fim_rep(const struct llama_vocab * vocab);
llama_token llama_vocab_fim_sep(const struct llama_vocab * vocab);
int32_t llama_tokenize(const struct llama_vocab * vocab, const char * text, int32_t text_len,
                       llama_token * tokens, int32_t n_tokens_max, bool add_special, bool parse_special);
int32_t llama_token_to_piece(const struct llama_vocab * vocab, llama_token token, char * buf, int32_t length,
                             int32_t lstrip, bool special);
int32_t llama_detokenize(const struct llama_vocab * vocab, const llama_token * tokens, int32_t n_tokens,
                         char * text, int32_t text_len_max, bool remove_special, bool unparse_special);
"""
LLAMA_SAMPLER_CDEF = """
typedef struct llama_token_data { llama_token id; float logit; float p; } llama_token_data;
typedef struct llama_token_data_array {
    llama_token_data * data;
    size_t size;
    int64_t selected;
    bool sorted;
} llama_token_data_array;
typedef struct llama_logit_bias { llama_token token; float bias; } llama_logit_bias;
typedef struct llama_sampler_chain_params { bool no_perf; } llama_sampler_chain_params;
struct llama_sampler;
struct llama_sampler_chain_params llama_sampler_chain_default_params(void);
struct llama_sampler * llama_sampler_chain_init(struct llama_sampler_chain_params params);
void    llama_sampler_chain_add(struct llama_sampler * chain, struct llama_sampler * smpl);
struct llama_sampler * llama_sampler_chain_get(struct llama_sampler * chain, int32_t i);
int32_t llama_sampler_chain_n(const struct llama_sampler * chain);
const char * llama_sampler_name(const struct llama_sampler * smpl);
void    llama_sampler_accept(struct llama_sampler * smpl, llama_token token);
void    llama_sampler_apply(struct llama_sampler * smpl, llama_token_data_array * cur_p);
void    llama_sampler_reset(struct llama_sampler * smpl);
struct llama_sampler * llama_sampler_clone(const struct llama_sampler * smpl);
void    llama_sampler_free(struct llama_sampler * smpl);
uint32_t llama_sampler_get_seed(const struct llama_sampler * smpl);
struct llama_sampler * llama_sampler_init_greedy(void);
struct llama_sampler * llama_sampler_init_dist(uint32_t seed);
struct llama_sampler * llama_sampler_init_top_k(int32_t k);
struct llama_sampler * llama_sampler_init_top_p(float p, size_t min_keep);
struct llama_sampler * llama_sampler_init_min_p(float p, size_t min_keep);
struct llama_sampler * llama_sampler_init_typical(float p, size_t min_keep);
struct llama_sampler * llama_sampler_init_temp(float t);
struct llama_sampler * llama_sampler_init_temp_ext(float t, float delta, float exponent);
struct llama_sampler * llama_sampler_init_xtc(float p, float t, size_t min_keep, uint32_t seed);
struct llama_sampler * llama_sampler_init_top_n_sigma(float n);
struct llama_sampler * llama_sampler_init_mirostat(int32_t n_vocab, uint32_t seed, float tau,
                                                   float eta, int32_t m);
struct llama_sampler * llama_sampler_init_mirostat_v2(uint32_t seed, float tau, float eta);
struct llama_sampler * llama_sampler_init_penalties(int32_t n_vocab, int32_t penalty_last_n,
                                                    float penalty_repeat, float penalty_freq,
                                                    float penalty_present);
struct llama_sampler * llama_sampler_init_dry(const struct llama_vocab * vocab,
                                              float dry_multiplier, float dry_base,
                                              int32_t dry_allowed_length,
                                              int32_t dry_penalty_last_n,
                                              const char ** seq_breakers, size_t num_breakers);
struct llama_sampler * llama_sampler_init_adaptive_p(float target, float decay, uint32_t seed);
struct llama_sampler * llama_sampler_init_infill(const struct llama_vocab * vocab);
struct llama_sampler * llama_sampler_init_logit_bias(int32_t n_vocab, int32_t n_logit_bias,
                                                     const llama_logit_bias * logit_bias);
"""

# --- libpyggml_stl (csrc/stlsort.cpp) ----------------------------------------------------
STL_CDEF = """
void pyggml_std_sort(const double * keys, int64_t * order, int64_t n);
void pyggml_std_partial_sort(const double * keys, int64_t * order, int64_t n, int64_t middle);
void pyggml_bucket_sort(const double * keys, const int32_t * bucket, int64_t n, int32_t n_buckets,
                        int64_t npartial, int64_t * out);
"""

ffi.cdef(GGML_CDEF)
ffi.cdef(STL_CDEF)
ffi.cdef(PROBE_CDEF)
ffi.cdef(LLAMA_BASE_CDEF)
ffi.cdef(LLAMA_VOCAB_CDEF)
ffi.cdef(LLAMA_SAMPLER_CDEF)


def lib_dir() -> Path:
    """The folder holding the shared libraries of this install."""
    override = os.environ.get("PYGGML_LIB_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent / "lib"
    if here.is_dir():
        return here
    # editable installs keep compiled files in site-packages, Python files in the checkout
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        located = Path(str(distribution("pyggml").locate_file("pyggml/lib")))
    except PackageNotFoundError:
        located = here
    if located.is_dir():
        return located
    raise ImportError(f"pyggml's shared libraries are missing (looked in {here}); "
                      "build with `pip install -e .` or set PYGGML_LIB_DIR")


def _soname(stem: str) -> str:
    if sys.platform == "darwin":
        return f"lib{stem}.dylib"
    if sys.platform == "win32":
        return f"{stem}.dll"
    return f"lib{stem}.so"


@functools.cache
def _open(stem: str):
    path = lib_dir() / _soname(stem)
    if not path.exists():
        raise ImportError(f"missing shared library {path}")
    return ffi.dlopen(str(path))


class _Libraries:
    """One namespace over several cffi library handles (ggml's symbols are spread over three).

    libggml-base holds the core (contexts, tensors, ops, graphs, ggml-alloc, buffers and
    backends in general), libggml-cpu the CPU backend and ``ggml_graph_compute*``, libggml the
    backend registry.  A cffi ABI handle only resolves what ``dlsym`` on that handle finds;
    glibc happens to search a library's dependencies too, but macOS/Windows do not, so each
    name is looked up in every handle in turn (the library that defines it first) and the
    bound function is cached as an attribute: after the first call a lookup costs what a
    plain cffi ``lib.name`` costs.
    """

    def __init__(self, *handles) -> None:
        self._handles = handles

    def __getattr__(self, name: str):
        for handle in self._handles:
            try:
                value = getattr(handle, name)
            except AttributeError:
                continue
            if callable(value):  # enum constants stay on the handle; functions are cached
                setattr(self, name, value)
            return value
        raise AttributeError(f"no ggml library defines {name!r}")


# The tensor layout GGML_CDEF declares, checked against the library once: ggml_tensor_overhead()
# is sizeof(struct ggml_object) + sizeof(struct ggml_tensor), and ggml_object is 32 bytes on
# 64-bit builds (ggml.c: size_t offs, size; ggml_object * next; enum type; char padding[4]).
_GGML_OBJECT_SIZE = 32


@functools.cache
def ggml():
    """ggml's C API as one namespace (ggml-base, ggml-cpu and ggml; see ``_Libraries``)."""
    lib = _Libraries(_open("ggml-base"), _open("ggml-cpu"), _open("ggml"))
    expected = lib.ggml_tensor_overhead() - _GGML_OBJECT_SIZE
    if ffi.sizeof("struct ggml_tensor") != expected:
        raise ImportError(f"struct ggml_tensor in GGML_CDEF is {ffi.sizeof('struct ggml_tensor')} bytes, "
                          f"the library's is {expected}: update GGML_CDEF from ggml.h")
    return lib


def stl():
    """libpyggml_stl: libstdc++'s std::sort / std::partial_sort compiled (pyggml._stlsort)."""
    return _open("pyggml_stl")


def llama():
    """The reference's libllama (public llama.h API). Only pyggml.reference calls this."""
    probe()  # loads libllama with the probe and routes its logs into the capture buffer
    return _open("llama")


def probe():
    """The reference probe (links llama, llama-common and ggml). Only pyggml.reference calls this."""
    lib = _open("pyggml_probe")
    lib.ps_log_capture(0)
    return lib
