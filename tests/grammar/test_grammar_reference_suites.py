"""The scenarios of the reference's grammar tests, each diffed against the running reference.

- tests/test-grammar-parser.cpp: every grammar text it parses (verify_parsing / verify_failure),
  outcome, symbol table and rule table;
- tests/test-grammar-integration.cpp: every ``test_grammar`` grammar with its passing and
  failing strings, accepted one code point at a time as its ``match_string`` does, the stacks
  after each step compared; the missing / custom root checks;
- tests/test-llama-grammar.cpp: the initial stacks of its expression grammar and which of the
  23 candidates ``%`` .. ``;`` each stack rejects.

The grammar texts and strings are read out of the vendored C++ sources
(``pyggml.parity.grammar.test_grammars``), not typed in here.
"""

from __future__ import annotations

import pytest

from pyggml.grammar import Grammar
from pyggml.grammar.runtime import Candidate
from pyggml.parity import first_difference
from pyggml.parity import grammar as pg
from pyggml.parity.grammar import ours_parse, ours_session
from pyggml.reference import grammar as ref

_ALL = pg.test_grammars()
PARSER = [t for t in _ALL if t.name.startswith("test-grammar-parser.cpp")]
INTEGRATION = [t for t in _ALL if t.name.startswith("test-grammar-integration.cpp")]


def _per_code_point(s: str) -> list[tuple[int, int, bytes]]:
    # test-grammar-integration.cpp match_string: llama_grammar_accept per decoded code point
    return [(0, 0, ch.encode("utf-8", "surrogateescape")) for ch in s]


def test_suites_found():
    # 17 verify_parsing + 6 verify_failure grammars; the integration test's own grammars
    assert len(PARSER) == 23
    assert len(INTEGRATION) >= 20
    assert sum(len(t.strings) for t in INTEGRATION) > 300


@pytest.mark.parametrize("tg", PARSER, ids=[t.name for t in PARSER])
def test_parser_suite(tg):
    ours, theirs = ours_parse(tg.text), ref.parse_outcome(tg.text)
    assert ours == theirs, first_difference(ours, theirs)


@pytest.mark.parametrize("tg", INTEGRATION, ids=[t.name for t in INTEGRATION])
def test_integration_suite(tg):
    ours, theirs = ours_parse(tg.text), ref.parse_outcome(tg.text)
    assert ours == theirs, first_difference(ours, theirs)
    for s in [""] + tg.strings:
        steps = _per_code_point(s)
        o, r = ours_session(tg.text, "root", steps), ref.session(tg.text, "root", steps)
        assert o == r, (s, first_difference(o, r))


FOOBAR = '\n        root ::= "foobar"\n    '
CUSTOM = '\n        foobar ::= "foobar"\n    '


@pytest.mark.parametrize(("text", "root"), [(FOOBAR, "nonexistent"), (CUSTOM, "root"), (CUSTOM, "foobar")])
def test_root_symbol_checks(text, root):
    # test_failure_missing_root_symbol / test_custom_root_symbol_check
    steps = _per_code_point("foobar")
    o, r = ours_session(text, root, steps), ref.session(text, root, steps)
    assert o == r, first_difference(o, r)


def test_llama_grammar_stacks_and_rejects():
    # test-llama-grammar.cpp builds the rule table of test-grammar-parser.cpp's expression
    # grammar by hand; the same table comes from parsing that grammar (compared above)
    [tg] = [t for t in PARSER if "ident ::= [a-z] [a-z0-9_]* ws" in t.text]
    o, r = ours_session(tg.text, "root", []), ref.session(tg.text, "root", [])
    assert o == r, first_difference(o, r)
    g = Grammar.from_text(tg.text)
    rejected_by_all = set(range(37, 60))
    for stack in g.stacks:
        cands = [Candidate(i, [37 + i, 0], 0, (0, 0), 0) for i in range(23)]
        rejects = g.reject_candidates_for_stack(stack, cands)
        rejected_by_all &= {c.code_points[0] for c in rejects}
    # a code point is rejected by every stack iff the reference's grammar dies on it
    for cp in range(37, 60):
        steps = [(0, 0, chr(cp).encode())]
        o, r = ours_session(tg.text, "root", steps), ref.session(tg.text, "root", steps)
        assert o == r, (cp, first_difference(o, r))
        assert (cp in rejected_by_all) == ("error" in r["steps"][0])
