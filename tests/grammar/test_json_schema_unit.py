"""JSON schema -> GBNF (pyggml.grammar.json_schema): the reference's own expectations, the
public API, and hostile schemas (bounded time, JSONSchemaError, never a RecursionError)."""

from __future__ import annotations

import json
import re
import time

import pytest

from pyggml.errors import GrammarError, JSONSchemaError
from pyggml.grammar import Grammar, json_schema_to_grammar, parse
from pyggml.grammar.json_schema import build_grammar, convert, gbnf_format_literal, schema_document
from pyggml.grammar.json_schema_value import dump_float, dumps
from pyggml.parity.json_schema_gen import (
    STACK_EXHAUSTING_SCHEMAS,
    integration_test_schemas,
    reference_test_schemas,
)


def _trim(s: str) -> str:
    # tests/test-json-schema-to-grammar.cpp trim(): outer whitespace, then leading indentation
    return re.sub(r"(^|\n)[ \t]+", r"\1", s.strip(" \n\r\t"))


REF_TESTS = reference_test_schemas()


def test_reference_tests_found():
    names = {t.name for t in REF_TESTS}
    assert len(REF_TESTS) >= 80
    assert {"min 0", "unknown type", "empty schema (any value)", "main-0"} <= names


@pytest.mark.parametrize("t", [t for t in REF_TESTS if t.expected or not t.expect_ok], ids=lambda t: t.name)
def test_reference_expectation(t):
    """The expected grammar each test of the reference states (its own trim-compare)."""
    if not t.expect_ok:
        with pytest.raises(JSONSchemaError):
            json_schema_to_grammar(t.schema)
        return
    out = json_schema_to_grammar(t.schema)
    assert _trim(out) == _trim(t.expected)


def test_reference_grammars_parse():
    """Every grammar made from the reference's test schemas parses with pyggml's GBNF parser."""
    for t in REF_TESTS:
        if t.expect_ok:
            g = parse(json_schema_to_grammar(t.schema))
            assert "root" in g.symbol_ids, t.name


def test_dict_and_text_agree():
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": -3, "maximum": 250},
            "é": {"enum": ["x", 1.5, None, 10**20]},
        },
        "required": ["n"],
        "additionalProperties": {"type": "string", "maxLength": 4},
    }
    assert json_schema_to_grammar(schema) == json_schema_to_grammar(json.dumps(schema))
    assert json_schema_to_grammar(schema, force_gbnf=True) == json_schema_to_grammar(
        json.dumps(schema).encode()
    )


def test_error_messages():
    with pytest.raises(JSONSchemaError) as e:
        json_schema_to_grammar({"type": "kaboom"})
    assert (
        e.value.message == "JSON schema conversion failed:\nJSON schema error at #: unrecognized type kaboom"
    )
    assert e.value.reason == "schema"
    with pytest.raises(JSONSchemaError) as e:
        json_schema_to_grammar({"type": "string", "pattern": "^(a$"})
    assert e.value.message == "JSON schema conversion failed:\nInvalid pattern ^(a$: unbalanced parentheses"
    assert e.value.reason == "conversion"
    with pytest.raises(JSONSchemaError) as e:
        json_schema_to_grammar('{"type": ')
    assert e.value.reason == "json"
    with pytest.raises(JSONSchemaError) as e:
        json_schema_to_grammar({"type": "integer", "maximum": -(2**63)})  # -INT64_MIN wraps
    assert e.value.message.endswith("At least one of min_value or max_value must be set")


def test_unsupported_pattern_warns_not_prints(capsys):
    conv = convert({"type": "string", "pattern": "^\\d+$"})
    assert "root ::= string" in conv.grammar
    assert conv.warnings == [
        "pattern ^\\d+$ is not supported (unsupported escape: \\d), accepting any string"
    ]
    assert capsys.readouterr().err == ""


def test_nlohmann_dump():
    assert [dump_float(x) for x in (1e15, 1e16, 100.0, 0.0001, 1e-05, -0.0, 0.1, 1.5e300, 123456.75)] == [
        "1e+15",
        "1e+16",
        "100.0",
        "0.0001",
        "1e-05",
        "-0.0",
        "0.1",
        "1.5e+300",
        "123456.75",
    ]
    assert dumps({"a": [1, '\x01"\\é\n', None, True]}) == '{"a":[1,"\\u0001\\"\\\\é\\n",null,true]}'


def _quick(fn, limit: float = 2.0):
    # CPU time of this thread: the bound holds on a loaded machine too
    t0 = time.thread_time()
    try:
        return fn()
    finally:
        assert time.thread_time() - t0 < limit


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"items":' * 50_000 + "{}" + "}" * 50_000,
        '{"anyOf":[' * 3000 + "{}" + "]}" * 3000,
    ],
)
def test_deep_nesting_is_an_error(text):
    with pytest.raises(JSONSchemaError) as e:
        _quick(lambda: json_schema_to_grammar(text))
    assert e.value.reason in ("too-deep", "schema")


def test_deep_python_value():
    v: dict = {}
    for _ in range(20_000):
        v = {"items": v}
    with pytest.raises(JSONSchemaError) as e:
        _quick(lambda: json_schema_to_grammar(v))
    assert e.value.reason == "too-deep"


