"""pyggml.chat against the running reference engine (through the probe)."""

from __future__ import annotations

import pytest

from pyggml.parity import Options, first_difference
from pyggml.parity import chat as parity_chat


def _diffs(cases):
    out = []
    n = 0
    for case in cases:
        n += 1
        d = first_difference(case.ours, case.reference)
        if d is not None:
            out.append(f"{case.name}: {d}")
    return n, out


def test_engine_cases_match_reference():
    n, diffs = _diffs(parity_chat.engine_cases())
    assert n == len(parity_chat.ENGINE_CASES)
    assert diffs == []


# the full conversation x template sweep is `pyggml parity chat --full`; here a slice
@pytest.mark.parametrize("conv", ["special_tokens", "content_parts", "tool_calls", "reasoning"])
def test_every_template_matches_reference(conv):
    # one conversation over all reference templates, add_generation_prompt both ways
    cases = []
    for path in parity_chat._templates():
        source = path.read_text(encoding="utf-8")
        for gen in (True, False):
            v = parity_chat.variables(conv, gen)
            cases.append(parity_chat.Case(f"{path.stem}/{conv}/{gen}",
                                          parity_chat.engine_outcome_ours(source, v),
                                          parity_chat.engine_outcome_reference(source, v)))
    n, diffs = _diffs(cases)
    assert n >= 140
    assert diffs == []


def test_parity_component_registered_and_clean():
    from pyggml.parity import COMPONENTS, run_component

    assert COMPONENTS["chat"] == "pyggml.parity.chat"
    report = run_component("chat", Options(limit=60))
    assert report.cases == 60 and report.mismatches == 0, report.first_mismatch


def test_reference_test_jinja_cases_match():
    n, diffs = _diffs(parity_chat.ported_test_jinja_cases())
    assert n >= 300
    assert diffs == []


# --- errors: the kind (and the reference's message) must match, never just "both raised" ----

def test_runtime_errors_carry_the_references_message():
    # the reference frames a runtime error ("While executing ... Error: <message>"); the parity
    # compares the message inside with pyggml's
    out = parity_chat.engine_outcome_reference("{{ 1 ~ 2 }}", {})
    assert out == {"error": "runtime", "message": 'Unknown operator "~" between Integer and Integer'}
    assert parity_chat.engine_outcome_ours("{{ 1 ~ 2 }}", {}) == out


def test_parse_and_runtime_errors_do_not_match_each_other():
    ref_parse = parity_chat.engine_outcome_reference("{{ 7 // 2 }}", {})
    ref_runtime = parity_chat.engine_outcome_reference("{{ x() }}", {})
    assert ref_parse == {"error": "parse", "message": None}
    assert ref_runtime["error"] == "runtime"
    assert parity_chat.engine_outcome_ours("{{ 7 // 2 }}", {}) == ref_parse
    assert parity_chat.engine_outcome_ours("{{ x() }}", {}) == ref_runtime
    from pyggml.chat.values import EngineError, TemplateSyntaxError

    assert parity_chat.error_ours(EngineError("x")) != ref_parse
    assert parity_chat.error_ours(TemplateSyntaxError("x")) != ref_runtime
    # the same kind with another message is a mismatch too
    assert parity_chat.error_ours(EngineError("Callee is not a function")) != ref_runtime


def test_a_python_exception_inside_pyggml_never_matches(monkeypatch):
    from pyggml.chat import runtime

    def broken(self, node, ctx):
        raise TypeError("internal bug")

    # {{ x() }}: the reference raises a runtime error; pyggml hits an internal TypeError, which
    # its renderer reports as a TemplateError of kind "internal"
    monkeypatch.setitem(runtime._DISPATCH, runtime.nodes.Call, broken)
    ours = parity_chat.engine_outcome_ours("{{ x() }}", {})
    ref = parity_chat.engine_outcome_reference("{{ x() }}", {})
    assert ours["error"] == "internal" and ref["error"] == "runtime" and ours != ref
    # a bare Python exception is an outcome of its own
    assert parity_chat.error_ours(TypeError("x")) == {"error": "python-exception", "message": "TypeError: x"}


def test_chat_level_errors_compare_kind_and_message():
    # gemma-2 refuses tool messages with raise_exception; common_chat_templates_apply wraps the
    # runtime error in its "Unable to generate parser" message
    path = parity_chat.reference_tree() / "models" / "templates" / "google-gemma-2-2b-it.jinja"
    source = path.read_text(encoding="utf-8")
    ours = parity_chat.chat_outcome_ours(source, "tool_calls", True)
    ref = parity_chat.chat_outcome_reference(source, "tool_calls", True)
    assert ref["error"] == "runtime" and ref["message"].startswith("Jinja Exception: Conversation roles")
    assert ours == ref
