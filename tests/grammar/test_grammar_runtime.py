"""Stacks, acceptance and the candidates filter (pyggml.grammar.runtime)."""

from __future__ import annotations

import pytest

from pyggml.errors import GrammarError
from pyggml.grammar import Grammar, decode_utf8
from pyggml.parity.grammar import TableVocab, grammar_files


def test_json_document_accepted():
    g = Grammar.from_text(dict(grammar_files())["json.gbnf"])
    g.accept_str('{"a": [1, 2.5e3, "x\\u00e9"], "b": {"c": null}}')
    assert g.is_complete()


def test_dies_on_first_char():
    g = Grammar.from_text('root ::= "a"')
    with pytest.raises(GrammarError) as ei:
        g.accept_str("b")
    assert ei.value.reason == "empty-stacks"
    assert g.stacks == []


def test_partial_utf8_is_carried():
    g = Grammar.from_text('root ::= "é"')
    g.accept_str(b"\xc3")
    assert g.partial_utf8 == (3, 1)
    g.accept_str(b"\xa9")
    assert g.is_complete()


def test_decode_utf8_invalid_sequence():
    assert decode_utf8(b"\x80", (0, 0)) == ([0], (0, -1))
    assert decode_utf8(b"a\xe4\xb8", (0, 0)) == ([97, 0], (0x4 << 6 | 0x38, 1))


def test_apply_and_accept_with_vocab():
    vocab = TableVocab([b"a", b"b", b"ab", b"", b"</s>"], [False, False, False, False, True])
    g = Grammar.from_text('root ::= "a" "b"?', vocab=vocab)
    assert g.apply([0, 1, 2, 3, 4]) == [True, False, True, False, False]
    g.accept(0)
    assert g.apply([0, 1, 2, 3, 4]) == [False, True, False, False, True]
    g.accept(4)  # EOG with a complete stack: nothing happens


def test_eog_when_incomplete_raises():
    vocab = TableVocab([b"a", b"</s>"], [False, True])
    g = Grammar.from_text('root ::= "a" "a"', vocab=vocab)
    with pytest.raises(GrammarError) as ei:
        g.accept(1)
    assert ei.value.reason == "eog-not-allowed"


def test_lazy_trigger_pattern_replays_text():
    vocab = TableVocab([b"hello ", b"<tool>", b"x", b"y"], [False] * 4)
    g = Grammar.from_text('root ::= "<tool>" "x"+', vocab=vocab, lazy=True,
                          trigger_patterns=[r"<tool>"])
    assert g.apply([0, 1, 2, 3]) == [True] * 4   # awaiting the trigger: nothing filtered
    g.accept(0)
    assert g.awaiting_trigger
    g.accept(1)
    assert not g.awaiting_trigger
    assert g.apply([0, 1, 2, 3]) == [False, False, True, False]


def test_lazy_trigger_token():
    vocab = TableVocab([b"a", b"<t>", b"x"], [False] * 3)
    g = Grammar.from_text('root ::= "<t>" "x"', vocab=vocab, lazy=True, trigger_tokens=[1])
    g.accept(0)
    g.accept(1)
    assert g.apply([0, 1, 2]) == [False, False, True]


def test_bad_trigger_pattern_is_a_grammar_error():
    with pytest.raises(GrammarError) as ei:
        Grammar.from_text('root ::= "a"', lazy=True, trigger_patterns=["("])
    assert ei.value.reason == "trigger-pattern"
