"""The reference's generation loop through the probe (pyggml.reference.generate), checked against
what the reference's own pieces give one call at a time: RefContext decodes + argmax for greedy,
one prompt alone for a batched run, the grammar's language for a constrained run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyggml._native import llama
from pyggml.reference.decode import RefContext, RefError, RefModel
from pyggml.reference.generate import ref_generate, ref_generate_ctx
from pyggml.vocab.vocab import Vocab

CTX = {"n_ctx": 512, "n_threads": 2, "n_threads_batch": 2}
GREEDY = {"temp": 0}
N_PREDICT = 16
TEXTS = ("The capital of France is", "Once upon a time", "1, 2, 3,")


@pytest.fixture(scope="module")
def smol(smollm2_path):
    with RefModel(smollm2_path) as m:
        yield m


@pytest.fixture(scope="module")
def vocab(smollm2_path) -> Vocab:
    return Vocab.from_gguf(smollm2_path)


@pytest.fixture(scope="module")
def prompts(vocab) -> list[list[int]]:
    return [vocab.tokenize(t, add_special=True) for t in TEXTS]


def is_eog(model: RefModel, token: int) -> bool:
    lib = llama()
    return bool(lib.llama_vocab_is_eog(lib.llama_model_get_vocab(model.handle), token))


def penalize(logits: np.ndarray, history: list[int], repeat: float) -> np.ndarray:
    # llama.cpp: src/llama-sampler.cpp llama_sampler_penalties_apply (repeat only)
    out = logits.copy()
    for t in set(history):
        out[t] = out[t] * np.float32(repeat) if out[t] <= 0 else out[t] / np.float32(repeat)
    return out


def greedy_loop(model: RefModel, prompt: list[int], n_predict: int, *, repeat: float = 1.0,
                last_n: int = 64, history: list[int] | None = None) -> list[int]:
    """The schedule by hand: the prompt in one decode, then one token per decode; argmax of each
    row of logits (after the repeat penalty over the last ``last_n`` accepted tokens)."""
    hist = list(history or [])
    out: list[int] = []
    with RefContext(model, n_seq_max=1, **CTX) as ctx:
        assert ctx.decode(prompt, list(range(len(prompt))), [[0]] * len(prompt),
                          [i == len(prompt) - 1 for i in range(len(prompt))]) == 0
        idx = len(prompt) - 1
        while True:
            row = ctx.logits(idx)
            assert row is not None
            tok = int(np.argmax(penalize(row, hist[-last_n:], repeat)))
            out.append(tok)
            hist.append(tok)
            if is_eog(model, tok) or len(out) == n_predict:
                return out
            assert ctx.decode([tok], [len(prompt) + len(out) - 1], [[0]], [True]) == 0
            idx = 0


def test_greedy_single_stream_is_argmax(smol, prompts):
    res = ref_generate(smol, [prompts[0]], n_predict=N_PREDICT, samplings=GREEDY, **CTX)
    (s,) = res["streams"]
    assert s["tokens"] == greedy_loop(smol, prompts[0], N_PREDICT)
    assert s["finish"] == ("eog" if is_eog(smol, s["tokens"][-1]) else "length")
    # one prompt decode, then one decode per token after the first
    assert res["n_decode"] == len(s["tokens"]) and res["decode_rc"] == 0


def test_prompt_accepted_into_penalty_history(smol, vocab):
    prompt = vocab.tokenize("one two one two one two one two", add_special=True)
    params = {"temp": 0, "penalty_repeat": 1.5, "penalty_last_n": 64}
    n = 8
    with_prompt = ref_generate(smol, [prompt], n_predict=n, samplings=params, **CTX)["streams"][0]["tokens"]
    without = ref_generate(smol, [prompt], n_predict=n, samplings=params, accept_prompt=False,
                           **CTX)["streams"][0]["tokens"]
    assert with_prompt == greedy_loop(smol, prompt, n, repeat=1.5, history=prompt)
    assert without == greedy_loop(smol, prompt, n, repeat=1.5)
    assert with_prompt != without  # the prompt's repetition is what the penalty sees first


def test_batched_equals_each_alone(smol, prompts):
    res = ref_generate(smol, prompts, n_predict=N_PREDICT, samplings=GREEDY, **CTX)
    alone = [ref_generate(smol, [p], n_predict=N_PREDICT, samplings=GREEDY, **CTX)["streams"][0]
             for p in prompts]
    assert res["streams"] == alone
    # every prompt fits one n_batch chunk: one prompt decode, then steps until the longest ends
    assert res["n_decode"] == max(len(s["tokens"]) for s in alone)


def test_prompt_chunks_of_n_batch(smol, prompts):
    n_batch = 5
    res = ref_generate(smol, prompts, n_predict=N_PREDICT, samplings=GREEDY,
                       **{**CTX, "n_batch": n_batch, "n_ubatch": n_batch})
    assert res["n_batch"] == n_batch
    longest = max(len(s["tokens"]) for s in res["streams"])
    n_chunks = math.ceil(sum(map(len, prompts)) / n_batch)
    assert res["n_decode"] == n_chunks + longest - 1
    plain = ref_generate(smol, prompts, n_predict=N_PREDICT, samplings=GREEDY, **CTX)
    assert [s["tokens"][:4] for s in res["streams"]] == [s["tokens"][:4] for s in plain["streams"]]


@pytest.mark.parametrize("params", [GREEDY, {"seed": 42}], ids=["greedy", "dist"])
def test_grammar_constrains_the_text(smol, vocab, prompts, params):
    sampling = {**params, "grammar": 'root ::= "yes" | "no"'}
    res = ref_generate(smol, [prompts[0]], n_predict=N_PREDICT, samplings=sampling, **CTX)
    (s,) = res["streams"]
    # the grammar admits EOG only once a word is complete, so the stream ends on it
    assert s["finish"] == "eog" and is_eog(smol, s["tokens"][-1])
    assert vocab.detokenize(s["tokens"][:-1]) in ("yes", "no")


def test_lazy_grammar_waits_for_its_trigger(smol, prompts):
    # a trigger word that greedy decoding never produces: the grammar never applies
    lazy = {**GREEDY, "grammar": 'root ::= "yes"', "grammar_lazy": True,
            "grammar_triggers": [{"type": "word", "value": "\u00a7\u00a7never\u00a7\u00a7"}]}
    res = ref_generate(smol, [prompts[0]], n_predict=N_PREDICT, samplings=lazy, **CTX)
    plain = ref_generate(smol, [prompts[0]], n_predict=N_PREDICT, samplings=GREEDY, **CTX)
    assert res["streams"] == plain["streams"]


@pytest.mark.parametrize("grammar", ['root ::= "yes', "root ::= foo"])
def test_bad_grammar_is_a_stream_error(smol, prompts, grammar):
    res = ref_generate(smol, prompts[:2], n_predict=N_PREDICT,
                       samplings=[{**GREEDY, "grammar": grammar}, GREEDY], **CTX)
    bad, good = res["streams"]
    assert bad["finish"] == "error" and bad["tokens"] == []
    assert bad["error"] == "failed to parse grammar"
    assert "error parsing grammar" in bad["log"]
    alone = ref_generate(smol, [prompts[1]], n_predict=N_PREDICT, samplings=GREEDY, **CTX)
    assert good == alone["streams"][0]


def test_request_errors(smol, prompts):
    res = ref_generate(smol, [prompts[0], []], n_predict=4, samplings=GREEDY, **CTX)
    assert res["streams"][1] == {"tokens": [], "finish": "error", "error": "empty prompt"}
    bad_trigger = {**GREEDY, "grammar": 'root ::= "a"', "grammar_lazy": True,
                   "grammar_triggers": [{"type": "pattern", "value": "("}]}
    res = ref_generate(smol, [prompts[0]], n_predict=4, samplings=bad_trigger, **CTX)
    assert res["streams"][0]["finish"] == "error"
    with pytest.raises(RefError, match="unknown context param"):
        ref_generate(smol, [prompts[0]], n_predict=4, samplings=GREEDY, bogus=1)
    with pytest.raises(ValueError):
        ref_generate(smol, [prompts[0]], n_predict=0, samplings=GREEDY)


def test_decode_failure_is_reported(smol, prompts):
    # three sequences in a context for two: llama_decode refuses seq_id 2 (-1, invalid batch)
    res = ref_generate(smol, prompts, n_predict=4, samplings=GREEDY, **{**CTX, "n_seq_max": 2})
    assert res["decode_rc"] == -1 and res["decode_step"] == 0 and res["n_decode"] == 1
    assert all(s["finish"] == "error" and s["tokens"] == [] for s in res["streams"])


@pytest.mark.parametrize("params", [GREEDY, {"seed": 42}], ids=["greedy", "dist"])
def test_on_an_existing_context(smol, prompts, params):
    # ref_generate_ctx: the same loop on a RefContext, its memory cleared before each run
    fresh = ref_generate(smol, prompts, n_predict=N_PREDICT, samplings=params, **CTX)
    with RefContext(smol, n_seq_max=len(prompts), **CTX) as ctx:
        first = ref_generate_ctx(ctx, prompts, n_predict=N_PREDICT, samplings=params)
        again = ref_generate_ctx(ctx, prompts, n_predict=N_PREDICT, samplings=params)
    assert first["streams"] == fresh["streams"] and again["streams"] == fresh["streams"]
    for res in (fresh, first, again):
        assert res["decode_rc"] == 0 and res["n_decode"] == fresh["n_decode"]
        assert 0 < res["t_prompt_us"] <= res["t_loop_us"]


def test_existing_context_errors(smol, prompts):
    with RefContext(smol, n_seq_max=2, **CTX) as ctx:
        # n_seq_max is the context's: a third stream is refused by llama_decode
        res = ref_generate_ctx(ctx, prompts, n_predict=4, samplings=GREEDY)
        assert res["decode_rc"] == -1 and res["decode_step"] == 0
        with pytest.raises(ValueError):
            ref_generate_ctx(ctx, prompts[:1], n_predict=0, samplings=GREEDY)
        # a failed run does not spoil the next one on the same context
        ok = ref_generate_ctx(ctx, prompts[:2], n_predict=4, samplings=GREEDY)
        fresh = ref_generate(smol, prompts[:2], n_predict=4, samplings=GREEDY, **CTX)
        assert ok["streams"] == fresh["streams"]
    with pytest.raises(ValueError, match="closed"):
        ref_generate_ctx(ctx, prompts[:1], n_predict=4, samplings=GREEDY)
