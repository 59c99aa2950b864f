// The reference's generation loop, as its tools write it (examples/batched, tools/completion,
// the server's slots): common_sampler per stream, the prompt decoded in n_batch chunks, then one
// llama_decode per step with the last token of every active stream (pyggml/reference/generate.py
// states the schedule; pyggml's generate follows it).
#include "probe.h"
#include "probe_json.h"
#include "probe_params.h"
#include "probe_stderr.h"

#include "common.h"
#include "llama-cpp.h"
#include "llama.h"
#include "log.h"
#include "sampling.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using probe::json;

namespace probe {
// probe_decode.cpp: the llama_context of a ps_dec_ctx_new handle (its struct stays private there)
llama_context * dec_ctx_llama(void * handle);
}  // namespace probe

namespace {

// JSON to C; the reference's log and stderr text need not be UTF-8, so invalid bytes are replaced
void put(char ** out, const json & j) {
    const std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
    *out = static_cast<char *>(malloc(s.size() + 1));
    memcpy(*out, s.c_str(), s.size() + 1);
}

struct stream {
    std::vector<llama_token> prompt;
    common_sampler_ptr smpl;
    std::vector<llama_token> tokens;  // generated, an EOG token included
    std::string finish;               // "" while active, then "eog" | "length" | "error"
    std::string error;
    std::string log;                  // what common_sampler_init printed when it failed

    bool active() const { return smpl && finish.empty(); }

    json to_json() const {
        json j = {{"tokens", tokens}, {"finish", finish}};
        if (!error.empty()) j["error"] = error;
        if (!log.empty()) j["log"] = log;
        return j;
    }
};

// A llama_batch over owned arrays, one sequence id per token.
struct batch_buf {
    std::vector<llama_token> token;
    std::vector<llama_pos> pos;
    std::vector<int32_t> n_seq_id;
    std::vector<llama_seq_id> seq;
    std::vector<llama_seq_id *> seq_ptr;
    std::vector<int8_t> logits;

    void clear() { token.clear(); pos.clear(); n_seq_id.clear(); seq.clear(); logits.clear(); }

    void add(llama_token t, llama_pos p, llama_seq_id s, bool out) {
        token.push_back(t);
        pos.push_back(p);
        n_seq_id.push_back(1);
        seq.push_back(s);
        logits.push_back(out ? 1 : 0);
    }

    int32_t size() const { return (int32_t) token.size(); }

    llama_batch get() {
        seq_ptr.resize(seq.size());
        for (size_t i = 0; i < seq.size(); i++) seq_ptr[i] = &seq[i];
        llama_batch b = {};
        b.n_tokens = size();
        b.token = token.data();
        b.pos = pos.data();
        b.n_seq_id = n_seq_id.data();
        b.seq_id = seq_ptr.data();
        b.logits = logits.data();
        return b;
    }
};

// common_sampler_init as the tools call it (its what() is the stream's error); the grammar
// parser's complaints on stderr are kept with the stream instead of landing on the test output
void init_sampler(stream & s, const llama_model * model, const json & sparams, bool accept_prompt) {
    if (s.prompt.empty()) {
        s.finish = "error";
        s.error = "empty prompt";
        return;
    }
    bool failed = false;
    s.log = probe::capture_stderr([&] {
        try {
            common_params_sampling p = probe::sampling_params_from_json(sparams);
            s.smpl.reset(common_sampler_init(model, p));
        } catch (const std::exception & e) {
            failed = true;
            s.error = e.what();
        }
    });
    if (failed) {
        s.finish = "error";
        return;
    }
    s.log.clear();
    if (accept_prompt) {
        // llama-cli / llama-server seed the penalty history with the prompt; no grammar accept
        for (llama_token t : s.prompt) common_sampler_accept(s.smpl.get(), t, false);
    }
}

// sample stream s from output idx of the last batch, accept the pick, decide whether it ends
void sample(stream & s, llama_context * ctx, const llama_vocab * vocab, int32_t idx, int32_t n_predict) {
    try {
        const llama_token t = common_sampler_sample(s.smpl.get(), ctx, idx);
        common_sampler_accept(s.smpl.get(), t, true);
        s.tokens.push_back(t);
        if (llama_vocab_is_eog(vocab, t)) {
            s.finish = "eog";
        } else if ((int32_t) s.tokens.size() >= n_predict) {
            s.finish = "length";
        }
    } catch (const std::exception & e) {
        s.finish = "error";
        s.error = e.what();
    }
}

// llama_decode; an escaping C++ exception is PS_DEC_EXCEPTION (its message goes to the log)
int32_t decode(llama_context * ctx, batch_buf & b, std::string & log) {
    try {
        return llama_decode(ctx, b.get());
    } catch (const std::exception & e) {
        log += std::string("exception: ") + e.what() + "\n";
        return PS_DEC_EXCEPTION;
    }
}

// the request, checked before any context is made
struct request {
    std::vector<std::vector<llama_token>> prompts;
    int32_t n_predict = 0;
    bool accept_prompt = true;
    json samplings;

