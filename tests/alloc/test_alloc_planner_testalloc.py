"""Every scenario of the reference's tests/test-alloc.cpp, planned by pyggml, with its checks.

The graphs are the ones the paritychecker builds (``pyggml.parity.alloc_scenarios``), planned
through ``pyggml.alloc.plan`` and held to test-alloc.cpp's own assertions (``check_outcome``: all
allocated, no illegal overlap, within max size, the allocated totals), plus the placements the
reference test's comments spell out.  Parity of the exact placements with the reference gallocr
is the paritychecker's job (pyggml parity alloc).
"""

from __future__ import annotations

from typing import Any

import pytest

from pyggml.alloc import plan
from pyggml.parity.alloc_scenarios import SCENARIOS, check_outcome, strip_checks


def planned(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    sc = SCENARIOS[name]()
    outcome = plan(strip_checks(sc))
    assert outcome["ok"], outcome
    # the allocating calls succeed (needs_realloc / get_buffer_size steps answer other things)
    assert all(r for s, r in zip(sc["steps"], outcome["steps"], strict=True)
               if s["call"] in ("alloc_graph", "reserve")), outcome
    assert check_outcome(sc, outcome) == []
    return sc, outcome


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_testalloc_scenario_checks(name: str) -> None:
    planned(name)


def test_max_size_tensor_too_large() -> None:
    _, o = planned("max_size_tensor_too_large")
    # the comments of the reference test: chunk 0 [0,16) and [16,24), chunk 1 [0,24)
    assert o["tensors"][0] == {"buffer": 0, "chunk": 0, "offset": 0}
    assert o["tensors"][1] == {"buffer": 0, "chunk": 0, "offset": 16}
    assert o["tensors"][2] == {"buffer": 0, "chunk": 1, "offset": 0}


def test_not_enough_chunks() -> None:
    _, o = planned("not_enough_chunks")
    assert len(o["buffers"][0]) == 16
    assert o["buffers"][0][-1] > 8   # the last chunk grew past the max size


def test_view_inplace() -> None:
    _, o = planned("view_inplace")
    x0, x3, x4, x5 = (o["tensors"][i] for i in (0, 3, 4, 5))
    assert x0 == {"buffer": 0, "chunk": 0, "offset": 0}
    assert x4 == {"buffer": 0, "chunk": 0, "offset": 16}
    assert x3 == {"buffer": 0, "chunk": 0, "offset": 4}      # views: view_src + view_offs
    assert x5 == x4                                          # in-place add reuses x4


def test_reuse_and_free() -> None:
    _, o = planned("reuse_and_free")
    t = o["tensors"]
    assert t[3] == t[1]     # x3 reuses x1
    assert t[6] == t[4]     # x6 reuses x4, x5 freed
    assert t[8] == t[3]     # x8 reuses x3


def test_prefer_already_allocated_memory() -> None:
    _, o = planned("prefer_already_allocated_memory")
    assert o["tensors"][2] == {"buffer": 0, "chunk": 0, "offset": 0}   # in the freed 24b block


def test_multiple_buffer_types() -> None:
    sc, o = planned("multiple_buffer_types")
    assert len(sc["leafs"]) == 5 and len(sc["nodes"]) == 8
    for t in range(4):   # a0, a1, b0, b1: allocated before planning
        assert o["tensors"][t] is None


def test_reallocation() -> None:
    sc, o = planned("reallocation+needs_realloc")
    only_first = plan({**strip_checks(sc), "steps": [{"call": "alloc_graph"}]})
    assert only_first["ok"] and sum(only_first["buffers"][0]) == 40
    assert sum(o["buffers"][0]) == 40  # the dummy backend's allocated_total
    assert o["steps"][:3] == [True, False, True]   # the second graph needs a reallocation
    assert o["buffers"][0] != only_first["buffers"][0]   # a chunk grew: reallocated
    second = [s["graph"] for s in sc["steps"] if "graph" in s][-1]
    for t in second["nodes"] + second["leafs"]:
        assert o["tensors"][t] is not None
