// JSON schema -> GBNF as common/json-schema-to-grammar.cpp converts it: the schema text is
// parsed with common_json::parse (as tests/test-json-schema-to-grammar.cpp does), then
// json_schema_to_grammar(schema, force_gbnf). No C++ exception crosses this file's C functions.
#include "probe.h"
#include "probe_json.h"
#include "probe_stderr.h"

#include "json-schema-to-grammar.h"
#include "json.h"

#include <stdexcept>
#include <string>

namespace {

// Parse schema_text, hand it to convert(schema, stage) and report the grammar or the error as
// {ok, stage, grammar, kind, error, stderr}.  `stage` names the step that was running when an
// exception came (convert advances it past "parse").  The converter prints its warnings
// ("WARNING: JSON schema conversion was incomplete") to stderr; they come back in "stderr".
template <typename F>
int js_convert(const char * schema_text, char ** out_json, F && convert) {
    probe::json out = probe::json::object();
    int ok = 0;
    std::string grammar;
    std::string stage = "parse";
    std::string error;
    std::string kind;
    std::string log;
    try {
        log = probe::capture_stderr([&] {
            try {
                common_json schema = common_json::parse(schema_text);
                grammar = convert(schema, stage);
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

}  // namespace

extern "C" int ps_json_schema_to_grammar(const char * schema_text, int force_gbnf, char ** out_json) {
    return js_convert(schema_text, out_json, [&](const common_json & schema, std::string & stage) {
        stage = "convert";
        return json_schema_to_grammar(schema, force_gbnf != 0);
    });
}

// build_grammar with one add_schema(name, root of the schema document) call, the way the chat
// layer builds tool-call grammars; dotall selects the converter's "." rule.
extern "C" int ps_json_schema_build_grammar(const char * schema_text, const char * name, int dotall,
                                            char ** out_json) {
    return js_convert(schema_text, out_json, [&](const common_json & schema, std::string & stage) {
        stage = "document";
        auto doc = common_chat_schema_from_json(schema);
        stage = "convert";
        common_grammar_options options;
        options.dotall = dotall != 0;
        return build_grammar([&](const common_grammar_builder & builder) {
            builder.add_schema(name, *doc.root);
        }, options);
    });
}
