"""``Gallocr``: pyggml's graph allocator for real ggml graphs, planned in Python, applied in
backend buffers.

Mirrors ggml_gallocr's public calls (llama.cpp: ggml/src/ggml-alloc.c ggml_gallocr_new_n,
reserve, reserve_n, reserve_n_size, alloc_graph, get_buffer_size; needs_realloc is internal
there).  Planning runs on the IR extracted from the graph (``ir.extract``; the last one is
reused while the graph reads the same apart from the tensors' memory, see ``_IRCache``); applying gives
each planned chunk a backend buffer of the buffer type (ggml_vbuffer_alloc) and sets each
tensor's data pointer the way ggml_gallocr_init_tensor does: ggml_backend_tensor_alloc for an
owned tensor, ggml_backend_view_init for a view.

``needs_realloc`` is answered from a cache built at reserve time instead of the reference's
scan of every node and src (see ``_Cache``): for the planned cgraph with its node array
unchanged, the answer only depends on whether the tensors that were pre-allocated when planned
still have data, gathered with numpy straight from the ggml_tensor structs.  Otherwise it
falls back to the exact scan over a fresh IR.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from itertools import chain
from typing import Any

import numpy as np

from pyggml._native import ffi, ggml
from pyggml.alloc import cgraph
from pyggml.alloc.gallocr import EXTERNAL, GallocrPlan, State, has_data, nonnull_srcs
from pyggml.alloc.ir import BuftSpec, Graph, extract
from pyggml.errors import AllocError, GGMLError

_USAGE_COMPUTE = 2                        # GGML_BACKEND_BUFFER_USAGE_COMPUTE
_DATA_WORD = ffi.offsetof("struct ggml_tensor", "data") // 8
_SRC_WORD = ffi.offsetof("struct ggml_tensor", "src") // 8
# type (with the padding after it: both written once at creation), ne[4], nb[4], view_src
_STATIC_WORDS = ((0,) + tuple(ffi.offsetof("struct ggml_tensor", "ne") // 8 + i for i in range(8))
                 + (ffi.offsetof("struct ggml_tensor", "view_src") // 8,))


class _Cache:
    """What ggml_gallocr_needs_realloc reads, snapshot at reserve time, for one cgraph.

    The reference's scan reads, per node and per src of each node: the tensor pointer, its
    data, view_src, and (for a tensor without data that is no view) its alloc size, i.e.
    type/ne/nb.  A tensor planned by gallocr keeps passing while its shape stays as it was
    (gaining data only helps), and a view stays a view while its view_src field does; so with
    srcs, shapes and view_src unchanged -- fields pyggml's API never changes after a tensor is
    created -- the only tensors that can flip the answer are those that had data when planned
    (pre-allocated: recorded without a buffer), by losing it.  The fast answer needs the same
    cgraph with the same node array (a bytes compare) and the data words of the pre-allocated
    tensors, gathered with numpy straight from their ggml_tensor structs.

    ``exact`` also compares every node's src pointers and every tensor's type/ne/nb/view_src
    with a snapshot (for code that rewrites those fields through cffi), and falls back to the
    scan when any differs.
    """

    __slots__ = ("graph_addr", "ints", "slots", "nodes_arr", "n_nodes", "n_leafs", "nodes_buf", "nodes_snap",
                 "mem", "static_idx", "static_snap", "pre_data_idx")

    def __init__(self, graph_ptr: Any, ir: Graph, addrs: list[int], state: State) -> None:
        n_nodes, n_leafs = cgraph.counts(graph_ptr)
        self.graph_addr = cgraph.addr(graph_ptr)
        self.ints = ffi.cast("int *", graph_ptr)
        self.slots = ffi.cast("struct ggml_tensor ***", graph_ptr)
        self.nodes_arr = self.slots[2]
        self.n_nodes, self.n_leafs = n_nodes, n_leafs
        self.nodes_buf = ffi.buffer(self.nodes_arr, 8 * n_nodes)
        self.nodes_snap = self.nodes_buf[:]
        # the distinct tensors the reference's scan reads: nodes and their srcs
        nn = nonnull_srcs(ir)
        seen = dict.fromkeys(ir.nodes)
        seen.update(dict.fromkeys(chain.from_iterable(map(nn.__getitem__, ir.nodes))))
        ids = list(seen)
        self.mem = None
        if not ids:
            return
        node_addrs = [addrs[t] for t in ir.nodes]
        addrs = [addrs[t] for t in ids]
        base = min(addrs)
        span = max(addrs) - base + ffi.sizeof("struct ggml_tensor")
        # a uint64 view of the address range holding the tensor structs; only the gathered
        # words (fields of live tensors of this graph) are ever read
        iface = {"version": 3, "shape": (span // 8,), "typestr": "<u8", "data": (base, True)}
        self.mem = np.asarray(_Raw(iface))
        rel = (np.array(addrs, dtype=np.int64) - base) // 8
        nrel = (np.array(node_addrs, dtype=np.int64) - base) // 8
        # recorded without a buffer and no view: had data when planned
        loc = state.loc
        pre = np.array([ir.view_src[t] < 0 and has_data(loc[t]) for t in ids], dtype=bool)
        self.pre_data_idx = rel[pre] + _DATA_WORD
        words = [rel + w for w in _STATIC_WORDS] + [nrel + _SRC_WORD + j for j in range(10)]
        self.static_idx = np.concatenate(words)
        self.static_snap = self.mem[self.static_idx].copy()

    def needs_realloc(self, graph_ptr: Any, exact: bool = False) -> bool | None:
        """True/False, or None when the graph is not the planned one (scan instead)."""
        if cgraph.addr(graph_ptr) != self.graph_addr:
            return None
        ints = self.ints
        if ints[1] != self.n_nodes or ints[2] != self.n_leafs:
            return True  # different counts: the reference answers true before looking further
        # the same cgraph object, holding the same node array
        if self.slots[2] != self.nodes_arr or self.nodes_buf[:] != self.nodes_snap:
            return None
        mem = self.mem
        if mem is None:
            return False
        if exact and not np.array_equal(mem[self.static_idx], self.static_snap):
            return None  # a src, type, shape or view_src changed: scan
        return not mem[self.pre_data_idx].all()


class _IRCache:
    """The IR last extracted from one cgraph, reused while the graph reads the same.

    ``ir.extract`` (every field of every tensor, through numpy) is most of what a call on a real
    graph costs; between reserve and alloc_graph, or from one alloc_graph to the next, usually
    only the tensors' data/buffer (the memory state) change.  A hit needs the same cgraph
    object with the same node and leaf arrays, and every tensor's fields that the IR holds
    (type, ne, nb, op, flags, srcs, view_src, view_offs, name) as they were; those are compared
    level by level of discovery, so a tensor's struct is only read once the tensors that point
    at it have been found unchanged.  Then only data and buffer are read again.
    """

    __slots__ = ("graph_addr", "n_nodes", "n_leafs", "arrays", "ir", "addrs", "levels", "mem", "idx",
                 "snap", "data_idx", "buffer_idx")

    def __init__(self, graph_ptr: Any, ir: Graph, addrs: list[int], levels: list[int]) -> None:
        self.graph_addr = cgraph.addr(graph_ptr)
        self.n_nodes, self.n_leafs = cgraph.counts(graph_ptr)
        self.arrays = self._arrays(graph_ptr)
        self.ir, self.addrs, self.levels = ir, addrs, levels
        self.mem = None
        if not addrs:
            return
        base = min(addrs)
        span = max(addrs) - base + ffi.sizeof("struct ggml_tensor")
        iface = {"version": 3, "shape": (span // 8,), "typestr": "<u8", "data": (base, True)}
        self.mem = np.asarray(_Raw(iface))
        rel = (np.array(addrs, dtype=np.uint64) - np.uint64(base)).astype(np.int64) // 8
        self.idx = rel[:, None] + _IR_WORDS[None, :]
        self.snap = self._static(0, len(addrs))
        self.data_idx = rel + _DATA_WORD
        self.buffer_idx = rel + 1

    def _arrays(self, graph_ptr: Any) -> tuple[bytes, bytes]:
        nodes_arr, leafs_arr = cgraph.arrays(graph_ptr)
        return cgraph.array_bytes(nodes_arr, self.n_nodes), cgraph.array_bytes(leafs_arr, self.n_leafs)

    def _static(self, lo: int, hi: int) -> np.ndarray:
        w = self.mem[self.idx[lo:hi]]  # type: ignore[index]
        w[:, _IR_LOW32] &= np.uint64(0xFFFFFFFF)   # type / op: the low half of their words
        w[:, _IR_HIGH32] >>= np.uint64(32)          # flags: the high half of its word
        return w

    def lookup(self, graph_ptr: Any) -> tuple[Graph, list[int]] | None:
        if cgraph.addr(graph_ptr) != self.graph_addr:
            return None
        if cgraph.counts(graph_ptr) != (self.n_nodes, self.n_leafs) or self._arrays(graph_ptr) != self.arrays:
            return None
        ir = self.ir
        if self.mem is None:
            return replace(ir), list(self.addrs)
        n = len(self.addrs)
        bounds = self.levels + [n]
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            if not np.array_equal(self._static(lo, hi), self.snap[lo:hi]):
                return None
        data = self.mem[self.data_idx]
        buffer = self.mem[self.buffer_idx]
        g = replace(ir, preallocated=((data != 0) | (buffer != 0)).tolist(), data=data.tolist(),
                    buffer=buffer.tolist())
        # what the planner derived from the (shared, unchanged) lists stays valid
        for key in ("_nonnull", "_slots", "_facts"):
            if key in ir.__dict__:
                g.__dict__[key] = ir.__dict__[key]
        return g, list(self.addrs)


def _ir_words() -> tuple[np.ndarray, list[int], list[int]]:
    off = functools.partial(ffi.offsetof, "struct ggml_tensor")
    op_w, flags_w = off("op") // 8, off("flags") // 8
    words = ([0, op_w, flags_w] + [off("ne") // 8 + i for i in range(8)]
             + [off("src") // 8 + i for i in range(10)] + [off("view_src") // 8, off("view_offs") // 8]
             + [off("name") // 8 + i for i in range(8)])
    assert off("type") == 0 and off("op") % 8 == 0 and off("flags") % 8 == 4
    return np.array(words, dtype=np.int64), [0, 1], [2]


_IR_WORDS, _IR_LOW32, _IR_HIGH32 = _ir_words()


class _Raw:
    __slots__ = ("__array_interface__",)

    def __init__(self, iface: dict) -> None:
        self.__array_interface__ = iface


class Gallocr:
    """pyggml's ggml_gallocr over ``pyggml.ggml.BufferType`` s (see module docstring)."""

    def __init__(self, bufts: Any) -> None:
        from pyggml.ggml import BufferType

        bufts = [bufts] if isinstance(bufts, BufferType) else list(bufts)
        if not bufts or not all(isinstance(b, BufferType) for b in bufts):
            raise AllocError("Gallocr needs one or more pyggml.ggml.BufferType")
        specs = []
        for i, b in enumerate(bufts):
            same = next((j for j in range(i) if bufts[j] == b), None)
            specs.append(BuftSpec(b.alignment, b.max_size, same))
        self.bufts = bufts
        self.plan = GallocrPlan(specs)
        self._real: dict[int, Any] = {}          # live Buffer per planned buffer serial
        self._zero: dict[int, Any] = {}          # a size-0 Buffer per owner (serial 0)
        self.generation = 0
        self._cache: _Cache | None = None
        self._ir_cache: _IRCache | None = None
        self._stale: set[int] = set()

    @property
    def n_buffers(self) -> int:
        return len(self.bufts)

    # -- IR and memory state of a graph -------------------------------------------------
    def _ir(self, graph: Any) -> tuple[Graph, list[int], State]:
        from pyggml.ggml import Graph as GGMLGraph

        if not isinstance(graph, GGMLGraph):
            raise AllocError(f"expected a pyggml.ggml.Graph, got {type(graph).__name__}")
        self._detach_stale(graph)
        hit = self._ir_cache.lookup(graph.ptr) if self._ir_cache is not None else None
        if hit is not None:
            ir, addrs = hit
        else:
            ir, addrs, levels = extract(graph)
            self._ir_cache = _IRCache(graph.ptr, ir, addrs, levels)
        lib = ggml()
        # buffer address -> (owner, serial, base address) for the buffers this allocator holds
        owned: dict[int, tuple[int, int, int]] = {}
        for serial, buf in self._real.items():
            owned[cgraph.addr(buf.ptr)] = (self.plan.rec.owner[serial], serial,
                                           cgraph.addr(lib.ggml_backend_buffer_get_base(buf.ptr)))
        loc: list[tuple[int, int, int] | None] = []
        view_src, data, buffer = ir.view_src, ir.data, ir.buffer
        for t, pre in enumerate(ir.preallocated):
            if not pre:
                loc.append(None)
                continue
            vs = view_src[t]
            where = owned.get(buffer[vs if vs >= 0 else t])
            if where is None:
                loc.append(EXTERNAL)
            else:
                loc.append((where[0], where[1], data[t] - where[2]))
        return ir, addrs, State(loc)

    def _detach_stale(self, graph: Any) -> None:
        # Like pyggml.ggml.GraphAllocator: tensors placed in buffers this allocator has since
        # freed still point at them, and ggml-alloc would take them for pre-allocated tensors;
        # clear them so they are planned again.
        if not self._stale:
            return
        nodes, leafs = cgraph.nodes_and_leafs(graph)
        for p in nodes + leafs:
            base = p.view_src if p.view_src != cgraph.NULL else p
            if cgraph.addr(base.buffer) in self._stale or cgraph.addr(p.buffer) in self._stale:
                p.data = cgraph.NULL
                p.buffer = cgraph.NULL

    def _realize(self) -> None:
        """Back every buffer the plan holds with a backend buffer (ggml_vbuffer_alloc), and
        free those it let go (ggml_vbuffer_free)."""
        rec = self.plan.rec
        live = {s for owner in rec.live for s in owner}
        changed = False
        for serial in [s for s in self._real if s not in live]:
            buf = self._real.pop(serial)
            self._stale.add(cgraph.addr(buf.ptr))
            buf.free()
            changed = True
        for serial in sorted(live - self._real.keys()):
            buf = self.bufts[rec.owner[serial]].alloc_buffer(rec.size[serial])
            ggml().ggml_backend_buffer_set_usage(buf.ptr, _USAGE_COMPUTE)
            self._real[serial] = buf
            changed = True
        if changed:
            self.generation += 1

    def _buffer(self, owner: int, serial: int) -> Any:
        if serial == 0:
            if owner not in self._zero:
                self._zero[owner] = self.bufts[owner].alloc_buffer(0)
            return self._zero[owner]
        return self._real[serial]

    # -- public calls ---------------------------------------------------------------------
    def reserve_n(self, graph: Any, node_buffer_ids: Sequence[int] | None = None,
                  leaf_buffer_ids: Sequence[int] | None = None) -> bool:
        """Plan ``graph`` and size the buffers for it (ggml_gallocr_reserve_n)."""
        ir, ptrs, state = self._ir(graph)
        nb = None if node_buffer_ids is None else [int(x) for x in node_buffer_ids]
        lb = None if leaf_buffer_ids is None else [int(x) for x in leaf_buffer_ids]
        if nb is not None and len(nb) != len(ir.nodes) or lb is not None and len(lb) != len(ir.leafs):
            raise AllocError("node/leaf buffer ids must have one entry per node/leaf")
        ok = self.plan.reserve_n(ir, state, nb, lb)
        self._realize()
        self._cache = _Cache(graph.ptr, ir, ptrs, state)
        return ok

    def reserve(self, graph: Any) -> bool:
        return self.reserve_n(graph)

    def reserve_n_size(self, graph: Any, node_buffer_ids: Sequence[int] | None = None,
                       leaf_buffer_ids: Sequence[int] | None = None) -> list[int]:
        """Bytes each buffer id would need, without allocating (ggml_gallocr_reserve_n_size)."""
        ir, ptrs, state = self._ir(graph)
        sizes = self.plan.reserve_n_size(ir, state, node_buffer_ids and list(node_buffer_ids),
                                         leaf_buffer_ids and list(leaf_buffer_ids))
        self._realize()
        self._cache = _Cache(graph.ptr, ir, ptrs, state)
        return sizes

    def needs_realloc(self, graph: Any, *, exact: bool = False) -> bool:
        """ggml_gallocr_needs_realloc, from the reserve-time cache when the graph is unchanged
        (``exact``: also verify that no src pointer or tensor shape was rewritten; see _Cache)."""
        if self._cache is not None:
            fast = self._cache.needs_realloc(graph.ptr, exact)
            if fast is not None:
                return fast
        ir, _, state = self._ir(graph)
        return self.plan.needs_realloc(ir, state)

    def alloc_graph(self, graph: Any) -> bool:
        """Give every tensor of ``graph`` memory (ggml_gallocr_alloc_graph); False when the
        graph needs a new plan and there is more than one buffer type."""
        ir, ptrs, state = self._ir(graph)
        n_reserves = self.plan.n_reserves
        planned_from = State(list(state.loc))  # memory as the tensors had it when (re)planned
        ok = self.plan.alloc_graph(ir, state)
        self._realize()
        if self.plan.n_reserves != n_reserves:  # it re-planned (one buffer type)
            self._cache = _Cache(graph.ptr, ir, ptrs, planned_from)
        if not ok:
            return False
        lib = ggml()
        tensor_p = ffi.typeof("struct ggml_tensor *")
        for t in self.plan.placed:
            p = ffi.cast(tensor_p, ptrs[t])
            if ir.view_src[t] >= 0:
                if p.buffer != ffi.NULL or p.view_src.buffer == ffi.NULL or p.view_src.data == ffi.NULL:
                    raise GGMLError(f"cannot initialize view {cgraph.name(p)!r}")  # view_init asserts
                status = lib.ggml_backend_view_init(p)
            else:
                owner, serial, off = state.loc[t]  # type: ignore[misc]
                if p.buffer != ffi.NULL or p.data != ffi.NULL:
                    raise GGMLError(f"tensor {cgraph.name(p)!r} already has memory")  # tensor_alloc asserts
                buf = self._buffer(owner, serial)
                addr = ffi.cast("char *", lib.ggml_backend_buffer_get_base(buf.ptr)) + off
                status = lib.ggml_backend_tensor_alloc(buf.ptr, p, addr)
            if status != 0:
                raise GGMLError(f"placing tensor {cgraph.name(p)!r} failed ({status})")
        graph.allocation = (self, self.generation)
        graph.context.keep_alive(self)
        return True

    def lifetimes(self, graph: Any, node_buffer_ids: Sequence[int] | None = None,
                  leaf_buffer_ids: Sequence[int] | None = None) -> list[Any]:
        """When each tensor of ``graph`` gets and gives back memory in a plan of it
        (``lifetime.lifetimes``; plans on a scratch planner, this allocator is left as is)."""
        from pyggml.alloc.lifetime import lifetimes

        ir, _, state = self._ir(graph)
        # a copy: the IR may be the one _IRCache keeps
        nb = None if node_buffer_ids is None else [int(x) for x in node_buffer_ids]
        lb = None if leaf_buffer_ids is None else [int(x) for x in leaf_buffer_ids]
        ir = replace(ir, node_buffer_ids=nb, leaf_buffer_ids=lb)
        return lifetimes(ir, self.plan.bufts, state)

    def buffer_size(self, buffer_id: int = 0) -> int:
        """ggml_gallocr_get_buffer_size."""
        if not 0 <= buffer_id < self.n_buffers:
            raise AllocError(f"buffer id {buffer_id} outside 0..{self.n_buffers - 1}")
        return self.plan.buffer_size(buffer_id)

    def placements(self, graph: Any) -> dict[str, tuple[int, int, int] | None]:
        """Each tensor of ``graph`` by name: (buffer id, chunk, offset) in this allocator's
        live buffers, None for memory it does not own."""
        ir, _, state = self._ir(graph)
        rec = self.plan.rec
        out: dict[str, tuple[int, int, int] | None] = {}
        for t, loc in enumerate(state.loc):
            chunk = None if loc is None or loc[0] < 0 else rec.chunk(loc[1])
            out[ir.names[t]] = None if chunk is None else (loc[0], chunk, loc[2])  # type: ignore[index]
        return out
