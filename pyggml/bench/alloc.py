"""Bench: graph allocation of SmolLM2's decode graph (30 layers, ubatch of 1, 256 KV cells).

- ``alloc.plan.smollm2``: a fresh allocator plans the graph (reserve_n + alloc_graph), on
  pyggml's planner (``GallocrPlan`` over the IR) and on the reference gallocr (the probe's
  recording buffer type: no memory is touched on either side); ``alloc.plan_cold.smollm2``: the
  same, with what pyggml derives once per IR graph (gallocr.tensor_facts) rebuilt every time;
- ``alloc.needs_realloc.smollm2``: is a reservation still valid for an unchanged graph?
  pyggml's ``Gallocr.needs_realloc`` answers from its reserve-time cache over a real ggml graph
  of the same tensors; the reference's ggml_gallocr_needs_realloc scans every node and src;
- ``alloc.ctx_tensors.smollm2``: ggml_backend_alloc_ctx_tensors_from_buft for the model's
  weights (sizes, buffer splitting, bump allocation of each tensor; no memory touched).

The decode graph comes from the reference (``pyggml.reference.alloc.decode_graph``).  Each
reference call is one cffi call into the probe running the operation once (the state restore
between repetitions happens in C and is part of the measured call; it writes two pointers per
tensor); the note gives the time measured inside C around the reference call alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from . import Pair

N_CTX = 256
N_UBATCH = 1


def _decode_ir() -> dict[str, Any]:
    from ..parity.corpus import smollm2
    from ..reference.alloc import decode_graph

    g = decode_graph(smollm2(), n_ctx=N_CTX, n_ubatch=N_UBATCH)
    return {k: v for k, v in g.items() if k != "meta"}


def weights_scenario(decode: dict[str, Any]) -> dict[str, Any]:
    """The model's weights (the decode graph's pre-allocated tensors that are not KV cache) as
    a fresh no_alloc context to allocate in one buffer type."""
    tensors = []
    for t in decode["tensors"]:
        if t["preallocated"] and not t["name"].startswith("cache_"):
            tensors.append({**t, "src": [], "op": 0, "flags": 0, "view_src": -1, "view_offs": 0,
                            "preallocated": False})
    return {"bufts": decode["bufts"], "tensors": tensors, "nodes": [], "leafs": [],
            "steps": [{"call": "alloc_ctx_tensors", "buft": 0}]}


def real_graph(sc: dict[str, Any]) -> tuple[Any, Any]:
    """The scenario's tensors as real ggml tensors (no memory; pre-allocated ones get a fake
    data pointer, their views data at view_offs from it, as ggml_new_tensor_impl does) and a
    pyggml.ggml.Graph built by expanding the nodes in order.  Returns (context, graph)."""
    from .._native import ffi
    from ..ggml import Context, Graph
    from ..ggml import types as gtypes

    ts = sc["tensors"]
    size = max(len(sc["nodes"]), len(sc["leafs"]), 1)
    ctx = Context.for_tensors(len(ts), graph_size=size)
    objs = []
    for i, t in enumerate(ts):
        obj = ctx.new_tensor(t["type"], [gtypes.blck_size(t["type"])], name=t["name"][:63])
        p = obj.ptr
        for d in range(4):
            p.ne[d] = t["ne"][d]
            p.nb[d] = t["nb"][d]
        p.op = t["op"]
        p.flags = t["flags"]
        vs = t["view_src"]
        if vs >= 0:
            p.view_src = objs[vs].ptr
            p.view_offs = t["view_offs"]
            if objs[vs].ptr.data != ffi.NULL:
                p.data = ffi.cast("char *", objs[vs].ptr.data) + t["view_offs"]
        elif t["preallocated"]:
            p.data = ffi.cast("void *", (1 << 40) + 64 * i)
        objs.append(obj)
    for obj, t in zip(objs, ts, strict=True):
        for j, s in enumerate(t["src"]):
            obj.ptr.src[j] = objs[s].ptr if s >= 0 else ffi.NULL
    graph = Graph(ctx, size)
    for n in sc["nodes"]:
        graph.build_forward_expand(objs[n])
    ctx.keep_alive(objs)
    return ctx, graph


def _timed_pair(ours: Any, ref: Any, mode: int, what: str) -> Pair:
    """A Pair whose note reports the median of the times the probe measured in C around the
    reference call alone (updated on every reference call, so it covers the timed rounds)."""
    c_ns: list[int] = []
    pair = Pair(ours=ours, reference=lambda: None, note=what)

    def reference() -> int:
        ns = ref.run(mode)
        c_ns.append(ns)
        pair.note = f"{what}; reference in C alone {statistics.median(c_ns) / 1e3:.1f} us"
        return ns

    pair.reference = reference
    return pair


def _planner() -> tuple[dict[str, Any], Any, Callable[[], bool]]:
    """The decode graph's IR, its parsed graph, and one planning by a fresh allocator
    (reserve_n + alloc_graph)."""
    from ..alloc import GallocrPlan, Scenario, State

    ir = _decode_ir()
    sc = Scenario.from_json(ir)
    g = sc.graph

    def plan_once() -> bool:
        p = GallocrPlan(sc.bufts)
        st = State.initial(g)
        return p.reserve_n(g, st, g.node_buffer_ids, g.leaf_buffer_ids) and p.alloc_graph(g, st)

    return ir, g, plan_once


def _plan() -> Pair:
    from ..reference.alloc import Bench

    ir, _, ours = _planner()
    return _timed_pair(ours, Bench(ir), Bench.PLAN, f"{len(ir['nodes'])} nodes, {len(ir['leafs'])} leafs")


def _plan_cold() -> Pair:
    from ..reference.alloc import Bench

    ir, g, plan_once = _planner()

    def ours() -> bool:
        # as for a graph never planned before: drop what the planner derives once per IR graph
        # (non-NULL srcs, in-place flags, layout ids; see gallocr.tensor_facts)
        for key in ("_nonnull", "_slots", "_facts"):
            g.__dict__.pop(key, None)
        return plan_once()

    return _timed_pair(ours, Bench(ir), Bench.PLAN, f"{len(ir['nodes'])} nodes, per-graph facts rebuilt")


def _needs_realloc() -> Pair:
    from ..alloc.apply import Gallocr
    from ..ggml import BufferType
    from ..reference.alloc import Bench

    ir = _decode_ir()
    ctx, graph = real_graph(ir)
    galloc = Gallocr([BufferType.cpu()])
    if not galloc.reserve(graph) or galloc.needs_realloc(graph):
        raise AssertionError("pyggml: a freshly reserved graph should not need a realloc")
    def ours() -> bool:
        return galloc.needs_realloc(graph)

    pair = _timed_pair(ours, Bench(ir), Bench.NEEDS_REALLOC, f"{len(ir['nodes'])} nodes, unchanged graph")
    pair._keep = (ctx, graph, galloc)  # type: ignore[attr-defined]
    return pair


def _ctx_tensors() -> Pair:
    from ..alloc import Scenario
    from ..alloc.buffers import Buffers
    from ..alloc.ctx_tensors import alloc_ctx_tensors
    from ..alloc.gallocr import State
    from ..reference.alloc import Bench

    wsc = weights_scenario(_decode_ir())
    sc = Scenario.from_json(wsc)
    g = sc.graph
    b = sc.bufts[0]

    def ours() -> Any:
        return alloc_ctx_tensors(g, State.initial(g), Buffers(1), 0, b.alignment, b.max_size)

    return _timed_pair(ours, Bench(wsc), Bench.ALLOC_CTX, f"{len(wsc['tensors'])} weight tensors")


CASES = {
    "alloc.plan.smollm2": _plan,
    "alloc.plan_cold.smollm2": _plan_cold,
    "alloc.needs_realloc.smollm2": _needs_realloc,
    "alloc.ctx_tensors.smollm2": _ctx_tensors,
}
