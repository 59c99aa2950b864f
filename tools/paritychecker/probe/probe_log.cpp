// Reference log capture: every message ggml and llama log goes into one buffer
// that Python reads and clears, instead of stderr.
#include "probe.h"

#include "ggml.h"
#include "llama.h"

#include <cstring>
#include <mutex>
#include <string>

static std::mutex g_log_mutex;
static std::string g_log;
static int g_log_echo = 0;

static void probe_log_cb(enum ggml_log_level level, const char * text, void * /*user*/) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    (void) level;
    g_log += text;
    if (g_log_echo) {
        fputs(text, stderr);
    }
}

extern "C" void ps_log_capture(int echo) {
    g_log_echo = echo;
    llama_log_set(probe_log_cb, nullptr);
    ggml_log_set(probe_log_cb, nullptr);
}

extern "C" size_t ps_log_take(char * out, size_t cap) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    const size_t n = g_log.size();
    if (out && cap > 0) {
        const size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(out, g_log.data(), k);
        out[k] = 0;
        g_log.clear();
    }
    return n;
}

extern "C" void ps_free(void * p) {
    free(p);
}
