// Jinja: the reference's own engine (common/jinja) and its chat layer (common/chat.cpp).
// Every C++ exception is caught here and reported as {"ok": false, "error": what(), "stage": ...},
// the stage being the step of the pipeline that threw (so a parse error and a runtime error
// can be told apart whatever their text).
#include "probe.h"
#include "probe_json.h"

#include "chat.h"
#include "jinja/lexer.h"
#include "jinja/parser.h"
#include "jinja/runtime.h"
#include "jinja/value.h"
#include "json.h"
#include "log.h"

#include <exception>
#include <string>

using probe::json;

// The engine pipeline of tests/test-jinja.cpp test_string_parts / test_template_cpp:
// lexer -> parse_from_tokens -> context(src) + global_from_json -> runtime.execute -> gather_string_parts.
// stage: "lex", "parse", "vars" (global_from_json), "runtime".
extern "C" int ps_jinja_render(const char * tmpl, const char * vars_json, int mark_input, char ** out) {
    json res;
    const char * stage = "lex";
    try {
        const std::string src = tmpl ? tmpl : "";
        jinja::lexer lexer;
        auto tokens = lexer.tokenize(src);
        stage = "parse";
        jinja::program ast = jinja::parse_from_tokens(tokens);
        stage = "vars";
        jinja::context ctx(src);
        jinja::global_from_json(ctx, common_json::parse(vars_json ? vars_json : "{}"), mark_input != 0);
        stage = "runtime";
        jinja::runtime runtime(ctx);
        const jinja::value results = runtime.execute(ast);
        auto parts = jinja::runtime::gather_string_parts(results);
        json arr = json::array();
        for (const auto & part : parts->as_string().parts) {
            arr.push_back(json::array({probe::hex(part.val.data(), part.val.size()), part.is_input}));
        }
        res["ok"] = true;
        res["parts"] = std::move(arr);
    } catch (const std::exception & e) {
        res = {{"ok", false}, {"error", e.what()}, {"stage", stage}};
    } catch (...) {
        res = {{"ok", false}, {"error", "unknown exception"}, {"stage", stage}};
    }
    if (out) {
        *out = probe::dup(res);
    }
    return res["ok"].get<bool>() ? 1 : 0;
}

// common/chat.cpp common_chat_templates_init (template override, no model) +
// common_chat_templates_apply (jinja route). inputs_json:
// {"messages": [OAI messages], "tools": [OAI tools] (optional), "add_generation_prompt": bool,
//  "bos_token": str, "eos_token": str, "enable_thinking": bool,
//  "chat_template_kwargs": {name: JSON text}}
// stage: "init" (common_chat_templates_init: the template's parse), "inputs" (messages/tools),
// "apply" (common_chat_templates_apply: the render).
extern "C" int ps_chat_apply_common(const char * tmpl, const char * inputs_json, char ** out) {
    json res;
    const char * stage = "inputs";
    // the chat layer warns on stderr through common_log (not llama_log_set): mute it for the call
    const int verbosity = common_log_get_verbosity_thold();
    common_log_set_verbosity_thold(-1);
    try {
        const common_json in = common_json::parse(inputs_json ? inputs_json : "{}");
        auto str_or = [&](const char * key, const std::string & def) {
            return in.contains(key) ? in.at(key).get<std::string>() : def;
        };
        stage = "init";
        auto tmpls = common_chat_templates_init(nullptr, tmpl ? tmpl : "", str_or("bos_token", ""),
                                                str_or("eos_token", ""));
        stage = "inputs";
        common_chat_templates_inputs inputs;
        inputs.messages = common_chat_msgs_parse_oaicompat(in.contains("messages") ? in.at("messages")
                                                                                   : common_json::array());
        if (in.contains("tools")) {
            inputs.tools = common_chat_tools_parse_oaicompat(in.at("tools"));
        }
        if (in.contains("add_generation_prompt")) {
            inputs.add_generation_prompt = in.at("add_generation_prompt").get<bool>();
        }
        if (in.contains("enable_thinking")) {
            inputs.enable_thinking = in.at("enable_thinking").get<bool>();
        }
        if (in.contains("chat_template_kwargs")) {
            const auto & kw = in.at("chat_template_kwargs");
            for (auto it = kw.begin(); it != kw.end(); ++it) {
                inputs.chat_template_kwargs[it.key()] = it.value().get<std::string>();
            }
        }
        stage = "apply";
        const common_chat_params params = common_chat_templates_apply(tmpls.get(), inputs);
        res["ok"] = true;
        res["prompt"] = probe::hex(params.prompt.data(), params.prompt.size());
        res["generation_prompt"] = probe::hex(params.generation_prompt.data(), params.generation_prompt.size());
    } catch (const std::exception & e) {
        res = {{"ok", false}, {"error", e.what()}, {"stage", stage}};
    } catch (...) {
        res = {{"ok", false}, {"error", "unknown exception"}, {"stage", stage}};
    }
    common_log_set_verbosity_thold(verbosity);
    if (out) {
        *out = probe::dup(res);
    }
    return res["ok"].get<bool>() ? 1 : 0;
}
