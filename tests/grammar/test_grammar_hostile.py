"""Untrusted grammars: a clear outcome fast, never a hang, a crash or a RecursionError.

Where the reference's own outcome is defined, it is compared too; where the reference hangs
or crashes (checked here in a throwaway subprocess), pyggml refuses or handles the grammar.

Nothing here depends on how loaded the machine is: pyggml's speed is measured in this
thread's CPU time, and the reference's outcome is decided by what it does under a memory
limit and a CPU-time limit (RLIMIT_CPU), never by a wall-clock timeout.
"""

from __future__ import annotations

import time

import pytest

from pyggml.errors import GrammarError
from pyggml.grammar import Grammar
from pyggml.grammar.tokens import apply_all
from pyggml.parity.grammar import ours_session
from pyggml.reference import grammar as ref

NEST = 60_000
# the reference child's limits: a CPU-time limit far above what any of these needs to reach its
# outcome (a crash or memory exhaustion takes well under 5 s of CPU), a wall clock that only
# guards against a child that blocks, and an address space that a runaway exhausts quickly
CPU_S = 120
WALL_S = 1800
MEM_MB = 512


def _timed(text: str) -> tuple[object, float]:
    t0 = time.thread_time()
    try:
        out: object = Grammar.from_text(text)
    except GrammarError as e:
        out = e
    return out, time.thread_time() - t0


def _reference(func: str, *args: object) -> object:
    return ref.isolated_call(func, *args, timeout=WALL_S, mem_mb=MEM_MB, cpu_s=CPU_S)


def _ran_out_of_memory(r: object) -> bool:
    """The reference exhausted its address space: std::bad_alloc reported (caught by its parser)
    or the process ended by it (uncaught: std::terminate), but not by the CPU limit (SIGXCPU,
    then SIGKILL), a wall-clock timeout or a crash."""
    if not isinstance(r, dict):
        return False
    if r.get("error") == "std::bad_alloc":
        return True
    return "abnormal" in r and r["abnormal"] not in ("timeout", "signal 24", "signal 9", "signal 11")


@pytest.mark.parametrize(("text", "reason"), [
    ('root ::= "a"{2000000000,2147483647}', "parse"),
    ('root ::= root "a"', "left-recursion"),
    ("", "no-rules"),
    ('root ::= x "a"\nx ::= "" | root', "left-recursion"),
])
def test_rejected_like_the_reference(text, reason):
    out, dt = _timed(text)
    assert isinstance(out, GrammarError) and out.reason == reason
    assert dt < 1.0
    assert ours_session(text, "root", []) == ref.session(text, "root", [])


def test_star_of_star_is_a_grammar():
    out, dt = _timed('root ::= ("a"*)*')
    assert isinstance(out, Grammar) and dt < 1.0
    out.accept_str("aaa")
    assert out.is_complete()
    steps = [(0, 0, b"a")] * 3
    assert ours_session('root ::= ("a"*)*', "root", steps) == ref.session('root ::= ("a"*)*', "root", steps)


def test_stacks_die_on_first_token():
    g = Grammar.from_text('root ::= "a"')
    with pytest.raises(GrammarError, match="Unexpected empty grammar stack"):
        g.accept_str("z")
    steps = [(0, 0, b"z")]
    assert ours_session('root ::= "a"', "root", steps) == ref.session('root ::= "a"', "root", steps)


def test_min_above_max_refused_where_the_reference_hangs():
    out, dt = _timed('root ::= "a"{5,0}')
    assert isinstance(out, GrammarError) and out.reason == "repetition-bounds" and dt < 1.0
    # the reference generates rules until it runs out of memory (std::bad_alloc: reported as a
    # parse error when its parser catches it, else std::terminate)
    r = _reference("parse_outcome", 'root ::= "a"{5,0}')
    assert _ran_out_of_memory(r), r


