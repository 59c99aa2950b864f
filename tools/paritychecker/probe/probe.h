// pyggml probe: a plain C API over the reference (llama.cpp 0c1e57098).
// Results that have structure come back as malloc'd JSON strings (free with ps_free).
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// logging
void   ps_log_capture(int echo);
size_t ps_log_take(char * out, size_t cap);   // returns the captured length; clears when out != NULL
void   ps_free(void * p);

// gguf (ggml/src/gguf.cpp): parse a file or a memory buffer.
// Returns 1 on accept, 0 on reject; *json receives the summary on accept.
int ps_gguf_parse_buffer(const void * data, size_t size, int with_data, char ** json);
int ps_gguf_parse_file(const char * path, int no_alloc, char ** json);

// model load (llama.h semantics). cancel_after < 0: never cancel; else the progress callback
// returns false at its (cancel_after)-th call. Returns a model handle or NULL; *json receives
// {"status": ..., "progress": [...], "hparams": {...}, "tensors": [...]} (also on failure).
void * ps_model_load(const char * path, int vocab_only, int use_mmap, int check_tensors,
                     int cancel_after, char ** json);
int    ps_model_tensor_read(void * model, const char * name, void * dst, size_t size);
void   ps_model_free(void * model);

// jinja (common/jinja engine, common/chat.cpp chat layer). Both return 1 on success, 0 when the
// reference threw; *json receives {"ok", "error"} plus, for ps_jinja_render,
// "parts": [[text_hex, is_input], ...] and, for ps_chat_apply_common, "prompt" (hex).
int ps_jinja_render(const char * tmpl, const char * vars_json, int mark_input, char ** json);
int ps_chat_apply_common(const char * tmpl, const char * inputs_json, char ** json);

// batch (src/llama-batch.cpp): build a llama_batch_ext (builder ops or the legacy llama_batch
// path), llama_batch_allocr::init, then split plans. JSON in, JSON out (probe_batch.cpp).
// Returns 0, or -1 when a C++ exception was caught (*out_json = {"exception": ...}).
int    ps_batch_run(const char * spec_json, char ** out_json);
void * ps_batch_bench_new(const char * spec_json);
int    ps_batch_bench_run(void * handle, int mode, uint32_t n_ubatch);
void   ps_batch_bench_free(void * handle);

// sampling (probe_sampling.cpp): llama_sampler_init_dry_testing with the breakers as token
// sequences (tokens concatenated, lengths[i] tokens each); NULL when the reference threw.
// ps_libm_f32: op 0 expf, 1 logf, 2 log2f over x[0..n) (the libm the reference uses).
void * ps_sampler_init_dry_testing(float multiplier, float base, int32_t allowed_length,
                                   int32_t penalty_last_n, const int32_t * tokens,
                                   const int32_t * lengths, size_t n_breakers);
void   ps_libm_f32(int op, const float * x, float * y, size_t n);

// the reference tools' sampler (probe_common_sampling.cpp, common/sampling.cpp). A host is a model
// plus a context that decoded one token (its logits row is overwritten before each sample).
// ps_csmpl_new: common_sampler_init from common_params_sampling fields as JSON (NULL when it
// threw: *json = {"exception": what(), "type": its class}); ps_csmpl_chain: its llama_sampler
// chain (borrowed).
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

// grammar (src/llama-grammar.cpp): results are JSON (free with ps_free).
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

// kv (src/llama-kv-cells.h): run a program of llama_kv_cells operations, dumping the state
// after every step (probe_kv.cpp). Returns 0, or -1 on a caught C++ exception.
int    ps_kv_cells_run(const char * program_json, char ** out_json);
// llama_hparams::is_masked_swa over the grid p0s x p1s: out[i * n1 + j] (0/1)
void   ps_swa_is_masked(uint32_t n_swa, int swa_type, const int32_t * p0s, int n0,
                        const int32_t * p1s, int n1, uint8_t * out);
// memory statuses (src/llama-memory.cpp)
int    ps_memory_status_combine(int s0, int s1);
int    ps_memory_status_is_fail(int s);
// memory without a model (probe_kv.cpp): a program of decodes, sequence ops and updates on a
// stub-model llama_kv_cache / llama_kv_cache_iswa / llama_memory_recurrent ("kind"), context
// sizing on a tiny real model ("layout"), or several programs at once ("batch")
int    ps_kv_run(const char * spec_json, char ** out_json);
// kv bench: a unified cache holding n_fill tokens; a step decodes n_tokens (+ mask) and removes them
void * ps_kv_bench_new(uint32_t kv_size, uint32_t n_fill);
int    ps_kv_bench_step(void * handle, uint32_t n_tokens, int mask);
void   ps_kv_bench_free(void * handle);

