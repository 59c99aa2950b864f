"""Every scenario of the reference's tests/test-alloc.cpp, planned by pyggml, with its checks.

The graphs are built like the reference builds them (``pyggml.alloc.build``), planned through
``pyggml.alloc.plan``, and held to test-alloc.cpp's own assertions (all allocated, no illegal
overlap, within max size, the allocated totals).  Parity of the exact placements with the
reference gallocr is the paritychecker's job (pyggml parity alloc).
"""

from __future__ import annotations

from typing import Any

from pyggml.alloc import checks, plan
from pyggml.alloc.build import Builder
from pyggml.alloc.ir import SIZE_MAX, Graph

DEFAULT = [{"call": "alloc_graph"}]  # allocate_graph(): ggml_gallocr_alloc_graph only


def run(b: Builder, out: int, bufts: list[dict[str, Any]], steps: list[dict[str, Any]] | None = None,
        ) -> tuple[Graph, dict[str, Any]]:
    b.set_output(out)
    b.expand(out)
    outcome = plan(b.scenario(bufts, steps or DEFAULT))
    assert outcome["ok"], outcome
    assert all(outcome["steps"]), outcome
    return b.g, outcome


def check(g: Graph, outcome: dict[str, Any], max_sizes: list[int] | None = None) -> None:
    assert checks.all_allocated(g, outcome) == []
    assert checks.no_overlap(g, outcome) == []
    if max_sizes is not None:
        assert checks.max_size(g, outcome, max_sizes) == []


def dummy(max_size: int, alignment: int = 8) -> dict[str, Any]:
    return {"alignment": alignment, "max_size": max_size}


def test_max_size_too_many_tensors() -> None:
    b = Builder()
    x0, x1, x2 = (b.input_bytes(8) for _ in range(3))
    x3 = b.mul(x0, x1)
    x4 = b.add(x1, x2)
    x5 = b.add(x3, x0)
    x6 = b.add(x4, x5)
    g, o = run(b, x6, [dummy(16)])
    check(g, o, [16])
    assert checks.allocated_total(o) <= 16 + 16


def test_max_size_tensor_too_large() -> None:
    b = Builder()
    x0 = b.input_bytes(16)
    x1 = b.input_bytes(8)
    x2 = b.concat(x0, x1, 0)
    g, o = run(b, x2, [dummy(32)])
    check(g, o, [32])
    assert checks.allocated_total(o) <= 32 + 24
    # the comments of the reference test: chunk 0 [0,16) and [16,24), chunk 1 [0,24)
    assert o["tensors"][x0] == {"buffer": 0, "chunk": 0, "offset": 0}
    assert o["tensors"][x1] == {"buffer": 0, "chunk": 0, "offset": 16}
    assert o["tensors"][x2] == {"buffer": 0, "chunk": 1, "offset": 0}


def test_tensor_larger_than_max_size() -> None:
    b = Builder()
    x0 = b.input_bytes(24)
    x1 = b.scale(x0)
    g, o = run(b, x1, [dummy(16)])
    check(g, o)
    assert checks.allocated_total(o) == 24


def test_not_enough_chunks() -> None:
    b = Builder()
    xs = [b.input_bytes(8) for _ in range(17)]
    acc = xs[0]
    for i in range(16):
        acc = b.add(acc, xs[i + 1])
    g, o = run(b, acc, [dummy(8)])
    check(g, o)
    assert checks.allocated_total(o) > 16 * 8
    assert len(o["buffers"][0]) == 16
    assert o["buffers"][0][-1] > 8   # the last chunk grew past the max size


def test_fill_leftover_space() -> None:
    b = Builder()
    x0 = b.input_bytes(8)
    x1 = b.pad(x0, 2)
    x3 = b.mean(x1)
    g, o = run(b, x3, [dummy(16)])
    check(g, o, [16])
    assert checks.allocated_total(o) <= 12 + 16


