"""The graph allocator over the IR: ggml_gallocr's planning, placement for placement.

llama.cpp: ggml/src/ggml-alloc.c ggml_gallocr_* (new_n, allocate_node, free_node,
free_extra_space, alloc_graph_impl, reserve_n_impl, reserve_n_size, needs_realloc,
init_tensor, alloc_graph).  The reference's hash set of ``hash_node`` records becomes parallel
lists indexed by IR tensor id (hash iteration order never matters; node order does).

``State`` is what the reference reads from the tensors themselves and what alloc_graph writes
into them: whether a tensor has a buffer and data (``loc``), and where.  A location is
``(owner, serial, offset)``: the buffer type's first buffer id, the backend buffer (see
``buffers.Buffers``) and the offset from its base.  ``owner == -1`` marks memory gallocr does
not own (a pre-allocated tensor, or a view of one).  A buffer of size 0 (serial 0) has a NULL
base, so a tensor at its offset 0 has a buffer but NULL data -- the reference then takes it as
allocated (it has a buffer) yet without data; ``has_data`` keeps that apart.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress, count, repeat
from operator import and_, ge, is_, lt

from pyggml.alloc.buffers import Buffers
from pyggml.alloc.dyn_tallocr import DynTallocr
from pyggml.alloc.ir import FLAG_INPUT, FLAG_OUTPUT, BuftSpec, Graph
from pyggml.errors import AllocAbort, AllocError

EXTERNAL = (-1, -1, 1)
# GGML_BUFFER_ADDRESS_INVALID = {-1, SIZE_MAX}
_INVALID = (-1, -1, (1 << 64) - 1, 0)

# llama.cpp: ggml-alloc.c ggml_op_can_inplace (ops whose kernels accept dst == src); mapped to
# enum ggml_op values through the library's ggml_op_name.
INPLACE_OP_NAMES = ("FILL", "SCALE", "DIAG_MASK_ZERO", "DIAG_MASK_INF", "ADD", "ADD_ID", "ADD1", "SUB",
                    "MUL", "DIV", "SQR", "SQRT", "LOG", "UNARY", "ROPE", "ROPE_BACK", "SILU_BACK",
                    "RMS_NORM", "RMS_NORM_BACK", "CLAMP", "SOFT_MAX", "SOFT_MAX_BACK")


def _inplace_table() -> frozenset[int]:
    from pyggml.alloc.build import op_id

    return frozenset(op_id(name) for name in INPLACE_OP_NAMES)


_CAN_INPLACE: frozenset[int] | None = None


def can_inplace_ops() -> frozenset[int]:
    global _CAN_INPLACE
    if _CAN_INPLACE is None:
        _CAN_INPLACE = _inplace_table()
    return _CAN_INPLACE


_PRIMES = (2, 3, 5, 11, 17, 37, 67, 131, 257, 521, 1031, 2053, 4099, 8209, 16411, 32771, 65537, 131101,
           262147, 524309, 1048583, 2097169, 4194319, 8388617, 16777259, 33554467, 67108879, 134217757,
           268435459, 536870923, 1073741827, 2147483659)


def _data(loc: tuple[int, int, int] | None) -> tuple[int, int] | None:
    return None if not has_data(loc) else (loc[1], loc[2])  # type: ignore[index]


def hash_size(min_sz: int) -> int:
    """ggml_hash_size: the smallest listed prime >= min_sz (else min_sz | 1)."""
    for p in _PRIMES:
        if p >= min_sz:
            return p
    return min_sz | 1


def nonnull_srcs(g: Graph) -> list[tuple[int, ...]]:
    """Per tensor: its non-NULL srcs in slot order; cached on ``g`` (the planner's loops then
    skip the NULL slots of GGML_MAX_SRC)."""
    cached = g.__dict__.get("_nonnull")
    if cached is not None and cached[0] is g.srcs and len(cached[1]) == len(g.srcs):
        return cached[1]
    nn: list[tuple[int, ...]] = []
    for srcs in g.srcs:
        # usually the non-NULL srcs come first: count and slice instead of filtering
        c = srcs.count(-1)
        k = len(srcs) - c
        if c == 0:
            nn.append(srcs)
        elif k == 0:
            nn.append(())
        elif srcs.index(-1) == k:
            nn.append(srcs[:k])
        else:
            nn.append(tuple(x for x in srcs if x >= 0))
    g.__dict__["_nonnull"] = (g.srcs, nn)
    return nn


def src_slots(g: Graph) -> tuple[list[tuple[int, ...]], list[tuple[tuple[int, int], ...]]]:
    """Per tensor: its non-NULL srcs in slot order, and (slot, src) pairs; cached on ``g``."""
    nn = nonnull_srcs(g)
    cached = g.__dict__.get("_slots")
    if cached is not None and cached[0] is nn:
        return nn, cached[1]
    pairs: list[tuple[tuple[int, int], ...]] = []
    for srcs, sub in zip(g.srcs, nn, strict=True):
        if srcs[:len(sub)] == sub:
            pairs.append(tuple(enumerate(sub)))
        else:
            pairs.append(tuple((j, x) for j, x in enumerate(srcs) if x >= 0))
    g.__dict__["_slots"] = (nn, pairs)
    return nn, pairs


def tensor_facts(g: Graph) -> tuple[list[tuple[int, ...]], list[bool], list[int]]:
    """Per tensor: its non-NULL srcs and whether its op can work in place
    (ggml_op_can_inplace); and the graph inputs (GGML_TENSOR_FLAG_INPUT) in id order.  Cached
    on ``g`` while those lists are the same objects with the same length (they are written
    once, when the IR is built)."""
    lists = (g.srcs, g.ops, g.flags)
    n = len(g.types)
    cached = g.__dict__.get("_facts")
    if cached is not None and cached[0] == n and all(a is b for a, b in zip(cached[1], lists, strict=True)):
        return cached[2]
    nn = nonnull_srcs(g)
    inplace_ok = list(map(can_inplace_ops().__contains__, g.ops))
    inputs = list(compress(count(), map(and_, g.flags, repeat(FLAG_INPUT))))
    facts = (nn, inplace_ok, inputs)
    g.__dict__["_facts"] = (n, lists, facts)
    return facts


def check_buffer_ids(g: Graph, ids: list[int] | None, n_bufs: int, what: str) -> None:
    """The ids must name buffer types: the probe refuses others before any call (and a
    negative one would GGML_ASSERT in ggml_gallocr_allocate_node)."""
    if ids is None:
        return
    n = len(g.nodes) if what == "node" else len(g.leafs)
    if len(ids) != n:
        raise AllocError(f"{what}_buffer_ids has {len(ids)} entries for {n} {what}s")
    for b in ids:
        if not 0 <= b < n_bufs:
            raise AllocError(f"bad buffer id {b} in {what}_buffer_ids")


def has_data(loc: tuple[int, int, int] | None) -> bool:
    """data != NULL (a tensor at offset 0 of a size-0 buffer has a buffer but no data)."""
    return loc is not None and (loc[1] != 0 or loc[2] != 0)


@dataclass
class State:
    """Per-tensor memory as the tensors carry it (data/buffer): None = no data, no buffer."""

    loc: list[tuple[int, int, int] | None]

    @classmethod
    def initial(cls, g: Graph) -> State:
        """Pre-allocated tensors have memory outside gallocr; a view of a tensor that has data
        gets data at creation (ggml.c ggml_new_tensor_impl), in creation order."""
        pre = g.preallocated
        loc: list[tuple[int, int, int] | None] = [EXTERNAL if p else None for p in pre]
        view_src, view_offs = g.view_src, g.view_offs
        # views in creation order: a view's view_src (created before it) is final by then
        for t in list(compress(count(), map(ge, view_src, repeat(0)))):
            vs = view_src[t]
            if vs >= t:
                raise AllocError(f"tensor {t}: view_src {vs} must be created before its view")
            base = loc[vs]
            if base is not None:
                loc[t] = (base[0], base[1], base[2] + view_offs[t])
            # else: a view given data of its own (extracted from a real graph) keeps it
        return cls(loc)


@dataclass
class HashNodes:
    """The ``hash_node`` values of one alloc_graph_impl run, by tensor id."""

    n_children: list[int]
    n_views: list[int]
    buffer_id: list[int]
    chunk: list[int]
    offset: list[int]
    allocated: list[bool]
    # events for the lifetime analysis: (step, tensor) where step = -1 for the leaf/input
    # phase, else the node index
    alloc_at: dict[int, int] = field(default_factory=dict)
    free_at: dict[int, int] = field(default_factory=dict)
    inplace_of: dict[int, int] = field(default_factory=dict)


class GallocrPlan:
    """``struct ggml_gallocr`` without backend memory: each buffer id holds a list of backend
    buffers (serials in ``rec``, a ``buffers.Buffers``), one per chunk of its allocator."""

    def __init__(self, bufts: list[BuftSpec], rec: Buffers | None = None) -> None:
        if not bufts:
            raise AllocError("gallocr needs at least one buffer type")
        self.bufts = list(bufts)
        n = len(bufts)
        # ggml_gallocr_new_n: the same buffer type used twice shares one allocator (and, in
        # reserve, one buffer); `same_as` expresses pointer equality in the IR
        self.root = list(range(n))
        self.tallocs: list[DynTallocr] = []
        for i, b in enumerate(bufts):
            j = b.same_as
            if j is not None:
                if not 0 <= j < i:
                    raise AllocError(f"buffer type {i}: same_as {j} must name an earlier buffer type")
                self.root[i] = self.root[j]
                self.tallocs.append(self.tallocs[j])
            else:
                self.tallocs.append(DynTallocr(b.alignment, b.max_size))
        # ggml_gallocr.buffers: per buffer id, the vbuffer's chunk buffers (serials) or None
        self.buffers: list[list[int] | None] = [None] * n
        self.rec = rec if rec is not None else Buffers(n, [b.fail_above for b in bufts])
        self.hash_size = 0
        # the plan's tensor_allocs (see reserve_n): per tensor, and the plan-time ids
        # per tensor: its tensor_alloc is INVALID; the planned (buffer id, chunk, offset, size)
        self._inv: list[bool] = []
        self._alloc_lists: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
        self._ta_list: list[tuple[int, int, int, int]] | None = None
        self._plan_nodes: list[int] = []
        self._plan_leafs: list[int] = []
        self._plan_srcs: list[tuple[int, ...]] = []
        # the planned graph as it was (see _snapshot), None before the first reserve
        self._snap: tuple | None = None
        self._pre: list[int] = []
        self._flat_srcs: list[int] = []
        self.n_nodes = 0
        self.n_leafs = 0
        self.last: HashNodes | None = None
        # tensors alloc_graph gave memory, in the order it did (views after their view_src)
        self.placed: list[int] = []
        self.n_reserves = 0

    @property
    def n_buffers(self) -> int:
        return len(self.bufts)

    @property
    def _ta(self) -> list[tuple[int, int, int, int]]:
        """One tensor_alloc per tensor (every appearance of a tensor records the same), and a
        trailing INVALID so that a NULL src (-1) maps to it; built when first needed."""
        ta = self._ta_list
        if ta is None:
            b, c, o, sz = self._alloc_lists
            ta = [_INVALID if x else (bb, cc, oo, ss) for x, bb, cc, oo, ss in zip(self._inv, b, c, o, sz,
                                                                                  strict=True)]
            ta.append(_INVALID)
            self._ta_list = ta
        return ta

    @property
    def node_allocs(self) -> list[tuple[tuple[int, int, int, int], tuple[tuple[int, int, int, int], ...]]]:
        """ggml_gallocr.node_allocs: per node, its dst and per-src-slot tensor_alloc."""
        ta = self._ta
        get = ta.__getitem__
        return [(ta[t], tuple(map(get, srcs)))
                for t, srcs in zip(self._plan_nodes, self._plan_srcs, strict=True)]

    @property
    def leaf_allocs(self) -> list[tuple[int, int, int, int]]:
        """ggml_gallocr.leaf_allocs: per leaf, its tensor_alloc."""
        return [self._ta[t] for t in self._plan_leafs]

    def _snapshot(self, g: Graph, state: State) -> None:
        # What needs_realloc / alloc_graph read of the graph, kept as it was when planned: with
        # the same nodes, leafs, srcs, view_srcs and sizes, a node or src that had no data when
        # planned (and is no view) was planned at its current size and always passes
        # ggml_gallocr_node_needs_realloc; only those that had data (recorded INVALID) fail,
        # once they lose it.  Those are the only ones the fast checks look at.
        self._snap = (list(g.nodes), list(g.leafs), list(g.srcs), list(g.view_src), list(g.sizes))
        touched = set(g.nodes)
        touched.update(self._flat_srcs)
        inv, view_src = self._inv, g.view_src
        self._pre = [t for t in touched if inv[t] and view_src[t] < 0]

    def _same_graph(self, g: Graph) -> bool:
        """``g`` reads, for needs_realloc and alloc_graph, as the planned graph did."""
        snap = self._snap
        return (snap is not None and g.nodes == snap[0] and g.leafs == snap[1] and g.srcs == snap[2]
                and g.view_src == snap[3] and g.sizes == snap[4])

    # -- planning (ggml_gallocr_alloc_graph_impl) -----------------------------------------
    def _alloc_graph_impl(self, g: Graph, state: State, node_bids: list[int] | None,
                          leaf_bids: list[int] | None) -> HashNodes:
        n = g.n_tensors
        n_children = [0] * n
        n_views = [0] * n
        buffer_id = [0] * n
        chunk_of = [0] * n
        offset_of = [0] * n
        allocated = [False] * n
        hn = HashNodes(n_children, n_views, buffer_id, chunk_of, offset_of, allocated)
        alloc_at, free_at, inplace_of = hn.alloc_at, hn.free_at, hn.inplace_of
        loc = state.loc
        sizes, view_src, flags, ops = g.sizes, g.view_src, g.flags, g.ops
        tallocs = self.tallocs
        types, ne, nb = g.types, g.ne, g.nb
        nn_of, inplace_ok, inputs = tensor_facts(g)
        # gallocr may give a tensor memory: no data nor buffer, and not a view (the rest of
        # ggml_gallocr_is_allocated, hn->allocated, is tested next to it)
        todo = list(map(and_, map(is_, loc, repeat(None)), map(lt, view_src, repeat(0))))
        # todo and not allocated: the test before every allocate_node, kept up to date
        need = list(todo)
        step = -1

        def free_extra_space(node: int, parent: int) -> None:
            # ggml_gallocr_free_extra_space: return the parent's padded tail past the node's
            # padded size; both are padded with the parent's allocator alignment so freed
            # ranges stay aligned
            parent_size = sizes[parent]
            node_size = sizes[node]
            if parent_size < node_size:
                raise AllocAbort("GGML_ASSERT(parent_size >= node_size) failed")
            p_alloc = tallocs[buffer_id[parent]]
            a = p_alloc.alignment
            parent_size = (parent_size + a - 1) & ~(a - 1)
            node_size = (node_size + a - 1) & ~(a - 1)
            if parent_size > node_size:
                p_alloc.free_bytes(chunk_of[parent], offset_of[parent] + node_size, parent_size - node_size)

        def allocate_node(t: int, bid: int) -> None:
            # ggml_gallocr_allocate_node; the callers test first that t is not allocated
            # (data/buffer set, or owned by gallocr) and not a view (is_allocated / is_view),
            # and buffer ids were checked up front (its GGML_ASSERT(buffer_id >= 0))
            allocated[t] = True
            need[t] = False
            if inplace_ok[t]:
                for parent in nn_of[t]:
                    # only memory gallocr owns can be reused.  Quirk: views are never "own"
                    # (allocate_node skips them), so a view parent never passes this test and
                    # the reference's view-parent branch below cannot be reached.
                    if not allocated[parent]:
                        continue
                    vs = view_src[parent]
                    if flags[parent] & FLAG_OUTPUT or (vs >= 0 and flags[vs] & FLAG_OUTPUT):
                        continue
                    # ggml_are_same_layout: type, ne and nb all equal
                    if types[t] != types[parent] or ne[t] != ne[parent] or nb[t] != nb[parent]:
                        continue
                    if n_children[parent] == 1 and n_views[parent] == 0:
                        if vs >= 0:
                            # view parent: needs its view_src to have this one view and no
                            # children, and to share the view's data pointer
                            same_data = _data(loc[vs]) == _data(loc[parent])
                            if n_views[vs] == 1 and n_children[vs] == 0 and same_data:
                                buffer_id[t] = buffer_id[parent]
                                chunk_of[t] = chunk_of[parent]
                                offset_of[t] = offset_of[parent]
                                allocated[parent] = False
                                need[parent] = todo[parent]
                                allocated[vs] = False
                                need[vs] = todo[vs]
                                inplace_of[t] = vs
                                alloc_at[t] = step
                                free_extra_space(t, vs)
                                return
                        else:
                            buffer_id[t] = buffer_id[parent]
                            chunk_of[t] = chunk_of[parent]
                            offset_of[t] = offset_of[parent]
                            allocated[parent] = False  # the node now owns the memory
                            need[parent] = todo[parent]
                            inplace_of[t] = parent
                            alloc_at[t] = step
                            # same layout => same nbytes => free_extra_space has nothing to
                            # give back (only its assert could matter, and it holds)
                            if sizes[t] != sizes[parent]:
                                free_extra_space(t, parent)
                            return
            buffer_id[t] = bid
            chunk_of[t], offset_of[t] = tallocs[bid].alloc(sizes[t])
            alloc_at[t] = step

        nodes, leafs = g.nodes, g.leafs
        for i, leaf in enumerate(leafs):
            if need[leaf]:
                allocate_node(leaf, leaf_bids[i] if leaf_bids is not None else 0)

        # count children and views; allocate graph inputs first so nothing overwrites them
        # (all of a node's srcs, flattened in loop order: also what _snapshot reads)
        flat = list(chain.from_iterable(map(nn_of.__getitem__, nodes)))
        self._flat_srcs = flat
        pending = [t for t in inputs if todo[t] and not allocated[t]]
        if any(inplace_ok[t] and nn_of[t] for t in pending):
            # an input that might take a parent's memory in place reads the counts as the
            # loop has them so far: run the loop as written
            for i, node in enumerate(nodes):
                # quirk: a GGML_OP_NONE node that is a view is a dependency added by
                # ggml-backend (graph_optimize's add_alloc_dep), not a use of its view_src
                vs = view_src[node]
                if vs >= 0 and ops[node] != 0:
                    n_views[vs] += 1
                if flags[node] & FLAG_INPUT and need[node]:
                    allocate_node(node, node_bids[i] if node_bids is not None else 0)
                for src in nn_of[node]:
                    n_children[src] += 1
                    if flags[src] & FLAG_INPUT and need[src]:
                        allocate_node(src, node_bids[i] if node_bids is not None else 0)
        else:
            # the same counts in C, and the inputs allocated in the order the loop meets
            # them (first as a node, else as a src of node i, slot order; allocating them
            # reads no counts)
            if flat:
                import numpy as np  # here: planning IR graphs needs no numpy otherwise

                n_children[:] = np.bincount(np.array(flat, dtype=np.int64), minlength=n).tolist()
            for vs in [view_src[node] for node in nodes if view_src[node] >= 0 and ops[node] != 0]:
                n_views[vs] += 1
            if pending:
                first: list[tuple[int, int, int]] = []
                ends = list(accumulate(map(len, map(nn_of.__getitem__, nodes))))
                as_node = {t: i for i, t in reversed(list(enumerate(nodes))) if flags[t] & FLAG_INPUT}
                for t in pending:
                    keys = []
                    if t in as_node:
                        keys.append((as_node[t], -1, t))
                    try:
                        k = flat.index(t)
                    except ValueError:
                        pass
                    else:
                        i = bisect_right(ends, k)
                        keys.append((i, k, t))
                    if keys:
                        first.append(min(keys))
                first.sort()
                for i, _, t in first:
                    if not allocated[t]:
                        allocate_node(t, node_bids[i] if node_bids is not None else 0)

        for i, node in enumerate(nodes):
            step = i
            srcs = nn_of[node]
            for parent in srcs:
                if need[parent]:
                    allocate_node(parent, node_bids[i] if node_bids is not None else 0)
            if need[node]:
                bid = node_bids[i] if node_bids is not None else 0
                if inplace_ok[node]:
                    allocate_node(node, bid)
                else:  # allocate_node without the in-place search, inline
                    allocated[node] = True
                    need[node] = False
                    buffer_id[node] = bid
                    chunk_of[node], offset_of[node] = tallocs[bid].alloc(sizes[node])
                    alloc_at[node] = i
            for parent in srcs:
                c = n_children[parent] - 1
                n_children[parent] = c
                if c == 0 and n_views[parent] == 0:
                    vs = view_src[parent]
                    if vs >= 0:
                        nv = n_views[vs] - 1
                        n_views[vs] = nv
                        if nv == 0 and n_children[vs] == 0 and allocated[vs]:
                            parent = vs
                        else:
                            continue
                    elif not allocated[parent]:
                        continue
                    # ggml_gallocr_free_node: graph outputs are never freed
                    if flags[parent] & FLAG_OUTPUT:
                        continue
                    tallocs[buffer_id[parent]].free_bytes(chunk_of[parent], offset_of[parent], sizes[parent])
                    allocated[parent] = False
                    need[parent] = todo[parent]
                    free_at[parent] = i
        return hn

    def _check_hash(self, g: Graph) -> None:
        # ggml_hash_find_or_insert aborts ("fatal error") when a graph reaches more distinct
        # tensors than the hash set holds; it is sized (n_nodes + n_leafs) * 1.25 and only grows
        need = len(g.nodes) + len(g.leafs)
        need += need // 4
        if self.hash_size < need:
            self.hash_size = hash_size(need)
        if g.n_tensors > self.hash_size:
            touched = set(g.nodes)
            touched.update(g.leafs)
            vsrc = g.view_src
            for t in g.nodes:
                touched.update(s for s in g.srcs[t] if s >= 0)
                if vsrc[t] >= 0 and g.ops[t] != 0:
                    touched.add(vsrc[t])
            touched.update([vsrc[t] for t in list(touched) if vsrc[t] >= 0])
            if len(touched) > self.hash_size:
                raise AllocAbort("fatal error")

    # -- ggml_gallocr_reserve_n_impl ------------------------------------------------------
    def reserve_n(self, g: Graph, state: State, node_bids: list[int] | None = None,
                  leaf_bids: list[int] | None = None, *, no_alloc: bool = False) -> bool:
        check_buffer_ids(g, node_bids, self.n_buffers, "node")
        check_buffer_ids(g, leaf_bids, self.n_buffers, "leaf")
        self._check_hash(g)
        self.n_reserves += 1
        seen = set()
        for t in self.tallocs:
            if id(t) not in seen:
                seen.add(id(t))
                t.reset()
        hn = self._alloc_graph_impl(g, state, node_bids, leaf_bids)
        self.last = hn
        # ggml_gallocr_reserve_n_impl's node_allocs/leaf_allocs: INVALID for a view or a
        # tensor that has data, else where the plan put it (see _ta: the tuples are only built
        # when something reads them).  The per-node and per-slot records are the plan-time
        # node and src ids into that list.
        self._inv = [vs >= 0 or (lo is not None and (lo[1] != 0 or lo[2] != 0))
                     for vs, lo in zip(g.view_src, state.loc, strict=True)]
        self._ta_list = None
        srcs_of = g.srcs
        self._plan_nodes = list(g.nodes)
        self._plan_leafs = list(g.leafs)
        self._plan_srcs = [srcs_of[t] for t in g.nodes]
        self.n_nodes = len(g.nodes)
        self.n_leafs = len(g.leafs)
        self._snapshot(g, state)
        self._alloc_lists = (hn.buffer_id, hn.chunk, hn.offset, self._snap[4])  # type: ignore[index]

        rec = self.rec
        for i in range(self.n_buffers):
            # the same buffer type used again reuses the first one's buffer
            for j in range(i):
                if self.tallocs[j] is self.tallocs[i]:
                    self.buffers[i] = self.buffers[j]
                    break
            buf = self.buffers[i]
            talloc_i = self.tallocs[i]
            # even with no tensors, a buffer is needed to initialize views
            realloc = buf is None
            for c in range(talloc_i.n_chunks):
                cur = rec.size[buf[c]] if buf is not None and c < len(buf) else 0
                if talloc_i.chunks[c].max_size > cur:
                    realloc = True
            if realloc:
                if buf is not None:  # ggml_vbuffer_free
                    for serial in buf:
                        rec.free(serial)
                self.buffers[i] = None
                if not no_alloc:
                    # ggml_vbuffer_alloc: one backend buffer per chunk; on a refusal the chunks
                    # allocated so far are freed and reserve fails
                    new: list[int] = []
                    for ch in talloc_i.chunks:
                        serial = rec.alloc(self.root[i], ch.max_size)
                        if serial is None:
                            for s in new:
                                rec.free(s)
                            return False
                        new.append(serial)
                    self.buffers[i] = new
        return True

    def reserve(self, g: Graph, state: State) -> bool:
        return self.reserve_n(g, state, None, None)

    def reserve_n_size(self, g: Graph, state: State, node_bids: list[int] | None = None,
                       leaf_bids: list[int] | None = None) -> list[int]:
        """ggml_gallocr_reserve_n_size: per buffer id, the sum of its allocator's chunk sizes."""
        self.reserve_n(g, state, node_bids, leaf_bids, no_alloc=True)
        return [sum(ch.max_size for ch in t.chunks) for t in self.tallocs]

    # -- ggml_gallocr_needs_realloc -------------------------------------------------------
    def needs_realloc(self, g: Graph, state: State) -> bool:
        if self.n_nodes != len(g.nodes) or self.n_leafs != len(g.leafs):
            return True
        loc = state.loc
        if self._same_graph(g):
            # the planned graph: only a tensor that had data when planned can fail (see
            # _snapshot), when it has none now
            for t in self._pre:
                lo = loc[t]
                if lo is None or (lo[1] == 0 and lo[2] == 0):
                    return True
            return False
        view_src, sizes = g.view_src, g.sizes
        _, slots = src_slots(g)
        ta, plan_nodes, plan_srcs = self._ta, self._plan_nodes, self._plan_srcs
        for i, node in enumerate(g.nodes):
            # ggml_gallocr_node_needs_realloc (named backwards: true = still valid); a tensor
            # without data (loc None, or at offset 0 of a size-0 buffer) and not a view must
            # have been planned, at least as large
            lo = loc[node]
            if (lo is None or (lo[1] == 0 and lo[2] == 0)) and view_src[node] < 0:
                dst = ta[plan_nodes[i]]
                if dst[0] < 0 or dst[3] < sizes[node]:
                    return True
            psrcs = plan_srcs[i]
            for j, s in slots[node]:
                lo = loc[s]
                if (lo is None or (lo[1] == 0 and lo[2] == 0)) and view_src[s] < 0:
                    a = ta[psrcs[j]]
                    if a[0] < 0 or a[3] < sizes[s]:
                        return True
        return False

    # -- ggml_gallocr_alloc_graph -----------------------------------------------------------
    def alloc_graph(self, g: Graph, state: State) -> bool:
        if self.needs_realloc(g, state):
            if self.n_buffers != 1:
                # cannot reallocate a multi-buffer graph automatically: call reserve
                return False
            if not self.reserve(g, state):
                return False
        loc, view_src, view_offs = state.loc, g.view_src, g.view_offs
        sizes = g.sizes
        buffers = self.buffers
        root = self.root
        rec_size = self.rec.size
        placed = self.placed = []

        def init_tensor(t: int, ta: tuple[int, int, int, int]) -> None:
            # ggml_gallocr_init_tensor
            vs = view_src[t]
            if vs >= 0:
                if loc[t] is None:
                    base = loc[vs]
                    if base is None:  # view of memory not from ggml-backend: left alone
                        return
                    # ggml_backend_view_init asserts the view_src has data
                    if not has_data(base):
                        raise AllocAbort("GGML_ASSERT(tensor->view_src->data != NULL) failed")
                    loc[t] = (base[0], base[1], base[2] + view_offs[t])
                    placed.append(t)
            elif not has_data(loc[t]):
                # ggml_backend_tensor_alloc asserts the tensor has no buffer yet
                if loc[t] is not None:
                    raise AllocAbort("GGML_ASSERT(tensor->buffer == NULL) failed")
                bid, chunk, offset = ta[0], ta[1], ta[2]
                buf = buffers[bid] if bid >= 0 else None
                if buf is None or chunk >= len(buf):
                    # the reference dereferences a NULL buffer here
                    raise AllocAbort("no buffer for the tensor (NULL dereference)")
                serial = buf[chunk]
                # ggml_backend_tensor_alloc: GGML_ASSERT the tensor fits the chunk's buffer
                if offset + sizes[t] > rec_size[serial]:
                    raise AllocAbort("GGML_ASSERT(addr + alloc size <= buffer end) failed")
                loc[t] = (root[bid], serial, offset)
                placed.append(t)

        # init_tensor has nothing to do for a tensor with a buffer that is a view or has data
        if self._same_graph(g):
            # the planned graph: each leaf's and src's record is its own tensor's
            inv = self._inv
            bids, chunks, offs, _ = self._alloc_lists

            def ta_of(t: int) -> tuple[int, int, int, int]:
                return _INVALID if inv[t] else (bids[t], chunks[t], offs[t], sizes[t])

            for leaf in g.leafs:
                lo = loc[leaf]
                if lo is None or (lo[1] == 0 and lo[2] == 0 and view_src[leaf] < 0):
                    init_tensor(leaf, ta_of(leaf))
            nn_of = tensor_facts(g)[0]
            for node in g.nodes:
                for s in nn_of[node]:
                    lo = loc[s]
                    if lo is None or (lo[1] == 0 and lo[2] == 0 and view_src[s] < 0):
                        init_tensor(s, ta_of(s))
                lo = loc[node]
                if lo is None and view_src[node] < 0 and not inv[node]:
                    # init_tensor's ggml_backend_tensor_alloc branch, inline (the usual case)
                    bid = bids[node]
                    chunk = chunks[node]
                    buf = buffers[bid]
                    if buf is None or chunk >= len(buf):
                        raise AllocAbort("no buffer for the tensor (NULL dereference)")
                    serial = buf[chunk]
                    offset = offs[node]
                    if offset + sizes[node] > rec_size[serial]:
                        raise AllocAbort("GGML_ASSERT(addr + alloc size <= buffer end) failed")
                    loc[node] = (root[bid], serial, offset)
                    placed.append(node)
                elif lo is None or (lo[1] == 0 and lo[2] == 0 and view_src[node] < 0):
                    init_tensor(node, ta_of(node))
            return True
        ta = self._ta
        for i, leaf in enumerate(g.leafs):
            lo = loc[leaf]
            if lo is None or (lo[1] == 0 and lo[2] == 0 and view_src[leaf] < 0):
                init_tensor(leaf, ta[self._plan_leafs[i]])
        _, slots = src_slots(g)
        plan_nodes, plan_srcs = self._plan_nodes, self._plan_srcs
        for i, node in enumerate(g.nodes):
            psrcs = plan_srcs[i]
            for j, s in slots[node]:
                lo = loc[s]
                if lo is None or (lo[1] == 0 and lo[2] == 0 and view_src[s] < 0):
                    init_tensor(s, ta[psrcs[j]])
            lo = loc[node]
            if lo is None or (lo[1] == 0 and lo[2] == 0 and view_src[node] < 0):
                init_tensor(node, ta[plan_nodes[i]])
        return True

    def buffer_size(self, buffer_id: int) -> int:
        """ggml_gallocr_get_buffer_size: 0 for a buffer shared with an earlier id."""
        buf = self.buffers[buffer_id]
        if buf is None:
            return 0
        for i in range(buffer_id):
            if self.buffers[i] is buf:
                return 0
        return sum(self.rec.size[s] for s in buf)
