"""The "grammar" parity component against the running reference (a slice of it)."""

from __future__ import annotations

import random

from pyggml.parity import Options, first_difference, run_component
from pyggml.parity.grammar import (
    GrammarGen,
    _refuses,
    ours_parse,
    ours_session,
    steps_for,
    strings_for,
    try_grammar,
)
from pyggml.reference import grammar as ref


def test_component_slice():
    report = run_component("grammar", Options(limit=250))
    assert report.cases == 250
    assert report.mismatches == 0, report.first_mismatch


def test_reference_test_strings_and_files():
    from pyggml.parity.grammar import grammar_files, test_grammars

    rng = random.Random(1)
    for name, text in grammar_files():
        g = try_grammar(text)
        assert g is not None, name
        for s in strings_for(rng, g, 2):
            steps = steps_for(rng, s)
            ours, theirs = ours_session(text, "root", steps), ref.session(text, "root", steps)
            assert ours == theirs, first_difference(ours, theirs)
    assert len(test_grammars()) > 20


def test_generated_broken_grammars():
    gen = GrammarGen(random.Random(7))
    for _ in range(40):
        text = gen.broken()
        if _refuses(text):
            continue  # {m,n} with n < m: the reference never returns
        ours, theirs = ours_parse(text), ref.parse_outcome(text)
        assert ours == theirs, (text, first_difference(ours, theirs))