def test_view_inplace() -> None:
    b = Builder()
    x0 = b.input(4)
    x1 = b.reshape(x0, (2, 2))
    x2 = b.permute(x1, (1, 0, 2, 3))
    x3 = b.view_1d(x2, 2, 4)
    x4 = b.input(2)
    x5 = b.add(x3, x4)
    g, o = run(b, x5, [dummy(32)])
    check(g, o, [32])
    assert checks.allocated_total(o) <= 24
    t = o["tensors"]
    assert t[x0] == {"buffer": 0, "chunk": 0, "offset": 0}
    assert t[x4] == {"buffer": 0, "chunk": 0, "offset": 16}
    assert t[x3] == {"buffer": 0, "chunk": 0, "offset": 4}      # views: view_src + view_offs
    assert t[x5] == t[x4]                                          # in-place add reuses x4


def test_reuse_and_free() -> None:
    b = Builder()
    x0 = b.input_bytes(24)
    x1 = b.input_bytes(8)
    x2 = b.input_bytes(8)
    x3 = b.add(x1, x2)
    x4 = b.pad(x0, 2)
    x5 = b.scale(x4)
    x6 = b.add(x4, x5)
    x7 = b.view_1d(x6, 2, 8)
    x8 = b.add(x3, x7)
    g, o = run(b, x8, [dummy(40)])
    check(g, o, [40])
    assert checks.allocated_total(o) <= 40 + 32 + 32
    t = o["tensors"]
    assert t[x3] == t[x1]     # reuse
    assert t[x6] == t[x4]     # reuse, x5 freed
    assert t[x8] == t[x3]     # reuse


def _merge_free_block(max_size: int) -> None:
    b = Builder()
    x0, x1, x2 = (b.input_bytes(16) for _ in range(3))
    x3 = b.mean(x0)
    x4 = b.mean(x1)
    x5 = b.pad(x2, 2)
    x6 = b.add(x3, x4)
    x7 = b.pad(x6, 5)
    x8 = b.add(x5, x7)
    g, o = run(b, x8, [dummy(max_size)])
    check(g, o, [max_size])
    assert checks.allocated_total(o) <= 32 + 32 + 24


def test_merge_free_block_32() -> None:
    _merge_free_block(32)


def test_merge_free_block_size_max() -> None:
    _merge_free_block(SIZE_MAX)


def test_prefer_already_allocated_memory() -> None:
    b = Builder()
    x0 = b.input_bytes(24)
    x1 = b.mean(x0)
    x2 = b.mean(x1)
    g, o = run(b, x2, [dummy(32, 4)])
    check(g, o)
    assert checks.allocated_total(o) <= 28
    assert o["tensors"][x2] == {"buffer": 0, "chunk": 0, "offset": 0}   # in the freed 24b block


def test_multiple_buffer_types() -> None:
    b = Builder()
    # a0, a1 / b0, b1 live in their own contexts, allocated before planning
    a0 = b.new((4,), name="a0", flags=1, preallocated=True)
    a1 = b.new((4,), name="a1", flags=1, preallocated=True)
    b0 = b.new((6,), name="b0", flags=1, preallocated=True)
    b1 = b.new((1,), name="b1", flags=1, preallocated=True)
    x0 = b.input_bytes(16)
    x1 = b.mul(x0, a0)
    x2 = b.pad(x1, 2)
    x3 = b.mul(x2, b0)
    x4 = b.mean(x3)
    x5 = b.add(x4, b1)
    x6 = b.pad(x5, 3)
    x7 = b.add(x6, a1)
    x8 = b.scale(x7)
    b.set_output(x8)
    b.expand(x8)
    g = b.g
    assert len(g.leafs) == 5 and len(g.nodes) == 8
    leaf_bid = {a0: 0, a1: 0, b0: 1, b1: 1, x0: 0}
    node_bid = {x1: 0, x2: 0, x3: 1, x4: 1, x5: 1, x6: 1, x7: 0, x8: 0}
    g.leaf_buffer_ids = [leaf_bid[t] for t in g.leafs]
    g.node_buffer_ids = [node_bid[t] for t in g.nodes]
    sc = b.scenario([dummy(32), dummy(SIZE_MAX)], [{"call": "reserve_n"}, {"call": "alloc_graph"}])
    o = plan(sc)
    assert o["ok"] and o["steps"] == [True, True]
    check(g, o, [32, SIZE_MAX])
    # the preallocated buffers of the reference test (a: 32, b: 32) come on top of gallocr's
    assert checks.allocated_total(o, 0) + 32 <= 32 + 32 + 24
    assert checks.allocated_total(o, 1) + 32 <= 32 + 24
    for t in (a0, a1, b0, b1):
        assert o["tensors"][t] is None


