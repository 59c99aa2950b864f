// JSON schema -> GBNF as common/json-schema-to-grammar.cpp converts it: the schema text is
// parsed with common_json::parse (as tests/test-json-schema-to-grammar.cpp does), then
// json_schema_to_grammar(schema, force_gbnf). No C++ exception crosses this file's C functions.
#include "probe.h"
#include "probe_json.h"

#include "json-schema-to-grammar.h"
#include "json.h"

#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace {

// The converter prints its warnings ("WARNING: JSON schema conversion was incomplete") to
// stderr; keep them off the test output and hand them back instead.
template <typename F>
std::string js_capture_stderr(F && fn) {
    fflush(stderr);
    FILE * tmp = tmpfile();
    if (!tmp) {
        fn();
        return "";
    }
    const int saved = dup(2);
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

}  // namespace

extern "C" int ps_json_schema_to_grammar(const char * schema_text, int force_gbnf, char ** out_json) {
    probe::json out = probe::json::object();
    int ok = 0;
    std::string grammar;
    std::string stage = "parse";
    std::string error;
    std::string kind;
    std::string log;
    try {
        log = js_capture_stderr([&] {
            try {
                common_json schema = common_json::parse(schema_text);
                stage = "convert";
                grammar = json_schema_to_grammar(schema, force_gbnf != 0);
                ok = 1;
            } catch (const std::invalid_argument & e) {
                kind = "invalid_argument";
                error = e.what();
            } catch (const std::exception & e) {
                kind = "exception";
                error = e.what();
            }
        });
    } catch (...) {
        kind = "unknown";
        error = "unknown exception";
    }
    out["ok"] = ok != 0;
    out["stage"] = stage;
    out["grammar"] = probe::str(grammar);
    out["kind"] = kind;
    out["error"] = probe::str(error);
    out["stderr"] = probe::str(log);
    *out_json = probe::dup(out);
    return ok;
}

// build_grammar with one add_schema(name, root of the schema document) call, the way the chat
// layer builds tool-call grammars; dotall selects the converter's "." rule.
extern "C" int ps_json_schema_build_grammar(const char * schema_text, const char * name, int dotall,
                                            char ** out_json) {
    probe::json out = probe::json::object();
    int ok = 0;
    std::string grammar;
    std::string stage = "parse";
    std::string error;
    std::string kind;
    std::string log;
    try {
        log = js_capture_stderr([&] {
            try {
                common_json schema = common_json::parse(schema_text);
                stage = "document";
                auto doc = common_chat_schema_from_json(schema);
                stage = "convert";
                common_grammar_options options;
                options.dotall = dotall != 0;
                grammar = build_grammar([&](const common_grammar_builder & builder) {
                    builder.add_schema(name, *doc.root);
                }, options);
                ok = 1;
            } catch (const std::invalid_argument & e) {
                kind = "invalid_argument";
                error = e.what();
            } catch (const std::exception & e) {
                kind = "exception";
                error = e.what();
            }
        });
    } catch (...) {
        kind = "unknown";
        error = "unknown exception";
    }
    out["ok"] = ok != 0;
    out["stage"] = stage;
    out["grammar"] = probe::str(grammar);
    out["kind"] = kind;
    out["error"] = probe::str(error);
    out["stderr"] = probe::str(log);
    *out_json = probe::dup(out);
    return ok;
}
