"""The GBNF parser: symbol ids, generated rules, errors (pyggml.grammar.parser)."""

from __future__ import annotations

import pytest

from pyggml.errors import GrammarError
from pyggml.grammar import MAX_REPETITION_THRESHOLD, GreType, parse
from pyggml.grammar.parser import ALT, CHAR, CHAR_ALT, CHAR_NOT, CHAR_RNG_UPPER, END, RULE_REF


def test_ids_in_order_of_first_mention():
    p = parse('root ::= a b\nb ::= "x"\na ::= "y"')
    assert p.symbol_ids == {"root": 0, "a": 1, "b": 2}
    assert p.rules[0] == [(RULE_REF, 1), (RULE_REF, 2), (END, 0)]


def test_char_class_elements():
    p = parse("root ::= [^a-cx]")
    assert p.rules[0] == [(CHAR_NOT, 97), (CHAR_RNG_UPPER, 99), (CHAR_ALT, 120), (END, 0)]


def test_repetition_rewrites():
    p = parse('root ::= "a"{1,3}')
    # S{1,3} -> S root_2 ; root_2 ::= S root_1 | ; root_1 ::= S |
    assert p.rules[0] == [(CHAR, 97), (RULE_REF, 2), (END, 0)]
    assert p.rules[1] == [(CHAR, 97), (ALT, 0), (END, 0)]
    assert p.rules[2] == [(CHAR, 97), (RULE_REF, 1), (ALT, 0), (END, 0)]


@pytest.mark.parametrize(("text", "message", "position"), [
    ('root ::= "a', "unexpected end of input", 11),
    ("root ::= x", "Undefined rule identifier 'x'", None),
    ("root := x", "expecting ::= at := x", 5),
    ('root ::= "\\q"', 'unknown escape at \\q"', 10),
    ('root ::= "\\x4"', 'expecting 2 hex chars at 4"', 12),
    ('root ::= "a"{x}', "expecting an int at x}", 13),
    ('root ::= "a"{1x', "expecting ',' at x", 14),
    ("root ::= *", "expecting preceding item to */+/?/{ at ", 10),
    ('root ::= "a"{99999999999999999999}', "stoull", 13),
    ("root ::= <[4294967296]>", "parsed token id is too big at 4294967296]>", 11),
    ("root ::= <foo>", "no vocab to parse token at <foo>", 9),
    ('root ::= ("a"', "expecting ')' at ", 13),
])
def test_error_messages(text, message, position):
    with pytest.raises(GrammarError) as ei:
        parse(text)
    assert ei.value.message == message
    if position is not None:
        assert ei.value.position == position


def test_repetition_thresholds():
    with pytest.raises(GrammarError, match="number of repetitions exceeds"):
        parse(f'root ::= "a"{{{MAX_REPETITION_THRESHOLD + 1}}}')
    with pytest.raises(GrammarError, match="multiplied by the new repetition"):
        parse('root ::= ("a"{0,50}){50}')
    # a maximum above the threshold means "no maximum"
    assert parse('root ::= "a"{0,5000}').rules == parse('root ::= "a"*').rules


def test_nul_ends_the_text():
    assert parse('root ::= "a"\0 junk').rules == parse('root ::= "a"').rules


def test_gretype_values():
    assert [t.value for t in GreType] == list(range(10))
