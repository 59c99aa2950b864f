"""Allocator parity against the running reference gallocr (probe_alloc.cpp).

Every test-alloc.cpp scenario: the reference's own outcome passes test-alloc's checks (the
probe observes what the test observes), and pyggml's plan equals it.  Plus decode graphs the
reference builds for real models, the reference's aborts as outcomes, and the probe's input
validation.
"""

from __future__ import annotations

import pytest

from pyggml.alloc import plan
from pyggml.parity.alloc_scenarios import SCENARIOS, check_outcome, strip_checks
from pyggml.reference import alloc as ref


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_alloc_testalloc_scenario(name: str) -> None:
    sc = SCENARIOS[name]()
    bare = strip_checks(sc)
    reference = ref.plan(bare)
    assert check_outcome(sc, reference) == []
    assert plan(bare) == reference


def test_alloc_reference_views_share_their_source() -> None:
    # test_view_inplace: x1..x3 are views of x0 (placed at x0 + view_offs); x5 reuses x4 in place
    sc = strip_checks(SCENARIOS["view_inplace"]())
    out = ref.plan(sc)
    x0, x3, x4, x5 = (out["tensors"][i] for i in (0, 3, 4, 5))
    assert x3 == {**x0, "offset": x0["offset"] + 4}
    assert x5 == x4


def test_alloc_reference_needs_realloc() -> None:
    # the static ggml_gallocr_needs_realloc through the probe's private copy of ggml-alloc.c
    sc = strip_checks(SCENARIOS["reuse_and_free"]())
    half = {"nodes": sc["nodes"][:2], "leafs": sc["leafs"]}
    sc["steps"] = [{"call": "needs_realloc"}, {"call": "reserve"}, {"call": "needs_realloc"},
                   {"call": "needs_realloc", "graph": half}]
    out = ref.plan(sc)
    assert out["steps"] == [True, True, False, True]
    assert plan(sc) == out


def test_alloc_reference_abort_is_an_outcome() -> None:
    # a src that is neither node nor leaf overflows gallocr's hash set (sized from the node and
    # leaf counts): ggml_hash_find_or_insert aborts
    sc = {"bufts": [{"alignment": 8, "max_size": 0}],
          "tensors": [{"name": "a", "type": 0, "ne": [4, 1, 1, 1], "nb": [4, 16, 16, 16]},
                      {"name": "b", "type": 0, "ne": [4, 1, 1, 1], "nb": [4, 16, 16, 16]},
                      {"name": "c", "type": 0, "ne": [4, 1, 1, 1], "nb": [4, 16, 16, 16], "op": 2,
                       "src": [0, 1]}],
          "nodes": [2], "leafs": []}
    out = ref.plan(sc)
    assert out == ref.ABORTED
    assert plan(sc) == out


def test_alloc_reference_rejects_bad_scenarios() -> None:
    base = {"bufts": [{"alignment": 8}], "nodes": [0], "leafs": []}
    t = {"name": "a", "type": 0, "ne": [4, 1, 1, 1], "nb": [4, 16, 16, 16], "op": 2}
    with pytest.raises(ValueError, match="bad ggml type"):
        ref.plan({**base, "tensors": [{**t, "type": 4}]})     # Q4_2: removed, block size 0
    with pytest.raises(ValueError, match="power of 2"):
        ref.plan({**base, "bufts": [{"alignment": 12}], "tensors": [t]})
    with pytest.raises(ValueError, match="bad tensor id"):
        ref.plan({**base, "tensors": [{**t, "src": [7]}]})


def test_alloc_decode_graph_smollm2(smollm2_path) -> None:
    g = ref.decode_graph(smollm2_path, n_ctx=256, n_ubatch=1)
    assert g["meta"] == {"n_ctx": 256, "n_ubatch": 1, "n_tokens": 1, "n_outputs": 1}
    names = [t["name"] for t in g["tensors"]]
    assert "result_output" in names and "cache_k_l29" in names
    sc = {k: v for k, v in g.items() if k != "meta"}
    out = ref.plan(sc)
    assert out["ok"] and len(out["buffers"][0]) == 1
    pre = [t["preallocated"] for t in g["tensors"]]
    assert all(p is None for p, is_pre in zip(out["tensors"], pre, strict=True) if is_pre)
    assert plan(sc) == out
    # the same graph split over 4 KiB chunks with 128-byte alignment
    small = {**sc, "bufts": [{"alignment": 128, "max_size": 4096}]}
    out_small = ref.plan(small)
    assert len(out_small["buffers"][0]) > 1
    assert plan(small) == out_small


def test_alloc_decode_graph_tiny_model(tmp_path) -> None:
    from pyggml.parity import tinymodels

    spec = tinymodels.spec_grid()[0]
    path = tinymodels.write(tinymodels.build(spec), tmp_path, "tiny")
    g = ref.decode_graph(path, n_ctx=64, n_ubatch=8, n_outputs=8, cache=False)
    sc = {k: v for k, v in g.items() if k != "meta"}
    out = ref.plan(sc)
    assert out["ok"]
    # test-alloc's checks hold on a real graph too (no live overlap, every node placed)
    assert check_outcome(sc, out) == []
    assert plan(sc) == out


def test_alloc_ctx_tensors_weights(smollm2_path) -> None:
    from pyggml.bench.alloc import weights_scenario

    g = ref.decode_graph(smollm2_path, n_ctx=256, n_ubatch=1)
    for max_size in (0, 8 << 20):
        w = weights_scenario(g)
        w["bufts"] = [{"alignment": 32, "max_size": max_size}]
        w["steps"] = [{"call": "alloc_ctx_tensors_size", "buft": 0}, {"call": "alloc_ctx_tensors", "buft": 0}]
        out = ref.plan(w)
        assert out["steps"][1] is True
        assert sum(out["buffers"][0]) == out["steps"][0]
        assert (len(out["buffers"][0]) > 1) == (max_size > 0)
        assert plan(w) == out
