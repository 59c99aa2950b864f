"""The graph allocator's rules (ggml-alloc.c ggml_gallocr_*), one scenario each, plus the
scenario runner's outcome conventions, lifetimes, and alloc_ctx_tensors' splitting."""

from __future__ import annotations

from typing import Any

import pytest

from pyggml.alloc import plan
from pyggml.alloc.build import Builder
from pyggml.alloc.ctx_tensors import split_sizes
from pyggml.alloc.gallocr import GallocrPlan, State, hash_size
from pyggml.alloc.ir import SIZE_MAX, BuftSpec
from pyggml.alloc.lifetime import lifetimes, table
from pyggml.errors import AllocError

D = [{"alignment": 8, "max_size": 0}]


def go(b: Builder, out: int, bufts: list[dict[str, Any]] = D, steps: list[dict[str, Any]] | None = None,
       ) -> dict[str, Any]:
    b.set_output(out)
    b.expand(out)
    return plan(b.scenario(bufts, steps))


def two_buffers(op: str, leaf_buffer: int, node_buffer: int) -> tuple[Builder, int, int]:
    """x = input(4) and the output y = op(x), x on buffer type leaf_buffer and y on node_buffer."""
    b = Builder()
    x = b.input(4)
    y = b.op(op, x)
    b.set_output(y)
    b.expand(y)
    b.g.leaf_buffer_ids = [leaf_buffer]
    b.g.node_buffer_ids = [node_buffer]
    return b, x, y


def test_inplace_reuses_single_child_parent() -> None:
    b = Builder()
    x = b.input(4)
    y = b.scale(b.mean(x))
    m = b.g.srcs[y][0]
    o = go(b, y)
    assert o["tensors"][y] == o["tensors"][m]


@pytest.mark.parametrize("why", ["two_children", "output", "layout", "not_inplace_op", "view_parent",
                                 "external"])
def test_inplace_refused(why: str) -> None:
    b = Builder()
    x = b.input(4)
    p = b.op("MEAN", x, ne=(4, 1, 1, 1))
    if why == "external":
        p = b.new((4,), preallocated=True)
    if why == "output":
        b.set_output(p)
    if why == "view_parent":
        p = b.reshape(p, (2, 2))
    if why == "layout":
        y = b.op("ADD", p, ne=(2, 2, 1, 1))
    elif why == "not_inplace_op":
        y = b.op("CONT", p)
    else:
        y = b.scale(p)
    out = b.add(y, p) if why == "two_children" else y
    o = go(b, out)
    assert o["ok"]
    base = b.g.view_src[p] if b.g.view_src[p] >= 0 else p
    if why != "external":
        assert o["tensors"][base] is not None
    assert o["tensors"][y] != o["tensors"][p]


def test_outputs_never_freed_inputs_first() -> None:
    b = Builder()
    x = b.input(4)
    a = b.scale(x)
    b.set_output(a)
    c = b.op("CONT", a)
    d = b.op("CONT", c)
    late = b.input(4)                  # an input used late is still placed before any node
    e = b.add(d, late)
    o = go(b, e)
    t = o["tensors"]
    assert t[late]["offset"] == 16 and t[x]["offset"] == 0
    assert t[a]["offset"] not in (t[c]["offset"], t[d]["offset"])    # a stays live


def test_preallocated_and_views_are_not_placed() -> None:
    b = Builder()
    w = b.new((8,), preallocated=True)
    v = b.view_1d(w, 4, 8)              # a view of a pre-allocated tensor
    x = b.input(4)
    y = b.add(v, x)
    o = go(b, y)
    assert o["tensors"][w] is None and o["tensors"][v] is None
    assert o["tensors"][y] == o["tensors"][x]


def test_op_none_view_is_not_counted() -> None:
    # a GGML_OP_NONE view (ggml-backend's allocation dependency) does not count as a view of
    # its view_src: once its src is consumed, the view_src is freed
    b = Builder()
    x = b.input(4)
    y = b.op("CONT", x)
    dep = b.view(y, (4,), op="NONE")
    z = b.op("CONT", y)
    b.set_output(z)
    b.expand(z)
    b.g.nodes.insert(b.g.nodes.index(z), dep)
    o = plan(b.scenario(D))
    lives = {lt.name: lt for lt in lifetimes(b.g)}
    assert lives[b.g.names[y]].free_step == b.g.nodes.index(z)
    assert o["ok"]


def test_inplace_ignores_the_node_buffer_id() -> None:
    b, _, y = two_buffers("SCALE", 0, 1)
    o = plan(b.scenario(D + D, [{"call": "reserve"}, {"call": "alloc_graph"}, {"call": "get_buffer_size"}]))
    assert o["tensors"][y] == {"buffer": 0, "chunk": 0, "offset": 0}    # x's memory, buffer 0
    assert o["buffers"] == [[16], []] and o["steps"][-1] == [16, 0]


