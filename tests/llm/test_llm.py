"""pyggml.LLM: generation, streaming, stops, chat, batched generation and the CLI, with token
streams diffed against the reference's common_sampler loop (pyggml.reference.generate)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyggml.errors import GenerationError, GrammarError, ParamError, PyggmlError, SamplerError
from pyggml.parity import Options, first_difference
from pyggml.parity import generate as pgen


@pytest.fixture(scope="module")
def sides():
    s = pgen._Sides()
    yield s
    s.close()


def _same(cases) -> None:
    n = 0
    for case in cases:
        n += 1
        diff = first_difference(case.ours, case.reference)
        assert diff is None, f"{case.name}: {diff}"
    assert n > 0


# ---- parity slices (the component's own case generators, seeded) --------------------------
def test_single_families_match_reference(sides) -> None:
    _same(c for c in pgen._single(sides, random.Random(1), Options())
          if c.name.split("/")[1] in ("default", "greedy", "penalties", "mirostat2", "dry"))


def test_grammar_and_schema_match_reference(sides) -> None:
    _same(c for c in pgen._grammar(sides, random.Random(2), Options())
          if c.name.split("/")[1] in ("json.gbnf", "lazy-word", "schema-0"))


def test_chat_matches_reference(sides) -> None:
    _same(c for c in pgen._chat(sides, random.Random(3), Options())
          if c.name.startswith(("chat/0", "chat/2")))


def test_batched_matches_reference_and_alone(sides) -> None:
    cases = list(pgen._batched(sides, random.Random(4), Options()))
    assert {c.name.split("/")[0] for c in cases} == {"batch", "alone"}
    _same(cases)


def test_refused_grammars_match_reference(sides) -> None:
    _same(pgen._errors(sides))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(family=st.sampled_from([f for f, _ in pgen.FAMILIES]), seed=st.integers(0, 2**32 - 1),
       n_words=st.integers(1, 40))
def test_random_requests_match_reference(sides, family, seed, n_words) -> None:
    words = "the model reads a prompt and writes tokens until it stops or runs out".split()
    rng = random.Random(seed)
    prompt = sides.llm.tokenize(" ".join(rng.choice(words) for _ in range(n_words)))
    sampling = {**dict(pgen.FAMILIES)[family], "seed": seed}
    assert sides.ours(prompt, 12, sampling) == sides.theirs([prompt], 12, sampling)[0]


# ---- text: streaming, stops, UTF-8 --------------------------------------------------------
def test_stream_chunks_join_to_the_completion(sides) -> None:
    llm = sides.llm
    c = llm.generate("Emoji and accents: café 🎉 naïve", max_tokens=40, seed=7, cache_prompt=False)
    chunks = list(llm.generate("Emoji and accents: café 🎉 naïve", max_tokens=40, seed=7,
                               stream=True, cache_prompt=False))
    assert "".join(chunks) == c.text
    assert llm.last_completion.tokens == c.tokens


def test_stop_string_cuts_the_text(sides) -> None:
    llm = sides.llm
    full = llm.generate("The capital of France is", max_tokens=30, temp=0, cache_prompt=False)
    words = full.text.split()
    assert len(words) > 3, full.text
    stop = words[2]
    c = llm.generate("The capital of France is", max_tokens=30, temp=0, stop=[stop], cache_prompt=False)
    assert c.finish_reason == "stop"
    assert stop not in c.text and full.text.startswith(c.text)
    assert c.tokens == full.tokens[: len(c.tokens)]
    streamed = "".join(llm.generate("The capital of France is", max_tokens=30, temp=0, stop=[stop],
                                    stream=True, cache_prompt=False))
    assert streamed == c.text


def test_prefix_reuse_decodes_only_new_tokens(sides) -> None:
    llm = sides.llm
    msgs = [{"role": "user", "content": "Name a color."}]
    r1 = llm.chat(msgs, max_tokens=16, temp=0)
    n1 = llm.last_timings["prompt_tokens"]
    msgs += [r1["choices"][0]["message"], {"role": "user", "content": "Another one?"}]
    r2 = llm.chat(msgs, max_tokens=16, temp=0)
    assert llm.last_timings["prompt_tokens"] < r2["usage"]["prompt_tokens"]
    assert n1 == r1["usage"]["prompt_tokens"] or n1 < r1["usage"]["prompt_tokens"]
    assert r2["object"] == "chat.completion" and r2["choices"][0]["finish_reason"] in ("stop", "length")


def test_chat_stream_deltas(sides) -> None:
    events = list(sides.llm.chat([{"role": "user", "content": "Say hi."}], max_tokens=12, temp=0,
                                 stream=True))
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
    assert text == sides.llm.last_completion.text


# ---- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize("kw, exc", [
    ({"prompt": ""}, GenerationError),
    ({"prompt": "hi", "max_tokens": -2}, GenerationError),
    ({"prompt": "hi", "top_kk": 3}, SamplerError),
    ({"prompt": "hi", "grammar": "root ::= ("}, SamplerError),
    ({"prompt": "hi", "json_schema": {"type": 5}}, PyggmlError),
    ({"prompt": "hi", "grammar": "root ::= [a]", "json_schema": {"type": "string"}}, GenerationError),
])
def test_bad_requests_raise_pyggml_errors(sides, kw, exc) -> None:
    with pytest.raises(exc):
        sides.llm.generate(**kw)


def test_prompt_longer_than_context(sides) -> None:
    with pytest.raises(GenerationError, match="context"):
        sides.llm.generate(list(range(100, 100 + pgen.N_CTX)))


def test_bad_constructor_arguments(sides) -> None:
    from pyggml import LLM

    with pytest.raises(GenerationError, match="not found"):
        LLM("/nonexistent/model.gguf", progress=False)
    with pytest.raises(ParamError):
        LLM.from_model(sides.model, not_a_param=1)
    assert issubclass(GrammarError, PyggmlError)


# ---- CLI ----------------------------------------------------------------------------------
def test_cli_run_prints_the_greedy_continuation(sides, capsys) -> None:
    from pyggml.cli import main
    from pyggml.parity import corpus

    want = sides.llm.generate("The capital of France is", max_tokens=8, temp=0, cache_prompt=False).text
    rc = main(["run", "-m", str(corpus.smollm2()), "-p", "The capital of France is", "-n", "8",
               "--temp", "0", "-c", str(pgen.N_CTX)])
    out = capsys.readouterr()
    assert rc == 0
    assert out.out == want + "\n"
    assert "generation: 8 tokens" in out.err


@pytest.mark.parametrize("argv, msg", [
    (["run", "-m", "/nonexistent.gguf", "-p", "x"], "not found"),
    (["run", "-p", "x", "--grammar", "root ::= ("], "expecting"),
    (["run", "-p", "x", "-j", "{not json"], "invalid JSON schema"),
])
def test_cli_errors_are_one_line(argv, msg, capsys) -> None:
    from pyggml.cli import main

    assert main(argv) == 1
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_cli_chat_repl(monkeypatch, capsys) -> None:
    from pyggml.cli import main
    from pyggml.parity import corpus

    lines = iter(["What is 1+1?", "/clear", "", "/exit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    rc = main(["chat", "-m", str(corpus.smollm2()), "-n", "8", "--temp", "0", "-c", "1024"])
    out = capsys.readouterr()
    assert rc == 0
    assert out.out.strip()  # one reply
    assert out.err.count("generation: ") == 1  # the timing line of that one reply


def test_cli_embed_similarities(capsys) -> None:
    from pyggml.cli import main
    from pyggml.parity import corpus

    rc = main(["embed", "-m", str(corpus.minilm_gguf()), "The cat sits on the mat.", "A cat is on a rug.",
               "Stocks fell sharply."])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0 and len(out) == 3
    sims = [[float(x) for x in line.split()[-3:]] for line in out]
    assert sims[0][0] == pytest.approx(1.0, abs=1e-3) and sims[0][1] > sims[0][2]


def test_embed_is_the_normalized_pooled_vector() -> None:
    import numpy as np

    import pyggml
    from pyggml.parity import corpus

    texts = ["The cat sits on the mat.", "Stocks fell sharply."]
    with pyggml.LLM(corpus.minilm_gguf(), progress=False) as llm:
        got = llm.embed(texts)
        ctx = pyggml.Context(llm.model, embeddings=True, n_seq_max=1)
        for i, t in enumerate(texts):
            ctx.encode(pyggml.Batch(tokens=llm.tokenize(t)))
            v = ctx.embeddings_seq(0)
            np.testing.assert_allclose(got[i], v / np.linalg.norm(v), rtol=1e-6, atol=1e-8)
        ctx.close()
