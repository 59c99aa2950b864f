// Shared helpers of the probe: canonical value encoding for JSON results.
// Floats travel as their bit patterns and strings as hex, so that NaN, -0.0 and
// invalid UTF-8 compare exactly on the Python side (pyggml/reference/_canon.py).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace probe {

using json = nlohmann::ordered_json;

inline std::string hex(const void * data, size_t n) {
    static const char * digits = "0123456789abcdef";
    std::string out(2 * n, '0');
    const auto * p = static_cast<const uint8_t *>(data);
    for (size_t i = 0; i < n; i++) {
        out[2 * i]     = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    return out;
}

inline json f32(float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    char buf[16];
    snprintf(buf, sizeof(buf), "f32:%08x", bits);
    return buf;
}

inline json f64(double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    char buf[32];
    snprintf(buf, sizeof(buf), "f64:%016llx", (unsigned long long) bits);
    return buf;
}

inline json str(const char * s, size_t n) { return "s:" + hex(s, n); }
inline json str(const std::string & s) { return str(s.data(), s.size()); }

// Hand a JSON document to C callers (freed with ps_free).
inline char * dup(const json & j) {
    const std::string s = j.dump();
    char * out = static_cast<char *>(malloc(s.size() + 1));
    memcpy(out, s.c_str(), s.size() + 1);
    return out;
}

// The JSON-in / JSON-out C boundary: run fn on the parsed request; a C++ exception never
// crosses into C, it comes back as {"exception": <message>} with status -1.
template <typename F>
int run_json(const char * request, char ** out, F && fn) {
    *out = nullptr;
    try {
        *out = dup(fn(json::parse(request)));
        return 0;
    } catch (const std::exception & e) {
        *out = dup(json{{"exception", str(e.what())}});
        return -1;
    }
}

}  // namespace probe