def test_needs_realloc_and_multi_buffer_alloc_graph() -> None:
    b, x, y = two_buffers("CONT", 0, 1)
    bufts = D + D
    bigger = {"nodes": b.g.nodes + [b.op("CONT", y)], "leafs": b.g.leafs}
    b.g.nodes = bigger["nodes"][:1]
    steps = [{"call": "needs_realloc"}, {"call": "alloc_graph"}, {"call": "reserve"},
             {"call": "needs_realloc"}, {"call": "alloc_graph"}, {"call": "needs_realloc", "graph": bigger},
             {"call": "get_buffer_size"}]
    o = plan(b.scenario(bufts, steps))
    assert o["steps"] == [True, False, True, False, True, True, [16, 16]]
    assert o["ok"] is False and o["error"] == "alloc_graph failed"   # the run goes on
    assert o["tensors"][x] == {"buffer": 0, "chunk": 0, "offset": 0}
    assert o["tensors"][y] == {"buffer": 1, "chunk": 0, "offset": 0}


def test_reserve_n_size_allocates_nothing() -> None:
    b = Builder()
    x = b.input(6)
    y = b.op("CONT", x)
    o = go(b, y, D, [{"call": "reserve_n_size"}, {"call": "get_buffer_size"}])
    assert o["steps"] == [[48], [0]] and o["buffers"] == [[]]


def test_shared_buffer_types_share_one_buffer() -> None:
    b, _, y = two_buffers("CONT", 0, 1)
    o = plan(b.scenario(D + [{"shared_with": 0}], [{"call": "reserve"}, {"call": "alloc_graph"},
                                                   {"call": "get_buffer_size"}]))
    assert o["buffers"] == [[32], [32]]
    assert o["steps"][-1] == [32, 0]
    assert o["tensors"][y] == {"buffer": 0, "chunk": 0, "offset": 16}


def test_refused_buffer_fails_reserve() -> None:
    b = Builder()
    y = b.op("CONT", b.input(64))
    o = go(b, y, [{"alignment": 8, "max_size": 0, "fail_above": 100}], [{"call": "reserve"}])
    assert o["ok"] is False and o["error"] == "reserve failed" and o["buffers"] == [[]]
    # alloc_graph after it: the plan stands but there is no buffer (a NULL dereference there)
    o = go(b, y, [{"alignment": 8, "max_size": 0, "fail_above": 100}])
    assert o["error"] == "aborted"


def test_aborts_become_outcomes() -> None:
    b = Builder()
    y = b.op("CONT", b.input(4))
    b.set_output(y)
    b.expand(y)
    b.g.node_buffer_ids = [-1]
    b.g.leaf_buffer_ids = [0]
    with pytest.raises(AllocError):
        plan(b.scenario(D))                       # the probe refuses bad ids as well
    # more distinct tensors than the hash set holds: ggml_hash_find_or_insert aborts
    b = Builder()
    srcs = [b.new((4,)) for _ in range(10)]
    y = b.op("ADD", *srcs)
    sc = b.scenario(D)
    sc["nodes"], sc["leafs"] = [y], []
    from pyggml.alloc import scenario

    assert plan(sc) == scenario.ABORTED and scenario.last_abort_reason == "fatal error"


def test_hash_set_size() -> None:
    assert [hash_size(n) for n in (0, 2, 4, 1000, 1031, 1032)] == [2, 2, 5, 1031, 1031, 2053]


def test_alloc_ctx_tensors_splits() -> None:
    b = Builder()
    for n in (2, 2, 6, 1, 10, 2):
        b.new((n,))
    b.view_1d(2, 1, 4)
    g = b.g
    st = State.initial(g)
    assert split_sizes(g, st, 8, 16) == [(0, 2, 16), (2, 3, 24), (3, 4, 8), (4, 5, 40), (5, 7, 8)]
    assert split_sizes(g, st, 8, SIZE_MAX) == [(0, 7, 96)]
    steps = [{"call": "alloc_ctx_tensors_size"}, {"call": "alloc_ctx_tensors"},
             {"call": "alloc_ctx_tensors"}]
    o = plan(b.scenario([{"alignment": 8, "max_size": 16}], steps))
    assert o["steps"] == [96, True, False]        # nothing left the second time
    assert o["buffers"] == [[16, 24, 8, 40, 8]]
    assert o["tensors"][6] == {"buffer": 0, "chunk": 1, "offset": 4}


def test_lifetime_table() -> None:
    b = Builder()
    x = b.input(4)
    y = b.scale(x)
    z = b.op("CONT", y)
    b.set_output(z)
    b.expand(z)
    lives = lifetimes(b.g)
    by = {lt.tensor: lt for lt in lives}
    assert by[y].inplace_of == b.g.names[x] and by[x].handed_to == b.g.names[y]
    assert by[y].free_step == 1 and by[z].output and by[z].free_step is None
    assert "in place of" in table(lives)


def test_planner_reuse_across_reserves() -> None:
    b = Builder()
    y = b.op("CONT", b.input(4))
    b.set_output(y)
    b.expand(y)
    galloc = GallocrPlan([BuftSpec()])
    st = State.initial(b.g)
    assert galloc.reserve(b.g, st) and galloc.reserve(b.g, st)
    assert galloc.rec.log == [("alloc", 0, 1, 32)]   # same sizes: no new buffer