// json schema (common/json-schema-to-grammar.cpp, probe_json_schema.cpp): common_json::parse of
// the schema text, then json_schema_to_grammar. Returns 1 on success, 0 when the reference threw;
// *json receives {"ok", "stage": "parse"|"convert", "grammar", "kind", "error", "stderr"}
// (strings hex-encoded).
int    ps_json_schema_to_grammar(const char * schema_text, int force_gbnf, char ** json);
// build_grammar(cb, {dotall}) where cb calls add_schema(name, *common_chat_schema_from_json(schema).root)
int    ps_json_schema_build_grammar(const char * schema_text, const char * name, int dotall, char ** json);

// allocator (probe_alloc.cpp, probe_alloc_static.c): gallocr scenarios over recording buffer
// types (the IR of pyggml/reference/alloc.py); decode graphs of real models as IR; bench.
int     ps_alloc_run(const char * scenario_json, char ** out_json);
int     ps_alloc_decode_graph(const char * model_path, const char * params_json, char ** out_json);
void *  ps_alloc_bench_new(const char * scenario_json);
int64_t ps_alloc_bench_run(void * handle, int mode, int iters);
void    ps_alloc_bench_free(void * handle);
// the reference's static ggml_gallocr_needs_realloc (a ggml_gallocr_t, a struct ggml_cgraph *)
int     ps_gallocr_needs_realloc(void * galloc, void * graph);

// KV cache hot-path bench (probe_kvperf.cpp): find_slot + apply_ubatch + get_n_kv (then seq_rm)
// and the KQ mask of one kept ubatch, apart from the batch allocator.
void * ps_kvperf_new(uint32_t kv_size, uint32_t n_fill, uint32_t n_tokens, int applied);
int    ps_kvperf_slot(void * handle);
int    ps_kvperf_mask(void * handle, int f16);
void   ps_kvperf_free(void * handle);

// decode (probe_decode.cpp): the reference's own llama_decode in process. JSON results are
// malloc'd (ps_free). Model/context params are JSON objects of llama_model_params /
// llama_context_params overrides (unknown keys fail). Failures give {"ok":false,"error","log"}.
#define PS_DEC_EXCEPTION (-1000)  // a C++ exception escaped the reference (message in the log)
void * ps_dec_model_load(const char * path, const char * params_json, char ** json);
void   ps_dec_model_free(void * model);
void * ps_dec_ctx_new(void * model, const char * cparams_json, char ** json);
void   ps_dec_ctx_free(void * ctx);
// llama_decode of a llama_batch built from these arrays (pos, n_seq_id + seq_id_flat and logits
// may be NULL: the batch's field is then NULL); returns llama_decode's code
int    ps_dec_decode(void * ctx, int32_t n_tokens, const int32_t * tokens, const int32_t * pos,
                     const int32_t * n_seq_id, const int32_t * seq_id_flat, const int8_t * logits);
// llama_encode of the same batch (returns llama_encode's code)
int    ps_dec_encode(void * ctx, int32_t n_tokens, const int32_t * tokens, const int32_t * pos,
                     const int32_t * n_seq_id, const int32_t * seq_id_flat, const int8_t * logits);
int    ps_dec_embeddings_ith(void * ctx, int32_t i, float * out, int32_t n);        // n floats; -1: NULL
int    ps_dec_embeddings_seq(void * ctx, int32_t seq_id, float * out, int32_t n);   // n floats; -1: NULL
int    ps_dec_last_log(void * ctx, char ** text);  // the log of the last call on ctx (raw text)
int    ps_dec_logits(void * ctx, int32_t i, float * out);  // n_vocab floats; -1: NULL
int    ps_dec_n_outputs(void * ctx);
int    ps_dec_logits_all(void * ctx, float * out);  // n_outputs x n_vocab; -1: NULL
int    ps_dec_memory(void * ctx, const char * op, int32_t a, int32_t b, int32_t c, int32_t d);
int    ps_dec_kv_state(void * ctx, char ** json);
int    ps_dec_graph(void * ctx, char ** json);  // -1: no active graph
int    ps_graph_dump(void * cgraph, char ** json);
int    ps_dec_stats(void * ctx, char ** json);
void   ps_dec_set_abort(void * ctx, int32_t after);
void   ps_dec_set_threads(void * ctx, int32_t n, int32_t n_batch);

// generate (probe_generate.cpp): the reference tools' generation loop over a ps_dec_model_load
// model, a context made from cparams_json and a request {"prompts", "n_predict", "samplings",
// "accept_prompt"} (pyggml/reference/generate.py). Returns 0 with *json = {"streams", "n_decode",
// "decode_rc", ...}, or -1 with *json = {"error", "log"} when no loop ran.
int    ps_gen_run(void * model, const char * cparams_json, const char * request_json, char ** json);
// the same loop on a ps_dec_ctx_new context, its memory cleared first (n_seq_max is the context's)
int    ps_gen_run_ctx(void * ctx, const char * request_json, char ** json);
// common.h string_find_partial_stop over (str, n) and (stop, m); SIZE_MAX for npos
size_t ps_gen_find_partial_stop(const char * str, size_t n, const char * stop, size_t m);

#ifdef __cplusplus
}
#endif
