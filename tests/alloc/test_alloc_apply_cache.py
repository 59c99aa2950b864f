"""Gallocr.needs_realloc's reserve-time cache gives the reference scan's answer.

The scan itself (GallocrPlan.needs_realloc) is held to the reference by the parity sweep; here
the cached answer is held to the scan on real cgraphs (``materialize``) while tensors gain and
lose memory, and in ``exact`` mode while srcs are rewired behind the allocator's back."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pyggml._native import ffi
from pyggml.alloc.apply import Gallocr
from pyggml.alloc.ir import Scenario
from pyggml.alloc.materialize import materialize
from pyggml.ggml import BufferType
from pyggml.parity.alloc_dags import random_scenario


def _scan(ga: Gallocr, graph: object) -> bool:
    ir, _, state = ga._ir(graph)
    return ga.plan.needs_realloc(ir, state)


def _single_buffer(sc: dict) -> dict:
    sc = dict(sc, bufts=[{"alignment": 32, "max_size": 0}], node_buffer_ids=None, leaf_buffer_ids=None)
    return sc


def _reserved(scenario_seed: int) -> tuple[Any, Any, Any, Any, Gallocr] | None:
    """A random single-buffer graph (IR, ggml context, cgraph, tensor pointers) reserved by a
    fresh Gallocr; None when the graph has no nodes."""
    g = Scenario.from_json(_single_buffer(random_scenario(random.Random(scenario_seed), max_nodes=16))).graph
    if not g.nodes:
        return None
    ctx, graph, ptrs = materialize(g)
    ga = Gallocr(BufferType.cpu())
    assert ga.reserve(graph)
    return g, ctx, graph, ptrs, ga


@pytest.mark.parametrize("seed", range(12))
def test_cached_needs_realloc_matches_scan(seed: int) -> None:
    rng = random.Random(seed)
    got = _reserved(seed)
    if got is None:
        return
    g, ctx, graph, ptrs, ga = got
    assert ga.needs_realloc(graph) == _scan(ga, graph)
    # a pre-allocated tensor read by the graph loses its data: both say realloc
    pre = [t for t in range(g.n_tensors) if g.preallocated[t] and g.view_src[t] < 0]
    if pre:
        t = rng.choice(pre)
        saved = ptrs[t].data
        ptrs[t].data = ffi.NULL
        assert ga.needs_realloc(graph) == _scan(ga, graph)
        assert ga.needs_realloc(graph, exact=True) == _scan(ga, graph)
        ptrs[t].data = saved
    assert ga.alloc_graph(graph)
    assert ga.needs_realloc(graph) is False and _scan(ga, graph) is False
    # planned tensors losing their memory again still fit the plan
    planned = [t for t in range(g.n_tensors) if not g.preallocated[t] and g.view_src[t] < 0]
    for t in rng.sample(planned, min(3, len(planned))):
        ptrs[t].data = ffi.NULL
        ptrs[t].buffer = ffi.NULL
    assert ga.needs_realloc(graph) == _scan(ga, graph)
    # exact mode notices a rewired src and answers with the scan
    node = rng.choice(g.nodes)
    if ptrs[node].src[0] != ffi.NULL:
        ptrs[node].src[0] = ptrs[rng.randrange(g.n_tensors)]
        assert ga.needs_realloc(graph, exact=True) == _scan(ga, graph)


def test_other_graph_uses_the_scan() -> None:
    sc = Scenario.from_json(_single_buffer(random_scenario(random.Random(3), max_nodes=12)))
    _, g1, _ = materialize(sc.graph)
    _, g2, _ = materialize(sc.graph)
    ga = Gallocr(BufferType.cpu())
    assert ga.reserve(g1)
    assert ga.needs_realloc(g2) == _scan(ga, g2)


def _ir_facts(ir: object, addrs: list[int]) -> tuple:
    return (ir.to_json(), ir.names, ir.sizes, ir.preallocated, ir.data, ir.buffer, addrs)  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", range(6))
def test_reused_ir_matches_a_fresh_extraction(seed: int) -> None:
    # Gallocr keeps the IR of the last graph (_IRCache) and reuses it while the graph reads the
    # same; after any change of a field the IR holds it must extract again
    from pyggml.alloc.ir import from_graph

    rng = random.Random(seed)
    got = _reserved(100 + seed)
    if got is None:
        return
    g, ctx, graph, ptrs, ga = got

    def check() -> None:
        ir, addrs, _ = ga._ir(graph)
        assert _ir_facts(ir, addrs) == _ir_facts(*from_graph(graph))

    check()
    assert ga.alloc_graph(graph)
    check()  # only data/buffer changed: reused, with the new memory state
    for what in ("ne", "nb", "type", "op", "flags", "src", "view_offs", "name", "data"):
        p = ptrs[rng.choice(g.nodes + g.leafs)]
        if what in ("ne", "nb"):
            getattr(p, what)[rng.randrange(4)] += 1
        elif what == "type":
            p.type = 1 if p.type == 0 else 0
        elif what == "op":
            p.op = p.op + 1
        elif what == "flags":
            p.flags ^= 2
        elif what == "src":
            p.src[rng.randrange(10)] = ptrs[rng.randrange(g.n_tensors)]
        elif what == "view_offs":
            p.view_offs += 4
        elif what == "name":
            p.name[0] = b"Z"
        else:
            p.data = ffi.NULL
            p.buffer = ffi.NULL
        check()
