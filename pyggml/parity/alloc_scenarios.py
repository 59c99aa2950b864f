"""Every scenario of the reference's tests/test-alloc.cpp as an allocator IR scenario.

``GraphBuilder`` mimics the few ggml constructors those tests use (shapes, strides, view
sources and offsets as ggml_new_tensor_impl / ggml_view_impl / ggml_permute set them) and
``build_forward`` orders nodes and leafs as ggml_build_forward_expand does (depth-first over
src[0..9], NONE ops without the PARAM flag become leafs).  ``SCENARIOS`` maps a name to a
zero-argument function returning the scenario dict (see ``pyggml.reference.alloc``); each
also carries a ``"checks"`` entry naming what test-alloc asserts about it (``allocated_total``
bounds per buffer type, ``same_data`` pairs), which ``check_outcome`` evaluates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# ggml.h enum values (llama.cpp 0c1e57098)
OP_NONE, OP_ADD, OP_MUL, OP_MEAN, OP_CONCAT = 0, 2, 7, 17, 22
OP_SCALE, OP_RESHAPE, OP_VIEW, OP_PERMUTE, OP_PAD = 32, 36, 37, 38, 64
TYPE_F32 = 0
FLAG_INPUT, FLAG_OUTPUT, FLAG_PARAM = 1, 2, 4
SIZE_MAX = (1 << 64) - 1


def contiguous_nb(type_size: int, blck: int, ne: list[int]) -> list[int]:
    nb = [type_size, type_size * (ne[0] // blck), 0, 0]
    nb[2] = nb[1] * ne[1]
    nb[3] = nb[2] * ne[2]
    return nb


class GraphBuilder:
    """Tensors in creation order, as dicts of the IR (F32 only, like test-alloc)."""

    def __init__(self) -> None:
        self.tensors: list[dict[str, Any]] = []

    def new(self, ne: list[int], op: int = OP_NONE, src: tuple[int, ...] = (), flags: int = 0,
            name: str | None = None) -> int:
        ne = (list(ne) + [1, 1, 1, 1])[:4]
        self.tensors.append({"name": name or f"t{len(self.tensors)}", "type": TYPE_F32, "ne": ne,
                             "nb": contiguous_nb(4, 1, ne), "op": op, "src": list(src),
                             "view_src": -1, "view_offs": 0, "flags": flags, "preallocated": False})
        return len(self.tensors) - 1

    def view(self, a: int, ne: list[int], offset: int, op: int, nb: list[int] | None = None) -> int:
        # ggml_new_tensor_impl: a view of a view points at the root with the offsets summed
        root, offs = a, offset
        if self.tensors[a]["view_src"] >= 0:
            root = self.tensors[a]["view_src"]
            offs += self.tensors[a]["view_offs"]
        t = self.new(ne, op, (a,))
        self.tensors[t]["view_src"] = root
        self.tensors[t]["view_offs"] = offs
        if nb is not None:
            self.tensors[t]["nb"] = nb
        return t

    def ne(self, a: int) -> list[int]:
        return list(self.tensors[a]["ne"])

    # test-alloc.cpp helpers
    def input_1d(self, n: int) -> int:
        return self.new([n], flags=FLAG_INPUT)

    def input_with_size(self, size_bytes: int) -> int:
        assert size_bytes % 4 == 0
        return self.input_1d(size_bytes // 4)

    # ggml constructors (shape rules of ggml.c)
    def add(self, a: int, b: int) -> int:
        return self.new(self.ne(a), OP_ADD, (a, b))

    def mul(self, a: int, b: int) -> int:
        return self.new(self.ne(a), OP_MUL, (a, b))

    def scale(self, a: int) -> int:
        return self.new(self.ne(a), OP_SCALE, (a,))

    def pad(self, a: int, p0: int) -> int:
        ne = self.ne(a)
        ne[0] += p0
        return self.new(ne, OP_PAD, (a,))

    def mean(self, a: int) -> int:
        ne = self.ne(a)
        ne[0] = 1
        return self.new(ne, OP_MEAN, (a,))

    def concat(self, a: int, b: int, dim: int) -> int:
        ne = self.ne(a)
        ne[dim] += self.ne(b)[dim]
        return self.new(ne, OP_CONCAT, (a, b))

    def reshape_2d(self, a: int, n0: int, n1: int) -> int:
        return self.view(a, [n0, n1, 1, 1], 0, OP_RESHAPE)

    def permute(self, a: int, axes: tuple[int, int, int, int]) -> int:
        src = self.tensors[a]
        ne, nb = [0] * 4, [0] * 4
        for i, ax in enumerate(axes):
            ne[ax] = src["ne"][i]
            nb[ax] = src["nb"][i]
        return self.view(a, ne, 0, OP_PERMUTE, nb)

    def view_1d(self, a: int, n: int, offset: int) -> int:
        return self.view(a, [n, 1, 1, 1], offset, OP_VIEW)

    def dep(self, keep: list[int]) -> int:
        """ggml_backend_sched's allocation-dependency node: ggml_view_tensor of keep[0] (op
        NONE) with the kept tensors as srcs."""
        t = self.view(keep[0], self.ne(keep[0]), 0, OP_NONE, list(self.tensors[keep[0]]["nb"]))
        self.tensors[t]["src"] = list(keep)
        return t

    def set_output(self, a: int) -> None:
        self.tensors[a]["flags"] |= FLAG_OUTPUT

    def name_all(self, prefix: str, start: int = 0) -> None:
        for i, t in enumerate(self.tensors[start:]):
            t["name"] = f"{prefix}{i}"

    def build_forward(self, out: int) -> tuple[list[int], list[int]]:
        """ggml_build_forward_expand(out) on an empty graph: (nodes, leafs)."""
        nodes: list[int] = []
        leafs: list[int] = []
        seen: set[int] = set()

        def visit(t: int) -> None:
            if t in seen:
                return
            seen.add(t)
            for s in self.tensors[t]["src"]:
                if s >= 0:
                    visit(s)
            if self.tensors[t]["op"] == OP_NONE and not self.tensors[t]["flags"] & FLAG_PARAM:
                leafs.append(t)
            else:
                nodes.append(t)

        visit(out)
        return nodes, leafs


def _scenario(b: GraphBuilder, out: int, bufts: list[dict[str, Any]], steps: list[dict[str, Any]] | None,
              **extra: Any) -> dict[str, Any]:
    b.set_output(out)
    nodes, leafs = b.build_forward(out)
    sc: dict[str, Any] = {"bufts": bufts, "tensors": b.tensors, "nodes": nodes, "leafs": leafs,
                          "node_buffer_ids": None, "leaf_buffer_ids": None}
    if steps is not None:
        sc["steps"] = steps
    sc.update(extra)
    return sc


def _buft(max_size: int, alignment: int = 8) -> dict[str, Any]:
    return {"alignment": alignment, "max_size": 0 if max_size >= SIZE_MAX else max_size}


# allocate_graph() of test-alloc: ggml_gallocr_new + ggml_gallocr_alloc_graph (no explicit reserve)
ALLOC_ONLY = [{"call": "alloc_graph"}]


def max_size_too_many_tensors() -> dict[str, Any]:
    b = GraphBuilder()
    x0, x1, x2 = (b.input_with_size(8) for _ in range(3))
    x3 = b.mul(x0, x1)
    x4 = b.add(x1, x2)
    x5 = b.add(x3, x0)
    x6 = b.add(x4, x5)
    b.name_all("x")
    return _scenario(b, x6, [_buft(16)], ALLOC_ONLY, checks={"total_max": [32], "max_size": True})


def max_size_tensor_too_large() -> dict[str, Any]:
    b = GraphBuilder()
    x0 = b.input_with_size(16)
    x1 = b.input_with_size(8)
    x2 = b.concat(x0, x1, 0)
    b.name_all("x")
    return _scenario(b, x2, [_buft(32)], ALLOC_ONLY, checks={"total_max": [32 + 24], "max_size": True})


def tensor_larger_than_max_size() -> dict[str, Any]:
    b = GraphBuilder()
    x0 = b.input_with_size(24)
    x1 = b.scale(x0)
    b.name_all("x")
    return _scenario(b, x1, [_buft(16)], ALLOC_ONLY, checks={"total_eq": [24]})


def not_enough_chunks() -> dict[str, Any]:
    b = GraphBuilder()
    xs = [b.input_with_size(8) for _ in range(17)]
    acc = xs[0]
    for i in range(16):
        acc = b.add(acc, xs[i + 1])
    b.name_all("x")
    return _scenario(b, acc, [_buft(8)], ALLOC_ONLY, checks={"total_min_excl": [16 * 8]})


def fill_leftover_space() -> dict[str, Any]:
    b = GraphBuilder()
    x0 = b.input_with_size(8)
    x1 = b.pad(x0, 2)
    x3 = b.mean(x1)
    b.name_all("x")
    return _scenario(b, x3, [_buft(16)], ALLOC_ONLY, checks={"total_max": [12 + 16], "max_size": True})


def view_inplace() -> dict[str, Any]:
    b = GraphBuilder()
    x0 = b.input_1d(4)
    x1 = b.reshape_2d(x0, 2, 2)
    x2 = b.permute(x1, (1, 0, 2, 3))
    x3 = b.view_1d(x2, 2, 4)
    x4 = b.input_1d(2)
    x5 = b.add(x3, x4)
    b.name_all("x")
    return _scenario(b, x5, [_buft(32)], ALLOC_ONLY, checks={"total_max": [24], "max_size": True})


def reuse_and_free() -> dict[str, Any]:
    b = GraphBuilder()
    x0 = b.input_with_size(24)
    x1 = b.input_with_size(8)
    x2 = b.input_with_size(8)
    x3 = b.add(x1, x2)
    x4 = b.pad(x0, 2)
    x5 = b.scale(x4)
    x6 = b.add(x4, x5)
    x7 = b.view_1d(x6, 2, 8)
    x8 = b.add(x3, x7)
    b.name_all("x")
    return _scenario(b, x8, [_buft(40)], ALLOC_ONLY, checks={"total_max": [40 + 32 + 32], "max_size": True})


def merge_free_block(max_size: int) -> dict[str, Any]:
    b = GraphBuilder()
    x0, x1, x2 = (b.input_with_size(16) for _ in range(3))
    x3 = b.mean(x0)
    x4 = b.mean(x1)
    x5 = b.pad(x2, 2)
    x6 = b.add(x3, x4)
    x7 = b.pad(x6, 5)
    x8 = b.add(x5, x7)
    b.name_all("x")
    return _scenario(b, x8, [_buft(max_size)], ALLOC_ONLY,
                     checks={"total_max": [32 + 32 + 24], "max_size": True})


def prefer_already_allocated_memory() -> dict[str, Any]:
    b = GraphBuilder()
    x0 = b.input_with_size(24)
    x1 = b.mean(x0)
    x2 = b.mean(x1)
    b.name_all("x")
    return _scenario(b, x2, [_buft(32, alignment=4)], ALLOC_ONLY, checks={"total_max": [28]})


def multiple_buffer_types() -> dict[str, Any]:
    b = GraphBuilder()
    # a0, a1 (backend a) and b0, b1 (backend b) come from ggml_backend_alloc_ctx_tensors_from_buft:
    # gallocr sees them as pre-allocated
    a0 = b.input_with_size(16)
    a1 = b.input_with_size(16)
    b.name_all("a")
    start = len(b.tensors)
    b0 = b.input_with_size(24)
    b1 = b.input_with_size(4)
    b.name_all("b", start)
    for t in (a0, a1, b0, b1):
        b.tensors[t]["preallocated"] = True
    start = len(b.tensors)
    x0 = b.input_with_size(16)
    x1 = b.mul(x0, a0)
    x2 = b.pad(x1, 2)
    x3 = b.mul(x2, b0)
    x4 = b.mean(x3)
    x5 = b.add(x4, b1)
    x6 = b.pad(x5, 3)
    x7 = b.add(x6, a1)
    x8 = b.scale(x7)
    b.name_all("x", start)
    sc = _scenario(b, x8, [_buft(32), _buft(SIZE_MAX)], [{"call": "reserve"}, {"call": "alloc_graph"}],
                   checks={"total_max": [32 + 32 + 24, 32 + 24], "max_size": True})
    names = [t["name"] for t in b.tensors]
    leaf_buf = {"a0": 0, "a1": 0, "b0": 1, "b1": 1, "x0": 0}
    node_buf = {"x1": 0, "x2": 0, "x3": 1, "x4": 1, "x5": 1, "x6": 1, "x7": 0, "x8": 0}
    sc["leaf_buffer_ids"] = [leaf_buf[names[t]] for t in sc["leafs"]]
    sc["node_buffer_ids"] = [node_buf[names[t]] for t in sc["nodes"]]
    return sc


def buffer_size_zero() -> dict[str, Any]:
    b = GraphBuilder()
    x0 = b.input_with_size(16)
    x1 = b.scale(x0)
    sc = _scenario(b, x1, [_buft(SIZE_MAX), _buft(SIZE_MAX)], [{"call": "reserve"}, {"call": "alloc_graph"}],
                   checks={"total_eq": [16, 0]})
    sc["leaf_buffer_ids"] = [0]
    sc["node_buffer_ids"] = [0]
    return sc


def reallocation(extra_checks: bool = False) -> dict[str, Any]:
    b = GraphBuilder()
    x0 = b.input_with_size(24)
    x1 = b.input_with_size(16)
    x2 = b.view_1d(x0, 4, 0)
    x3 = b.add(x2, x1)
    b.name_all("x")
    b.set_output(x3)
    nodes1, leafs1 = b.build_forward(x3)
    start = len(b.tensors)
    y0 = b.input_with_size(20)
    y1 = b.input_with_size(20)
    y2 = b.add(y0, y1)
    b.name_all("x", start)
    b.set_output(y2)
    nodes2, leafs2 = b.build_forward(y2)
    g2 = {"nodes": nodes2, "leafs": leafs2}
    steps: list[dict[str, Any]] = [{"call": "alloc_graph"}]
    if extra_checks:
        steps += [{"call": "needs_realloc"}, {"call": "needs_realloc", "graph": g2},
                  {"call": "get_buffer_size"}]
    steps.append({"call": "alloc_graph", "graph": g2})
    if extra_checks:
        steps += [{"call": "needs_realloc", "graph": g2}, {"call": "get_buffer_size"}]
    return {"bufts": [_buft(32, alignment=4)], "tensors": b.tensors, "nodes": nodes1, "leafs": leafs1,
            "node_buffer_ids": None, "leaf_buffer_ids": None, "steps": steps,
            "checks": {"total_eq": [40]}}


def graph_optimize_alloc_dep(add_alloc_dep: bool) -> dict[str, Any]:
    """ggml_backend_sched over one dummy backend; with the dep, the backend's graph_optimize
    keeps x1 alive until x3, which ggml-backend expresses as a GGML_OP_NONE view node with x1
    as src placed after x3 (ggml_backend_sched_split_graph)."""
    b = GraphBuilder()
    x0 = b.input_with_size(16)
    x1 = b.scale(x0)
    x2 = b.scale(x1)
    x3 = b.scale(x2)
    b.set_output(x3)
    nodes, leafs = b.build_forward(x3)
    if add_alloc_dep:
        d = b.dep([x1])
        nodes = nodes[:3] + [d] + nodes[3:]
    return {"bufts": [_buft(SIZE_MAX)], "tensors": b.tensors, "nodes": nodes, "leafs": leafs,
            "node_buffer_ids": [0] * len(nodes), "leaf_buffer_ids": [0] * len(leafs),
            "steps": [{"call": "reserve"}, {"call": "alloc_graph"}],
            "checks": {"same_data": [[x1, x2, not add_alloc_dep]]}}


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "max_size_too_many_tensors": max_size_too_many_tensors,
    "max_size_tensor_too_large": max_size_tensor_too_large,
    "tensor_larger_than_max_size": tensor_larger_than_max_size,
    "not_enough_chunks": not_enough_chunks,
    "fill_leftover_space": fill_leftover_space,
    "view_inplace": view_inplace,
    "reuse_and_free": reuse_and_free,
    "merge_free_block(32)": lambda: merge_free_block(32),
    "merge_free_block(SIZE_MAX)": lambda: merge_free_block(SIZE_MAX),
    "prefer_already_allocated_memory": prefer_already_allocated_memory,
    "multiple_buffer_types": multiple_buffer_types,
    "buffer_size_zero": buffer_size_zero,
    "reallocation": reallocation,
    "reallocation+needs_realloc": lambda: reallocation(extra_checks=True),
    "graph_optimize_alloc_dep(false)": lambda: graph_optimize_alloc_dep(False),
    "graph_optimize_alloc_dep(true)": lambda: graph_optimize_alloc_dep(True),
}


def strip_checks(sc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sc.items() if k != "checks"}


def nbytes(t: dict[str, Any], blck: int = 1, type_size: int = 4) -> int:
    """ggml_nbytes (F32 or any type given its block size and block bytes)."""
    ne, nb = t["ne"], t["nb"]
    if any(n <= 0 for n in ne):
        return 0
    if blck == 1:
        return type_size + sum((ne[i] - 1) * nb[i] for i in range(4))
    return ne[0] * nb[0] // blck + sum((ne[i] - 1) * nb[i] for i in range(1, 4))


def check_outcome(sc: dict[str, Any], outcome: dict[str, Any]) -> list[str]:
    """test-alloc's own assertions on an outcome: every graph node allocated, no two live
    tensors overlapping (check_no_overlap/can_reuse_memory), max sizes (check_max_size), and
    the scenario's ``checks``.  Returns the failures (empty when all hold)."""
    errs: list[str] = []
    tensors = sc["tensors"]
    placed = outcome["tensors"]
    nodes = sc["nodes"]
    if "steps" in sc and any("graph" in s for s in sc["steps"]):
        last = [s["graph"] for s in sc["steps"] if "graph" in s][-1]
        nodes = last["nodes"]

    def root(t: int) -> int:
        while tensors[t]["view_src"] >= 0:
            t = tensors[t]["view_src"]
        return t

    for n in nodes:
        # memory outside gallocr (a pre-allocated tensor or a view of one) has no placement
        if placed[n] is None and not tensors[root(n)]["preallocated"]:
            errs.append(f"node {tensors[n]['name']} not allocated")

    def can_reuse(i: int, cur: int, other: int) -> bool:
        # test-alloc can_reuse_memory: `other` is dead from node i on
        if tensors[other]["flags"] & FLAG_OUTPUT:
            return False
        for t in nodes[i:]:
            for s in tensors[t]["src"]:
                if s < 0:
                    continue
                if t == cur and tensors[t]["op"] in INPLACE_OPS:
                    continue
                if s == other or tensors[s]["view_src"] == other:
                    return False
        return True

    for i, t in enumerate(nodes):
        for o in nodes[:i]:
            if root(t) == root(o) or placed[t] is None or placed[o] is None:
                continue
            pt, po = placed[t], placed[o]
            if (pt["buffer"], pt["chunk"]) != (po["buffer"], po["chunk"]):
                continue
            a0, b0 = pt["offset"], po["offset"]
            if a0 + nbytes(tensors[t]) > b0 and b0 + nbytes(tensors[o]) > a0 and not can_reuse(i, t, o):
                errs.append(f"{tensors[t]['name']} overlaps live {tensors[o]['name']}")
    bufts = sc["bufts"]
    for t, p in enumerate(placed):
        if p is None:
            continue
        max_size = bufts[p["buffer"]].get("max_size") or SIZE_MAX
        if not sc.get("checks", {}).get("max_size"):
            break  # only the tests that call check_max_size
        if p["offset"] + nbytes(tensors[t]) > max_size:
            errs.append(f"{tensors[t]['name']} ends past max_size {max_size}")
    checks = sc.get("checks", {})
    totals = [sum(sizes) for sizes in outcome["buffers"]]
    for key, op in (("total_max", lambda a, b: a <= b), ("total_eq", lambda a, b: a == b),
                    ("total_min_excl", lambda a, b: a > b)):
        for i, bound in enumerate(checks.get(key, [])):
            if not op(totals[i], bound):
                errs.append(f"allocated_total[{i}] = {totals[i]} fails {key} {bound}")
    for a, b, want in checks.get("same_data", []):
        same = placed[a] == placed[b]
        if same != want:
            errs.append(f"data of {tensors[a]['name']} == {tensors[b]['name']}: {same}, want {want}")
    if not outcome["ok"]:
        errs.append(f"not ok: {outcome['error']}")
    return errs


# ggml_op_can_inplace (ggml/src/ggml-alloc.c): FILL SCALE DIAG_MASK_ZERO DIAG_MASK_INF ADD
# ADD_ID ADD1 SUB MUL DIV SQR SQRT LOG UNARY ROPE ROPE_BACK SILU_BACK RMS_NORM RMS_NORM_BACK
# CLAMP SOFT_MAX SOFT_MAX_BACK
INPLACE_OPS = frozenset({73, 32, 45, 44, 2, 3, 4, 6, 7, 8, 9, 10, 11, 91, 48, 49, 23, 25, 26, 50, 46, 47})