def test_buffer_size_zero() -> None:
    b = Builder()
    x0 = b.input_bytes(16)
    x1 = b.scale(x0)
    b.set_output(x1)
    b.expand(x1)
    b.g.leaf_buffer_ids = [0]
    b.g.node_buffer_ids = [0]
    o = plan(b.scenario([dummy(SIZE_MAX), dummy(SIZE_MAX)], [{"call": "reserve_n"}, {"call": "alloc_graph"}]))
    assert o["ok"] and o["steps"] == [True, True]
    check(b.g, o)
    assert checks.allocated_total(o, 0) == 16
    assert checks.allocated_total(o, 1) == 0


def test_reallocation() -> None:
    # both graphs' tensors live in one scenario; the second graph is a step's "graph"
    b = Builder()
    x0 = b.input_bytes(24)
    x1 = b.input_bytes(16)
    x2 = b.view_1d(x0, 4, 0)
    x3 = b.add(x2, x1)
    b.set_output(x3)
    b.expand(x3)
    first_nodes, first_leafs = list(b.g.nodes), list(b.g.leafs)
    y0 = b.input_bytes(20)
    y1 = b.input_bytes(20)
    y2 = b.add(y0, y1)
    b.set_output(y2)
    b.expand(y2)
    second = {"nodes": b.g.nodes[len(first_nodes):], "leafs": b.g.leafs[len(first_leafs):]}
    b.g.nodes, b.g.leafs = first_nodes, first_leafs
    only_first = plan(b.scenario([dummy(32, 4)], DEFAULT))
    assert only_first["ok"] and sum(only_first["buffers"][0]) == 40
    steps = [{"call": "alloc_graph"}, {"call": "needs_realloc", "graph": second},
             {"call": "alloc_graph", "graph": second}]
    o = plan(b.scenario([dummy(32, 4)], steps))
    assert o["ok"] and o["steps"] == [True, True, True]
    assert checks.allocated_total(o) == 40
    assert o["buffers"][0] != only_first["buffers"][0]   # a chunk grew: reallocated
    for t in (y0, y1, y2):
        assert o["tensors"][t] is not None


def _graph_reuses_allocation(add_alloc_dep: bool) -> bool:
    b = Builder()
    x0 = b.input_bytes(16)
    x1 = b.scale(x0)
    x2 = b.scale(x1)
    x3 = b.scale(x2)
    b.set_output(x3)
    b.expand(x3)
    if add_alloc_dep:
        # ggml_backend_sched_split_graph: add_alloc_dep(nodes[0], nodes[2]) appends after
        # nodes[2] a GGML_OP_NONE view of x1 (ggml_view_tensor) whose src[0] is x1
        dep = b.view(x1, b.g.ne[x1], op="NONE")
        b.g.nodes.append(dep)
    o = plan(b.scenario([dummy(SIZE_MAX)], DEFAULT))
    assert o["ok"]
    return o["tensors"][x1] == o["tensors"][x2]


def test_graph_optimize_alloc_dep() -> None:
    assert _graph_reuses_allocation(False)
    assert not _graph_reuses_allocation(True)
