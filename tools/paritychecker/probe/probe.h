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

#ifdef __cplusplus
}
#endif