    explicit request(const json & req)
        : prompts(req.at("prompts").get<std::vector<std::vector<llama_token>>>()),
          n_predict(req.at("n_predict").get<int32_t>()),
          accept_prompt(req.value("accept_prompt", true)),
          samplings(req.at("samplings")) {
        if (n_predict < 1) throw std::invalid_argument("n_predict must be at least 1");
        if (samplings.size() != prompts.size()) throw std::invalid_argument("one sampling per prompt");
    }
};

// the loop on a context whose memory holds nothing of these sequences (ps_gen_run: a new one,
// ps_gen_run_ctx: a cleared one)
json loop(llama_context * ctx, const request & req) {
    const llama_model * model = llama_get_model(ctx);
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int32_t n_batch = (int32_t) llama_n_batch(ctx);
    const int32_t n_predict = req.n_predict;

    std::vector<stream> streams(req.prompts.size());
    for (size_t i = 0; i < streams.size(); i++) {
        streams[i].prompt = req.prompts[i];
        init_sampler(streams[i], model, req.samplings[i], req.accept_prompt);
    }

    int32_t n_decode = 0, rc = 0, rc_step = -1;
    std::string log;
    batch_buf b;
    auto run = [&] {
        rc = decode(ctx, b, log);
        if (rc != 0) rc_step = n_decode;
        n_decode++;
        return rc == 0;
    };

    // prompt phase: every stream's prompt in one token list (seq i, positions 0..len-1, output
    // on the last token only), decoded in chunks of n_batch; a stream is sampled right after
    // the chunk that holds its last prompt token, at that token's index in the chunk
    struct entry { int32_t s; llama_pos p; bool last; };
    std::vector<entry> layout;
    for (size_t i = 0; i < streams.size(); i++) {
        if (!streams[i].active()) continue;
        const llama_pos n = (llama_pos) streams[i].prompt.size();
        for (llama_pos p = 0; p < n; p++) layout.push_back({(int32_t) i, p, p == n - 1});
    }
    // timed from here: sampler construction (grammar parsing) is setup, not the loop
    const int64_t t_start = llama_time_us();
    for (size_t start = 0; start < layout.size() && rc == 0; start += (size_t) n_batch) {
        const size_t end = std::min(layout.size(), start + (size_t) n_batch);
        b.clear();
        for (size_t k = start; k < end; k++) {
            const entry & e = layout[k];
            b.add(streams[e.s].prompt[e.p], e.p, e.s, e.last);
        }
        if (!run()) break;
        for (size_t k = start; k < end; k++) {
            if (layout[k].last) sample(streams[layout[k].s], ctx, vocab, (int32_t) (k - start), n_predict);
        }
    }
    const int64_t t_prompt = llama_time_us();

    // generation: one batch per step with each active stream's last token, in stream order
    std::vector<int32_t> idx(streams.size(), -1);
    while (rc == 0) {
        b.clear();
        for (size_t i = 0; i < streams.size(); i++) {
            stream & s = streams[i];
            idx[i] = -1;
            if (!s.active()) continue;
            idx[i] = b.size();
            b.add(s.tokens.back(), (llama_pos) (s.prompt.size() + s.tokens.size() - 1), (llama_seq_id) i, true);
        }
        if (b.size() == 0 || !run()) break;
        for (size_t i = 0; i < streams.size(); i++) {
            if (idx[i] >= 0) sample(streams[i], ctx, vocab, idx[i], n_predict);
        }
    }
    const int64_t t_end = llama_time_us();

    json out = json::array();
    for (stream & s : streams) {
        if (rc != 0 && s.active()) {
            s.finish = "error";
            s.error = "llama_decode returned " + std::to_string(rc);
        }
        out.push_back(s.to_json());
    }
    json res = {{"streams", std::move(out)}, {"n_decode", n_decode}, {"decode_rc", rc}, {"n_batch", n_batch},
                {"t_prompt_us", t_prompt - t_start}, {"t_loop_us", t_end - t_start}};
    log = probe::take_log() + log;
    if (rc != 0) {
        res["decode_step"] = rc_step;
        res["log"] = log;
    }
    return res;
}

json generate(llama_model * model, const json & cparams, const json & req_json) {
    const request req(req_json);
    llama_context_ptr ctx(llama_init_from_model(model, probe::context_params_from_json(cparams)));
    if (!ctx) {
        return {{"error", "llama_init_from_model failed"}, {"log", probe::take_log()}};
    }
    probe::take_log();  // the context's construction log; a failed decode reports only the loop's
    return loop(ctx.get(), req);
}

json generate_on(llama_context * ctx, const json & req_json) {
    const request req(req_json);
    llama_memory_clear(llama_get_memory(ctx), true);  // every run starts from empty sequences
    probe::take_log();
    return loop(ctx, req);
}

// run one entry point: common's own logger (LOG_WRN in common_sampler_init) stays quiet, as in
// ps_csmpl_new; a result without "streams" (or an exception) is status -1
template <typename F>
int guarded(char ** out_json, F && fn) {
    probe::take_log();
    const int verbosity = common_log_get_verbosity_thold();
    common_log_set_verbosity_thold(-1);
    int status = 0;
    try {
        const json res = fn();
        status = res.contains("streams") ? 0 : -1;
        put(out_json, res);
    } catch (const std::exception & e) {
        put(out_json, {{"error", e.what()}, {"log", probe::take_log()}});
        status = -1;
    }
    common_log_set_verbosity_thold(verbosity);
    return status;
}

}  // namespace

extern "C" {

int ps_gen_run(void * model, const char * cparams_json, const char * request_json, char ** out_json) {
    return guarded(out_json, [&] {
        return generate(static_cast<llama_model *>(model), json::parse(cparams_json ? cparams_json : "{}"),
                        json::parse(request_json));
    });
}

int ps_gen_run_ctx(void * ctx_handle, const char * request_json, char ** out_json) {
    return guarded(out_json, [&] {
        if (!ctx_handle) throw std::invalid_argument("no context");
        return generate_on(probe::dec_ctx_llama(ctx_handle), json::parse(request_json));
    });
}

size_t ps_gen_find_partial_stop(const char * str, size_t n, const char * stop, size_t m) {
    // std::string::npos is SIZE_MAX
    return string_find_partial_stop(std::string_view(str, n), std::string_view(stop, m));
}

}  // extern "C"
