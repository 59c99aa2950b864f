"""JSON schema -> GBNF against the running reference (common/json-schema-to-grammar.cpp through
the probe): the reference's test schemas, the seeded generated corpus of ``pyggml parity
json_schema``, a hypothesis differential over free-form schemas, and the GBNF parse of each
grammar by pyggml's parser vs the reference's."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.parity import Options, first_difference
from pyggml.parity import json_schema as js
from pyggml.parity.grammar import _refuses, ours_parse
from pyggml.parity.json_schema_gen import STACK_EXHAUSTING_SCHEMAS, generated_texts, reference_test_schemas
from pyggml.reference import grammar as ref_grammar


def _check(text: str) -> dict:
    ours, theirs = js.pair(text)
    assert ours == theirs, (text[:500], first_difference(ours, theirs))
    return ours


def _check_gbnf(grammar: str) -> None:
    """pyggml's GBNF parser and the reference's agree on the converter's output (some outputs
    are not valid GBNF for either, e.g. a pattern quantifier that cut a UTF-8 sequence)."""
    if _refuses(grammar):
        return  # {m,n} with n < m (e.g. "minimum": INT64_MAX): the reference parser never returns
    ours, theirs = ours_parse(grammar), ref_grammar.parse_outcome(grammar)
    assert ours == theirs, first_difference(ours, theirs)


def test_reference_test_schemas():
    tests = reference_test_schemas()
    for t in tests:
        out = _check(t.schema)
        assert out["ok"] == t.expect_ok, t.name
        if out["ok"]:
            _check_gbnf(out["grammar"])


def test_generated_default_slice():
    n_ok = 0
    for i, text in enumerate(generated_texts(0, 600)):
        out = _check(text)
        if out["ok"]:
            n_ok += 1
            if i % 3 == 0:  # the GBNF check on a third of them keeps the slice fast
                _check_gbnf(out["grammar"])
    assert n_ok > 300


def test_parity_component_runs():
    cases = list(js.cases(Options(limit=120)))
    assert len(cases) == 120
    assert all(c.ours == c.reference for c in cases)


_KEYS = [
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "$defs",
    "a",
    "root",
    "é",
]
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), max_codepoint=0x3000), max_size=6)
_LEAF = st.one_of(
    st.sampled_from(
        [
            "string",
            "integer",
            "number",
            "object",
            "array",
            "boolean",
            "null",
            "date",
            "uuid",
            "date-time",
            "time",
            "#/$defs/a",
            "#/$defs/b",
            "#/properties/a",
            "^[a-c]+$",
            "^a{2,3}(b|c)$",
        ]
    ),
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**65),
    _TEXT,
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
_SCHEMA = st.recursive(
    _LEAF,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(st.sampled_from(_KEYS), kids, max_size=4)
    ),
    max_leaves=14,
)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _SCHEMA, max_size=5))
def test_hypothesis_differential(schema):
    text = json.dumps(schema, ensure_ascii=False)
    out = _check(text)
    if out["ok"]:
        _check_gbnf(out["grammar"])


def test_stack_exhausting_schemas_match_isolated_reference():
    """Schemas the reference recurses on until its stack overflows: pyggml refuses them
    ("too-deep") and the reference, run in a throwaway worker, dies."""
    for schema in STACK_EXHAUSTING_SCHEMAS:
        ours, theirs = js.pair(json.dumps(schema))
        assert ours == theirs == {"ok": False, "error": js.CRASH}


def test_only_a_stack_overflow_matches_too_deep(monkeypatch):
    """A worker that died any other way (an abort, a kill, an exit status of 11) is not the
    reference's stack overflow, so it cannot match pyggml's "too-deep"."""
    import signal

    from pyggml.reference import isolated

    text = json.dumps(STACK_EXHAUSTING_SCHEMAS[0])
    deaths = {"segv": {"aborted": True, "signal": signal.SIGSEGV, "exit_code": -signal.SIGSEGV},
              "abort": {"aborted": True, "signal": signal.SIGABRT, "exit_code": -signal.SIGABRT},
              "kill": {"aborted": True, "signal": signal.SIGKILL, "exit_code": -signal.SIGKILL},
              "exit11": {"aborted": True, "signal": 11, "exit_code": 11}}
    for kind, death in deaths.items():
        monkeypatch.setattr(isolated, "call", lambda *a, death=death, **k: dict(death, stderr=""))
        ours, theirs = js.pair(text)
        assert ours == {"ok": False, "error": js.CRASH}
        assert (ours == theirs) == (kind == "segv"), (kind, theirs)
        ours_b, theirs_b = js.build_pair(text, "root", False)
        assert (ours_b == theirs_b) == (kind == "segv"), (kind, theirs_b)


def test_build_grammar_path():
    """build_grammar's add_schema under several rule names, with and without dotall."""
    for i, text in enumerate(generated_texts(3, 120)):
        name = js.BUILD_NAMES[i % len(js.BUILD_NAMES)]
        ours, theirs = js.build_pair(text, name, i % 2 == 1)
        assert ours == theirs, (text[:300], name, first_difference(ours, theirs))
