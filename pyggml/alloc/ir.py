"""The allocator graph IR: a graph-allocation scenario as plain data, and its outcome.

The contract shared with the reference side (tools/paritychecker/probe/probe_alloc.cpp through
pyggml/reference/alloc.py): a scenario JSON (buffer types, tensors in creation order, the graph's
nodes and leafs, per-node/leaf buffer ids, the gallocr calls to make) goes in, an outcome JSON
(ok, error, backend buffers' chunk sizes, each tensor's (buffer, chunk, offset), per-step results)
comes out.  ``Graph`` holds the tensors as parallel lists of ints (what the planner's hot loops
read); ``from_graph`` extracts one from a ``pyggml.ggml.Graph`` through cffi.

Extensions to the contract (as the probe reads them): a buffer type may carry
``"shared_with": j`` (j < its index) to be the *same* buffer type object as buffer type j
(ggml_gallocr_new_n then shares one allocator and one buffer), and ``"fail_above": n`` to
refuse buffers larger than n bytes (alloc_buffer returns NULL).  A step may carry ``"graph"``:
other nodes/leafs (and buffer ids) over the same tensors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any

from pyggml.errors import AllocError

GGML_MAX_SRC = 10
GGML_MAX_DIMS = 4
FLAG_INPUT = 1       # GGML_TENSOR_FLAG_INPUT
FLAG_OUTPUT = 2      # GGML_TENSOR_FLAG_OUTPUT
FLAG_PARAM = 4       # GGML_TENSOR_FLAG_PARAM
FLAG_LOSS = 8        # GGML_TENSOR_FLAG_LOSS
SIZE_MAX = (1 << 64) - 1
DEFAULT_STEPS = ({"call": "reserve"}, {"call": "alloc_graph"})
STEP_CALLS = ("reserve", "reserve_n", "reserve_n_size", "alloc_graph", "needs_realloc", "get_buffer_size",
              "alloc_ctx_tensors", "alloc_ctx_tensors_size")


@functools.cache
def _type_facts(type_: int) -> tuple[int, int]:
    """(block size, type size) from the library (ggml_blck_size / ggml_type_size)."""
    from pyggml.ggml import types

    types.check_type(type_)
    return types.blck_size(type_), types.type_size(type_)


def nbytes(type_: int, ne: tuple[int, ...], nb: tuple[int, ...]) -> int:
    """ggml_nbytes: the span of the data; what every buffer type used here gives as alloc size
    (ggml_backend_buft_get_alloc_size defaults to ggml_nbytes: CPU and the test dummy)."""
    for n in ne:
        if n <= 0:
            return 0
    blck, tsize = _type_facts(type_)
    if blck == 1:
        size = tsize
        for i in range(GGML_MAX_DIMS):
            size += (ne[i] - 1) * nb[i]
    else:
        size = ne[0] * nb[0] // blck
        for i in range(1, GGML_MAX_DIMS):
            size += (ne[i] - 1) * nb[i]
    return size & SIZE_MAX


@dataclass
class BuftSpec:
    """A buffer type as gallocr sees it: alignment, max buffer size, identity."""

    alignment: int = 8
    max_size: int = SIZE_MAX          # 0 / null in JSON = SIZE_MAX (no limit)
    same_as: int | None = None        # index of an earlier spec that is the same buft object
    fail_above: int = 0               # the recording buft refuses buffers larger (0: never)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"alignment": self.alignment, "max_size": self.max_size}
        if self.same_as is not None:
            out["shared_with"] = self.same_as
        if self.fail_above:
            out["fail_above"] = self.fail_above
        return out


@dataclass
class Graph:
    """Tensors (parallel lists indexed by tensor id) plus the cgraph's node and leaf order."""

    names: list[str] = field(default_factory=list)
    types: list[int] = field(default_factory=list)
    ne: list[tuple[int, int, int, int]] = field(default_factory=list)
    nb: list[tuple[int, int, int, int]] = field(default_factory=list)
    ops: list[int] = field(default_factory=list)
    srcs: list[tuple[int, ...]] = field(default_factory=list)     # GGML_MAX_SRC slots, -1 = NULL
    view_src: list[int] = field(default_factory=list)             # -1 = not a view
    view_offs: list[int] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    preallocated: list[bool] = field(default_factory=list)
    nodes: list[int] = field(default_factory=list)
    leafs: list[int] = field(default_factory=list)
    node_buffer_ids: list[int] | None = None
    leaf_buffer_ids: list[int] | None = None
    sizes: list[int] = field(default_factory=list)                # derived: nbytes per tensor
    # from a real graph (``from_graph``) only: each tensor's data and buffer addresses
    data: list[int] = field(default_factory=list)
    buffer: list[int] = field(default_factory=list)

    @property
    def n_tensors(self) -> int:
        return len(self.types)

    def add_tensor(self, *, name: str = "", type: int = 0, ne: tuple[int, ...] = (1, 1, 1, 1),
                   nb: tuple[int, ...] | None = None, op: int = 0, src: tuple[int, ...] = (),
                   view_src: int = -1, view_offs: int = 0, flags: int = 0,
                   preallocated: bool = False) -> int:
        """Append a tensor; ``nb`` defaults to the contiguous strides.  Returns its id."""
        ne4 = tuple(int(x) for x in ne) + (1,) * (GGML_MAX_DIMS - len(ne))
        if len(ne4) != GGML_MAX_DIMS:
            raise AllocError(f"ne has more than {GGML_MAX_DIMS} dims: {ne!r}")
        blck, tsize = _type_facts(int(type))
        if nb is None:
            b0 = tsize
            b1 = tsize * (ne4[0] // blck)
            nb4 = (b0, b1, b1 * ne4[1], b1 * ne4[1] * ne4[2])
        else:
            nb4 = tuple(int(x) for x in nb)
            if len(nb4) != GGML_MAX_DIMS:
                raise AllocError(f"nb must have {GGML_MAX_DIMS} entries: {nb!r}")
        srcs = tuple(int(s) for s in src)
        if len(srcs) > GGML_MAX_SRC:
            raise AllocError(f"more than {GGML_MAX_SRC} srcs: {src!r}")
        srcs = srcs + (-1,) * (GGML_MAX_SRC - len(srcs))
        self.names.append(name)
        self.types.append(int(type))
        self.ne.append(ne4)  # type: ignore[arg-type]
        self.nb.append(nb4)  # type: ignore[arg-type]
        self.ops.append(int(op))
        self.srcs.append(srcs)
        self.view_src.append(int(view_src))
        self.view_offs.append(int(view_offs))
        self.flags.append(int(flags))
        self.preallocated.append(bool(preallocated))
        self.sizes.append(nbytes(int(type), ne4, nb4))
        return len(self.types) - 1

    def validate(self) -> None:
        n = self.n_tensors
        for i in range(n):
            for s in self.srcs[i]:
                if not -1 <= s < n:
                    raise AllocError(f"tensor {i}: src {s} is not a tensor id")
            if not -1 <= self.view_src[i] < n or self.view_src[i] == i:
                raise AllocError(f"tensor {i}: bad view_src {self.view_src[i]}")
        for what, ids in (("node", self.nodes), ("leaf", self.leafs)):
            for t in ids:
                if not 0 <= t < n:
                    raise AllocError(f"{what} {t} is not a tensor id")
        for what, ids, bids in (("node", self.nodes, self.node_buffer_ids),
                                ("leaf", self.leafs, self.leaf_buffer_ids)):
            if bids is not None and len(bids) != len(ids):
                raise AllocError(f"{what}_buffer_ids has {len(bids)} entries for {len(ids)} {what}s")

    # -- JSON --------------------------------------------------------------------------------
    def tensors_json(self) -> list[dict[str, Any]]:
        out = []
        for i in range(self.n_tensors):
            srcs = list(self.srcs[i])
            while srcs and srcs[-1] == -1:
                srcs.pop()
            out.append({"name": self.names[i], "type": self.types[i], "ne": list(self.ne[i]),
                        "nb": list(self.nb[i]), "op": self.ops[i], "src": srcs,
                        "view_src": self.view_src[i], "view_offs": self.view_offs[i],
                        "flags": self.flags[i], "preallocated": self.preallocated[i]})
        return out

    def to_json(self) -> dict[str, Any]:
        return {"tensors": self.tensors_json(), "nodes": list(self.nodes), "leafs": list(self.leafs),
                "node_buffer_ids": None if self.node_buffer_ids is None else list(self.node_buffer_ids),
                "leaf_buffer_ids": None if self.leaf_buffer_ids is None else list(self.leaf_buffer_ids)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Graph:
        if not isinstance(obj, dict):
            raise AllocError(f"a graph is a JSON object, got {type(obj).__name__}")
        g = cls()
        try:
            for t in obj.get("tensors", []):
                g.add_tensor(name=str(t.get("name", "")), type=int(t.get("type", 0)),
                             ne=tuple(t["ne"]), nb=tuple(t["nb"]) if t.get("nb") is not None else None,
                             op=int(t.get("op", 0)), src=tuple(t.get("src", ())),
                             view_src=int(t.get("view_src", -1) if t.get("view_src") is not None else -1),
                             view_offs=int(t.get("view_offs", 0)), flags=int(t.get("flags", 0)),
                             preallocated=bool(t.get("preallocated", False)))
            g.nodes = [int(x) for x in obj.get("nodes", [])]
            g.leafs = [int(x) for x in obj.get("leafs", [])]
            nbi, lbi = obj.get("node_buffer_ids"), obj.get("leaf_buffer_ids")
            g.node_buffer_ids = None if nbi is None else [int(x) for x in nbi]
            g.leaf_buffer_ids = None if lbi is None else [int(x) for x in lbi]
        except (KeyError, TypeError, ValueError) as e:
            raise AllocError(f"bad graph description: {e!r}") from e
        g.validate()
        return g


@dataclass
class Scenario:
    """Buffer types, the graph, and the gallocr calls to make (default: reserve, alloc_graph)."""

    bufts: list[BuftSpec]
    graph: Graph
    steps: list[dict[str, Any]] = field(default_factory=lambda: [dict(s) for s in DEFAULT_STEPS])

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Scenario:
        if not isinstance(obj, dict):
            raise AllocError(f"a scenario is a JSON object, got {type(obj).__name__}")
        if not obj.get("bufts"):
            raise AllocError("a scenario needs at least one buffer type")
        bufts = []
        for i, b in enumerate(obj["bufts"]):
            align = int(b.get("alignment", 8))
            if align <= 0 or align & (align - 1):
                raise AllocError(f"buffer type {i}: alignment {align} is not a power of 2")
            max_size = b.get("max_size")
            max_size = SIZE_MAX if not max_size else int(max_size)
            same_as = b.get("shared_with", b.get("same_as"))
            if same_as is not None:
                if not 0 <= int(same_as) < i:
                    raise AllocError(f"buffer type {i}: shared_with {same_as} must name an earlier one")
                bufts.append(replace(bufts[int(same_as)], same_as=int(same_as)))
                continue
            fail_above = int(b.get("fail_above") or 0)
            bufts.append(BuftSpec(align, max_size, None, fail_above))
        graph = Graph.from_json(obj)
        from pyggml.alloc.build import op_ids

        n_ops = len(op_ids())
        for t in range(graph.n_tensors):
            # what the probe refuses when it rebuilds the scenario
            if not 0 <= graph.ops[t] < n_ops:
                raise AllocError(f"tensor {t}: bad op {graph.ops[t]}")
            vs = graph.view_src[t]
            if vs >= 0 and vs >= t:
                raise AllocError(f"tensor {t}: view_src {vs} must be created before its view")
            if vs >= 0 and graph.preallocated[t]:
                raise AllocError(f"tensor {t}: a view cannot be pre-allocated")
        steps = obj.get("steps")
        if steps is None:
            steps = [dict(s) for s in DEFAULT_STEPS]
        for s in steps:
            if not isinstance(s, dict) or s.get("call") not in STEP_CALLS:
                raise AllocError(f"bad step {s!r}: call must be one of {STEP_CALLS}")
        return cls(bufts, graph, list(steps))

    def to_json(self) -> dict[str, Any]:
        out = {"bufts": [b.to_json() for b in self.bufts]}
        out.update(self.graph.to_json())
        out["steps"] = list(self.steps)
        return out


def from_graph(graph: Any) -> tuple[Graph, list[int]]:
    """The IR of a ``pyggml.ggml.Graph`` and the tensor addresses, by IR tensor id.

    Tensor ids: nodes in order, then leafs, then any other src / view_src reached (in order of
    discovery).  ``preallocated`` is ``data != NULL or buffer != NULL`` at extraction time (what
    ggml_gallocr_is_allocated tests).
    """
    g, addrs, _ = extract(graph)
    return g, addrs


def extract(graph: Any) -> tuple[Graph, list[int], list[int]]:
    """``from_graph``, plus where each level of discovery starts among the tensor ids (level 0:
    the nodes and leafs; level k + 1: what level k's srcs / view_srcs reach first).

    The ggml_tensor structs are read as rows of 8-byte words
    gathered with numpy from one view of the address range that holds them (cffi field access
    per tensor would dominate planning).
    """
    import numpy as np

    from pyggml._native import ffi
    from pyggml.alloc import cgraph

    ptr = graph.ptr if hasattr(graph, "ptr") else graph
    n_nodes, n_leafs = cgraph.counts(ptr)
    nodes_arr, leafs_arr = cgraph.arrays(ptr)
    cgraph.check_layout(ptr, n_nodes, nodes_arr)
    node_addrs = np.frombuffer(cgraph.array_bytes(nodes_arr, n_nodes), dtype=np.uint64)
    leaf_addrs = np.frombuffer(cgraph.array_bytes(leafs_arr, n_leafs), dtype=np.uint64)
    words_per = ffi.sizeof("struct ggml_tensor") // 8
    cols = np.arange(words_per, dtype=np.int64)
    # discovery order: nodes, leafs, then srcs/view_srcs not among them, level by level
    order = np.concatenate([node_addrs, leaf_addrs])
    _, first = np.unique(order, return_index=True)
    order = order[np.sort(first)]
    rows = np.zeros((0, words_per), dtype=np.uint64)
    known: set[int] = set()
    done = 0
    levels: list[int] = []
    while done < len(order):
        levels.append(done)
        new = order[done:]
        base = int(new.min())
        span = int(new.max()) - base + 8 * words_per
        iface = {"version": 3, "shape": (span // 8,), "typestr": "<u8", "data": (base, True)}
        mem = np.asarray(_RawMemory(iface))
        rel = ((new - np.uint64(base)) // np.uint64(8)).astype(np.int64)
        got = mem[rel[:, None] + cols[None, :]]
        rows = np.concatenate([rows, got])
        done = len(order)
        refs = got[:, _SRC_W:_VIEW_SRC_W + 1].ravel()
        refs = refs[refs != 0]
        known.update(new.tolist())
        # in first-reference order, as a depth-first walk would meet them
        missing = list(dict.fromkeys(a for a in refs.tolist() if a not in known))
        if missing:
            order = np.concatenate([order, np.array(missing, dtype=np.uint64)])
    n = len(order)
    g = Graph()
    addrs = order.tolist()
    if n:
        srt = np.argsort(order)
        sorted_addrs = order[srt]

        def to_ids(a: np.ndarray) -> np.ndarray:
            i = np.searchsorted(sorted_addrs, a)
            out = srt[np.minimum(i, n - 1)].astype(np.int64)
            return np.where(a == 0, -1, out)

        w = rows
        types = (w[:, 0] & np.uint64(0xFFFFFFFF)).astype(np.int64)
        ne = w[:, _NE_W:_NE_W + 4].view(np.int64)
        nb = w[:, _NB_W:_NB_W + 4]
        g.types = types.tolist()
        g.ne = list(map(tuple, ne.tolist()))
        g.nb = list(map(tuple, nb.tolist()))
        g.ops = (w[:, _OP_W] & np.uint64(0xFFFFFFFF)).astype(np.int64).tolist()
        g.flags = (w[:, _FLAGS_W] >> np.uint64(32)).astype(np.int64).tolist()
        g.srcs = list(map(tuple, to_ids(w[:, _SRC_W:_SRC_W + GGML_MAX_SRC]).tolist()))
        g.view_src = to_ids(w[:, _VIEW_SRC_W]).tolist()
        g.view_offs = w[:, _VIEW_SRC_W + 1].astype(np.int64).tolist()
        g.preallocated = ((w[:, _DATA_W] != 0) | (w[:, 1] != 0)).tolist()
        g.data = w[:, _DATA_W].tolist()
        g.buffer = w[:, 1].tolist()
        # the C strings: numpy's S64 drops trailing NULs, so clear each name past its first NUL
        # (whatever follows it in the array is not part of the name)
        raw = np.ascontiguousarray(w[:, _NAME_B // 8:_NAME_B // 8 + 8]).view(np.uint8).reshape(n, 64)
        nul = (raw == 0).argmax(axis=1)
        nul[raw.min(axis=1) != 0] = 64
        raw[np.arange(64)[None, :] > nul[:, None]] = 0
        names = raw.view("S64").ravel().tolist()
        try:
            g.names = [b.decode() for b in names]
        except UnicodeDecodeError:
            g.names = [b.decode("utf-8", "replace") for b in names]
        g.sizes = _nbytes_many(types, ne, nb)
    ids = {a: i for i, a in enumerate(addrs)}
    g.nodes = [ids[a] for a in node_addrs.tolist()]
    g.leafs = [ids[a] for a in leaf_addrs.tolist()]
    return g, addrs, levels


def _nbytes_many(types: Any, ne: Any, nb: Any) -> list[int]:
    """ggml_nbytes of many tensors at once (int64 math; falls back to exact ints when a value
    could overflow)."""
    import numpy as np

    # per distinct type (checked by _type_facts), spread back over the tensors
    kinds, which = np.unique(types, return_inverse=True)
    facts = [_type_facts(t) for t in kinds.tolist()]
    blck = np.array([f[0] for f in facts], dtype=np.int64)[which]
    tsize = np.array([f[1] for f in facts], dtype=np.int64)[which]
    if (ne > (1 << 31)).any() or (nb > np.uint64(1 << 31)).any():
        tl = types.tolist()
        return [nbytes(t, tuple(a), tuple(b)) for t, a, b in zip(tl, ne.tolist(), nb.tolist(), strict=True)]
    nbi = nb.astype(np.int64)
    tail = ((ne[:, 1:] - 1) * nbi[:, 1:]).sum(axis=1)
    one = tsize + (ne[:, 0] - 1) * nbi[:, 0] + tail
    blocked = ne[:, 0] * nbi[:, 0] // blck + tail
    out = np.where(blck == 1, one, blocked)
    out = np.where((ne <= 0).any(axis=1), 0, out)
    return out.tolist()


class _RawMemory:
    __slots__ = ("__array_interface__",)

    def __init__(self, iface: dict) -> None:
        self.__array_interface__ = iface


def _word(field: str) -> int:
    from pyggml._native import ffi

    return ffi.offsetof("struct ggml_tensor", field) // 8


_NE_W = _word("ne")
_NB_W = _word("nb")
_OP_W = _word("op")            # the low half of the word (op_params follow)
_FLAGS_W = 18                  # flags is the high half of word 18 (byte 148), checked below
_SRC_W = _word("src")
_VIEW_SRC_W = _word("view_src")
_DATA_W = _word("data")


def _check_layout() -> int:
    from pyggml._native import ffi

    assert ffi.offsetof("struct ggml_tensor", "flags") == 8 * _FLAGS_W + 4
    assert ffi.offsetof("struct ggml_tensor", "view_offs") == 8 * (_VIEW_SRC_W + 1)
    assert ffi.offsetof("struct ggml_tensor", "op") % 8 == 0
    return ffi.offsetof("struct ggml_tensor", "name")


_NAME_B = _check_layout()
