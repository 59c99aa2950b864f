"""An IR graph turned back into real ggml tensors and a cgraph (for planning and timing).

Like the probe rebuilds a scenario for the reference (probe_alloc.cpp build): tensors are made
in a ``no_alloc`` context and their fields set directly (op, src, view_src, view_offs, nb,
flags); gallocr never computes, so no op constructor is needed.  Pre-allocated tensors get a
fake, never dereferenced data pointer: such a graph can be planned (``apply.Gallocr``), timed,
and allocated, but not computed.
"""

from __future__ import annotations

from typing import Any

from pyggml._native import ffi
from pyggml.alloc import cgraph
from pyggml.alloc.ir import Graph, _type_facts


def ir_blck(type_: int) -> int:
    return _type_facts(type_)[0]

_FAKE_BASE = 1 << 40   # fake data addresses of pre-allocated tensors (never read)


def materialize(g: Graph) -> tuple[Any, Any, list[Any]]:
    """(context, pyggml.ggml.Graph, tensor pointers by IR id) holding ``g``."""
    from pyggml.ggml import Context
    from pyggml.ggml import Graph as GGMLGraph

    size = max(len(g.nodes), len(g.leafs), 1)
    ctx = Context.for_tensors(g.n_tensors + 1, graph_size=size)
    ptrs = []
    for t in range(g.n_tensors):
        blck = ir_blck(g.types[t])
        tensor = ctx.new_tensor(g.types[t], (blck,), name=g.names[t][:63] or None)
        ptrs.append(tensor.ptr)
    for t, p in enumerate(ptrs):
        for d in range(4):
            p.ne[d] = g.ne[t][d]
            p.nb[d] = g.nb[t][d]
        p.op = g.ops[t]
        p.flags = g.flags[t]
        for j, s in enumerate(g.srcs[t]):
            p.src[j] = ptrs[s] if s >= 0 else ffi.NULL
        vs = g.view_src[t]
        if vs >= 0:
            p.view_src = ptrs[vs]
            p.view_offs = g.view_offs[t]
        elif g.preallocated[t]:
            p.data = ffi.cast("void *", _FAKE_BASE + 64 * t)
    for t, p in enumerate(ptrs):  # views of tensors with data get data at creation
        vs = g.view_src[t]
        if vs >= 0 and ptrs[vs].data != ffi.NULL:
            p.data = ffi.cast("char *", ptrs[vs].data) + g.view_offs[t]
    graph = GGMLGraph(ctx, size)
    nodes, leafs = cgraph.arrays(graph.ptr)
    for i, t in enumerate(g.nodes):
        nodes[i] = ptrs[t]
    for i, t in enumerate(g.leafs):
        leafs[i] = ptrs[t]
    ints = ffi.cast("int *", graph.ptr)
    ints[1] = len(g.nodes)
    ints[2] = len(g.leafs)
    return ctx, graph, ptrs
