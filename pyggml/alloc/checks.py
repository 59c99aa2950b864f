"""The reference test's correctness checks, on a planned outcome.

llama.cpp: tests/test-alloc.cpp check_all_allocated, check_max_size, check_no_overlap (with
can_reuse_memory and memory_overlap) and the dummy backend's allocated_total, restated over
the allocator IR (``ir.Graph``) and an outcome of ``scenario.run``/``plan``.  Each returns a
list of problems (empty = the check passes), so a failing scenario says what went wrong.
"""

from __future__ import annotations

from typing import Any

from pyggml.alloc.gallocr import can_inplace_ops
from pyggml.alloc.ir import FLAG_OUTPUT, SIZE_MAX, Graph


def _root(g: Graph, t: int) -> int:
    while g.view_src[t] >= 0:
        t = g.view_src[t]
    return t


def all_allocated(g: Graph, outcome: dict[str, Any]) -> list[str]:
    """Every node has memory (check_all_allocated)."""
    tensors = outcome["tensors"]
    return [f"node {g.names[t]} has no memory" for t in g.nodes if tensors[t] is None]


def max_size(g: Graph, outcome: dict[str, Any], max_sizes: list[int],
             ids: list[int] | None = None) -> list[str]:
    """offset + nbytes within the buffer type's max size (check_max_size over ``ids``, default:
    every tensor placed by gallocr)."""
    tensors = outcome["tensors"]
    out = []
    for t in ids if ids is not None else range(g.n_tensors):
        p = tensors[t]
        if p is None:
            continue
        limit = max_sizes[p["buffer"]] or SIZE_MAX
        if p["offset"] + g.sizes[t] > limit:
            out.append(f"{g.names[t]} ends at {p['offset'] + g.sizes[t]} > max size {limit}")
    return out


def _can_reuse(g: Graph, current_i: int, current: int, other: int) -> bool:
    # can_reuse_memory: `other` must not be an output nor be read (directly or through a view)
    # by any node from the current one on, except the current node's own read when in-place
    if g.flags[other] & FLAG_OUTPUT:
        return False
    inplace = can_inplace_ops()
    for k in range(current_i, len(g.nodes)):
        t = g.nodes[k]
        for s in g.srcs[t]:
            if t == current and g.ops[t] in inplace:
                continue
            if s == other:
                return False
            if s >= 0 and g.view_src[s] == other:
                return False
    return True


def no_overlap(g: Graph, outcome: dict[str, Any]) -> list[str]:
    """Nodes whose memory overlaps are allowed to share it (check_no_overlap)."""
    tensors = outcome["tensors"]
    out = []
    nodes = g.nodes
    for i in range(len(nodes)):
        for j in range(i):
            t, o = nodes[i], nodes[j]
            if t == o:
                out.append(f"node {g.names[t]} appears twice")
                continue
            if _root(g, t) == _root(g, o):
                continue
            pt, po = tensors[t], tensors[o]
            if pt is None or po is None or (pt["buffer"], pt["chunk"]) != (po["buffer"], po["chunk"]):
                continue
            a0, b0 = pt["offset"], po["offset"]
            if a0 + g.sizes[t] > b0 and b0 + g.sizes[o] > a0 and not _can_reuse(g, i, t, o):
                out.append(f"{g.names[t]} overlaps live {g.names[o]}")
    return out


def allocated_total(outcome: dict[str, Any], buffer_id: int = 0) -> int:
    """Bytes of the backend buffers of one buffer id (the dummy backend's allocated_total)."""
    return sum(outcome["buffers"][buffer_id])
