"""Hypothesis differential: random grammars and random strings, pyggml vs the reference."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.errors import GrammarError
from pyggml.parity import first_difference
from pyggml.parity.grammar import (
    _NOT_FOR_REFERENCE,
    GrammarGen,
    _refuses,
    near_miss,
    ours_parse,
    ours_session,
    steps_for,
    try_grammar,
    walk,
)
from pyggml.reference import grammar as ref


@settings(derandomize=True, max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_parse_and_accept(seed, broken):
    rng = random.Random(seed)
    gen = GrammarGen(rng)
    text = gen.broken() if broken else gen.valid()
    if _refuses(text):
        return  # {m,n} with n < m: the reference never returns (test_grammar_hostile covers it)
    ours, theirs = ours_parse(text), ref.parse_outcome(text)
    assert ours == theirs, first_difference(ours, theirs)
    g = try_grammar(text)
    strings = [""]
    if g is not None:
        s = walk(rng, g)
        strings += [s, near_miss(rng, s)]
    for s in strings:
        steps = steps_for(rng, s)
        try:
            o = ours_session(text, "root", steps)
        except GrammarError as e:
            assert e.reason in _NOT_FOR_REFERENCE
            continue  # the reference would not return (test_grammar_hostile covers these)
        r = ref.session(text, "root", steps)
        assert o == r, (text, s, first_difference(o, r))


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('{}[]-"0123456789,:|()*+? \nabc\\^<>!#.é')), max_size=40))
def test_arbitrary_text_after_rule_head(body):
    text = "root ::= " + body
    if _refuses(text):
        return
    ours, theirs = ours_parse(text), ref.parse_outcome(text)
    assert ours == theirs, first_difference(ours, theirs)
