// Shared helpers of the probe for what the reference prints: run a call with fd 2 redirected,
// so the warnings and parse errors it prints to stderr come back as a value instead of landing
// on the test output; and take the log lines the probe's log callback captured.
#pragma once
#include <unistd.h>

#include "probe.h"

#include <cstdio>
#include <string>

namespace probe {

// The reference's log output captured since the last call (ps_log_take), cleared.
inline std::string take_log() {
    const size_t n = ps_log_take(nullptr, 0);
    std::string s(n + 1, '\0');
    ps_log_take(s.data(), n + 1);
    s.resize(n);
    return s;
}

// Run fn with fd 2 redirected into a temporary file; returns what was written there.  An
// exception from fn restores fd 2 and propagates.
template <typename F>
std::string capture_stderr(F && fn) {
    fflush(stderr);
    FILE * tmp = tmpfile();
    if (!tmp) {
        fn();
        return "";
    }
    const int saved = ::dup(2);  // ::, not probe::dup (the JSON one)
    dup2(fileno(tmp), 2);
    auto restore = [&] {
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
    };
    try {
        fn();
    } catch (...) {
        restore();
        fclose(tmp);
        throw;
    }
    restore();
    std::string out;
    fseek(tmp, 0, SEEK_SET);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), tmp)) > 0) {
        out.append(buf, n);
    }
    fclose(tmp);
    return out;
}

}  // namespace probe
