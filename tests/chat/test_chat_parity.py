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
