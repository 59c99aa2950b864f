// The reference's ggml_gallocr_needs_realloc (ggml/src/ggml-alloc.c) is static: compile a
// private copy of ggml-alloc.c here, its exported names renamed so that nothing clashes with
// libggml-base, and export only a wrapper of the static check.  The copy's struct ggml_gallocr
// is the same definition compiled by the same compiler, so the wrapper reads a gallocr made by
// libggml-base (ggml_gallocr_new_n) exactly as libggml-base would.
#define ggml_op_can_inplace                            ps_copy_op_can_inplace
#define ggml_tallocr_new                               ps_copy_tallocr_new
#define ggml_tallocr_alloc                             ps_copy_tallocr_alloc
#define ggml_gallocr_new_n                             ps_copy_gallocr_new_n
#define ggml_gallocr_new                               ps_copy_gallocr_new
#define ggml_gallocr_free                              ps_copy_gallocr_free
#define ggml_gallocr_reserve_n_size                    ps_copy_gallocr_reserve_n_size
#define ggml_gallocr_reserve_n                         ps_copy_gallocr_reserve_n
#define ggml_gallocr_reserve                           ps_copy_gallocr_reserve
#define ggml_gallocr_alloc_graph                       ps_copy_gallocr_alloc_graph
#define ggml_gallocr_get_buffer_size                   ps_copy_gallocr_get_buffer_size
#define ggml_backend_alloc_ctx_tensors_from_buft_size  ps_copy_alloc_ctx_tensors_from_buft_size
#define ggml_backend_alloc_ctx_tensors_from_buft       ps_copy_alloc_ctx_tensors_from_buft
#define ggml_backend_alloc_ctx_tensors                 ps_copy_alloc_ctx_tensors

#include "ggml-alloc.c"

#include "probe.h"

int ps_gallocr_needs_realloc(void * galloc, void * graph) {
    return ggml_gallocr_needs_realloc((ggml_gallocr_t) galloc, (struct ggml_cgraph *) graph);
}