def test_deep_nesting_where_the_reference_crashes():
    text = "root ::= " + "(" * NEST + '"a"' + ")" * NEST
    out, dt = _timed(text)
    assert isinstance(out, Grammar)
    assert dt < 10.0  # ~0.3 s of CPU
    out.accept_str("a")
    assert out.is_complete()
    # the reference's recursive-descent parser overflows its stack
    assert _reference("parse_outcome", text) == {"abnormal": "signal 11"}


def test_unbalanced_nesting_fails_fast():
    out, dt = _timed("root ::= " + "(" * NEST)
    assert isinstance(out, GrammarError) and dt < 10.0


HIDDEN_LEFT_RECURSION = 'root ::= x "b"\nx ::= y x "c" | "d"\ny ::= z\nz ::= ""'


def test_hidden_left_recursion_refused_where_the_reference_never_returns():
    out, dt = _timed(HIDDEN_LEFT_RECURSION)
    assert isinstance(out, GrammarError) and out.reason == "hidden-left-recursion" and dt < 1.0
    # the reference's init expands stacks without end until an allocation fails; it throws
    # std::bad_alloc out of llama_grammar_init_impl (whatever the machine's speed: the outcome
    # is memory exhaustion under the cap, long before the CPU limit)
    r = _reference("init_outcome", HIDDEN_LEFT_RECURSION, "root")
    assert r == {"ok": False, "exception": "std::bad_alloc"}, r


def test_exponential_ambiguity_is_bounded():
    # every accepted "a" may end any number of the nested groups: stacks multiply
    text = 'root ::= ("a" (("a" ("a" "b"?)?)?)?)*'
    g = Grammar.from_text(text)
    t0 = time.thread_time()
    try:
        for _ in range(200):
            g.accept_char(97)
    except GrammarError as e:
        assert e.reason == "stack-limit"
    assert time.thread_time() - t0 < 10.0


def _spm():
    from pyggml.parity import corpus
    from pyggml.parity.grammar import TableVocab
    from pyggml.reference import model as ref_model

    [path] = [p for p in corpus.vocab_ggufs() if p.name == "ggml-vocab-llama-spm.gguf"]
    handle, _, log = ref_model.load(str(path), vocab_only=True)
    assert handle != ref.ffi.NULL, log[-300:]
    return handle, TableVocab(*ref.vocab_pieces(handle))


def test_stacks_die_on_first_token_with_a_vocab():
    from pyggml.grammar import GrammarSampler
    from pyggml.parity.grammar import _accept_state, _ours_state
    from pyggml.reference import model as ref_model

    handle, vocab = _spm()
    try:
        text = 'root ::= "a"'
        tok = vocab.pieces.index(b"b")
        ours = Grammar.from_text(text, vocab=vocab)
        theirs = ref.Grammar(text, model=handle)
        st_o = _accept_state(ours, tok, _ours_state)
        st_r = theirs.accept(2, tok, b"")
        theirs.close()
        assert st_o == st_r and "Unexpected empty grammar stack" in st_o["error"]
        # the reference asserts (GGML_ASSERT(!stacks.empty())) on the next apply: a clear error
        sampler = GrammarSampler(vocab, text, n_vocab=len(vocab.pieces))
        t0 = time.thread_time()
        with pytest.raises(GrammarError):
            sampler.accept(tok)
        with pytest.raises(GrammarError) as ei:
            apply_all(sampler.grammar, sampler.index)
        assert ei.value.reason == "internal"
        assert time.thread_time() - t0 < 1.0
    finally:
        ref_model.free(handle)


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_grammar_sampler_is_an_error(text):
    # llama_sampler_init_grammar treats an empty string as "no grammar" (it constrains
    # nothing) and returns NULL for a text without rules; pyggml raises for both rather than
    # sample unconstrained without saying so
    from pyggml.grammar import GrammarSampler
    from pyggml.parity.grammar import TableVocab

    with pytest.raises(GrammarError) as ei:
        GrammarSampler(TableVocab([b"a"], [False]), text)
    assert ei.value.reason == "no-rules"
