"""Memory parity cannot hide a refusal: calls pyggml refuses while generating programs are cases
compared with what the reference does on the same call (an abort, in a forked child of the
isolated worker, with its assert text)."""

from __future__ import annotations

import random

import pytest

from pyggml.parity import Options, run_component
from pyggml.parity import memory as pm
from pyggml.reference import memory as ref


def _refused_recurrent(seed: int, n_programs: int = 6) -> pm.Refused:
    rng = random.Random(seed)
    refused: pm.Refused = []
    for _ in range(n_programs):
        pm.random_recurrent_program(rng, 20, refused)
    return refused


def test_refused_recurrent_ops_abort_the_reference_on_the_same_assert():
    refused = _refused_recurrent(0)
    assert refused
    for (spec, err), r in zip(refused, ref.kv_run_isolated([s for s, _ in refused]), strict=True):
        ours = pm.refused_outcome(err)
        assert ours["assert"] is not None, err
        assert ours == pm.reference_outcome(r), (spec["ops"][-1], r)


def test_refused_layouts_abort_the_reference_on_the_same_assert():
    refused: pm.Refused = []
    pm.layout_cases(random.Random(0), 30, refused)
    assert refused
    for (spec, err), r in zip(refused, ref.kv_run_isolated([s for s, _ in refused]), strict=True):
        assert pm.refused_outcome(err) == pm.reference_outcome(r), (spec, r)


def test_a_reference_that_returns_is_a_mismatch():
    spec, err = _refused_recurrent(0)[0]
    accepted = {**spec, "ops": spec["ops"][:-1] + [["can_shift"]]}  # a call in place of the refused one
    [r] = ref.kv_run_isolated([accepted])
    assert pm.reference_outcome(r)["outcome"] == "returned"
    assert pm.reference_outcome(r) != pm.refused_outcome(err)


def test_python_errors_are_not_dropped_as_refusals(monkeypatch):
    real = pm.apply_op

    def broken(mem, cfg, op, **kw):
        if op[0] == "seq_keep":
            raise TypeError("a bug, not a refusal")
        return real(mem, cfg, op, **kw)

    monkeypatch.setattr(pm, "apply_op", broken)
    with pytest.raises(TypeError):
        _refused_recurrent(0, 20)


def test_component_counts_refused_calls():
    report = run_component("memory", Options())
    assert report.mismatches == 0, report.first_mismatch
    assert report.groups["refused.recurrent"][0] > 0 and report.groups["refused.layout"][0] > 0