def test_long_ref_chain():
    defs = {
        f"d{i}": {"type": "object", "properties": {"x": {"$ref": f"#/$defs/d{i + 1}"}}} for i in range(5000)
    }
    defs["d5000"] = {"type": "null"}
    with pytest.raises(JSONSchemaError) as e:
        _quick(lambda: json_schema_to_grammar({"$ref": "#/$defs/d0", "$defs": defs}))
    assert e.value.reason == "too-deep"


def test_recursive_refs_terminate():
    schema = {
        "$ref": "#/$defs/node",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "next": {"$ref": "#/$defs/node"},
                    "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "additionalProperties": False,
            }
        },
    }
    g = _quick(lambda: json_schema_to_grammar(schema))
    assert "ref-defs-node ::=" in g
    # a cycle made only of $refs
    g = _quick(
        lambda: json_schema_to_grammar(
            {"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}}
        )
    )
    assert "ref-defs-a ::= ref-defs-b" in g


def test_allof_self_inlining_is_refused():
    # the reference recurses on these until its stack overflows
    for schema in STACK_EXHAUSTING_SCHEMAS:
        with pytest.raises(JSONSchemaError) as e:
            _quick(lambda s=schema: json_schema_to_grammar(s))
        assert e.value.reason == "too-deep"


def test_huge_values_are_text_only():
    g = _quick(
        lambda: json_schema_to_grammar({"type": "array", "minItems": 2**31 - 2, "maxItems": 2**31 - 1})
    )
    assert "{2147483645,}" in g
    g = _quick(lambda: json_schema_to_grammar({"type": "string", "minLength": 2**31 - 1}))
    assert "char{2147483647,}" in g
    g = _quick(
        lambda: json_schema_to_grammar({"type": "integer", "minimum": -(2**63) + 1, "maximum": 2**64 - 1})
    )
    assert g.startswith("root ::= (")
    name = "é" * 20_000
    g = _quick(
        lambda: json_schema_to_grammar(
            {"type": "object", "properties": {name: {}, name + "x": {}}, "additionalProperties": True}
        ),
        5.0,
    )
    assert "additional-k ::=" in g


def test_pattern_nesting_limit():
    g = _quick(
        lambda: json_schema_to_grammar(
            {"type": "string", "pattern": "^" + "(" * 5000 + "a" + ")" * 5000 + "$"}
        )
    )
    assert "root ::= string" in g


def test_bad_python_values():
    for v in ({"type": "string", "x": object()}, {"const": float("nan")}, {"minimum": 10**400}):
        with pytest.raises(JSONSchemaError):
            json_schema_to_grammar(v)
    with pytest.raises(JSONSchemaError):
        json_schema_to_grammar('{"const": "\\ud800"}')
    with pytest.raises(JSONSchemaError):
        json_schema_to_grammar('{"minimum": 1e400}')
    with pytest.raises(JSONSchemaError):
        json_schema_to_grammar(b'{"const": "\xff"}')


def _accepts(g, text: str) -> bool:
    try:
        g.accept_str(text)
    except GrammarError:
        return False
    return g.is_complete()


@pytest.mark.parametrize("t", integration_test_schemas(), ids=lambda t: t.name[:40])
def test_integration_strings(t):
    """tests/test-grammar-integration.cpp test_schema: the converted grammar accepts the passing
    strings and rejects the failing ones (run on pyggml's grammar runtime)."""
    text = json_schema_to_grammar(t.schema)
    for s in t.passing:
        assert _accepts(Grammar.from_text(text), s), s
    for s in t.failing:
        assert not _accepts(Grammar.from_text(text), s), s


def test_build_grammar_sub_schema_ref():
    """tests/test-json-schema-to-grammar.cpp "sub-schema $ref": add_schema("root", a property node
    of a parsed document) names the property's $ref rule."""
    from pyggml.parity.corpus import reference_tree
    from pyggml.parity.json_schema_gen import TEST_FILE, _literals

    src = (reference_tree() / TEST_FILE).read_text(encoding="utf-8")
    at = src.index('"sub-schema $ref",')
    parameters_at = src.rindex("common_json::parse(", 0, at)
    (parameters,), _ = _literals(src, parameters_at, 1)
    (_, _, expected), _ = _literals(src, at, 3)
    doc = schema_document(parameters)
    out = build_grammar(lambda b: b.add_schema("root", doc.root.properties[0][1]))
    assert _trim(out) == _trim(expected)


def test_build_grammar_rules_and_dotall():
    def cb(b):
        b.add_rule("root", "tool-call")
        assert b.add_rule("tool call", '"x"') == "tool-call"
        assert b.add_rule("tool call", '"y"') == "tool-call0"
        b.add_schema("args", {"type": "string", "pattern": "^a.b$"})

    out = build_grammar(cb, dotall=True)
    assert "dot ::= [\\U00000000-\\U0010FFFF]" in out
    assert 'args ::= "\\"" ("a" dot "b") "\\""' in out
    assert gbnf_format_literal('a"b\\\n') == '"a\\"b\\\\\\n"'
