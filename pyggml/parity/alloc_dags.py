"""Random allocator scenarios (the IR of ``pyggml.reference.alloc``) for the parity sweep.

``random_scenario(rng)`` draws one graph: leafs (inputs, pre-allocated tensors, plain
constants), then nodes built from earlier tensors with in-place-capable ops (same layout as
src0, or deliberately not), ops that never run in place, views (VIEW/RESHAPE/PERMUTE/TRANSPOSE,
views of views pointing at the root with summed offsets as ggml_new_tensor_impl does),
GGML_OP_NONE dependency nodes as ggml_backend_sched adds them, INPUT/OUTPUT flags, one to
three buffer types (some sharing one type, as duplicate bufts do in gallocr; some refusing
buffers above a size) with odd alignments and max sizes down to a few bytes, per-node/leaf
buffer ids, and a step program (reserve / alloc_graph / needs_realloc / reserve_n_size /
get_buffer_size, a second graph, or ggml_backend_alloc_ctx_tensors).  Every tensor has at
least one element (zero-sized buffers are outside the recorded outcome).
"""

from __future__ import annotations

import random
from typing import Any

from .alloc_scenarios import FLAG_INPUT, FLAG_OUTPUT, FLAG_PARAM, INPLACE_OPS, contiguous_nb

# (ggml type id, block size, block bytes): F32 F16 Q4_0 Q8_0 I8 I32 BF16
TYPES = [(0, 1, 4), (1, 1, 2), (2, 32, 18), (8, 32, 34), (24, 1, 1), (26, 1, 4), (30, 1, 2)]
FLOAT_TYPES = [(0, 1, 4), (1, 1, 2)]
INPLACE = sorted(INPLACE_OPS)
NOT_INPLACE = [1, 14, 15, 17, 20, 22, 24, 29, 34, 35, 40, 52, 64, 69, 74, 100]  # DUP SUM ... GLU
VIEW_OPS = [37, 36, 38, 39]   # VIEW RESHAPE PERMUTE TRANSPOSE
ALIGNMENTS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
SIZE_MAX = (1 << 64) - 1


class _Gen:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.tensors: list[dict[str, Any]] = []

    def shape(self, blck: int) -> list[int]:
        r = self.rng
        nd = r.choice([1, 1, 2, 2, 3, 4])
        ne = [r.randint(1, 6) for _ in range(nd)] + [1] * (4 - nd)
        ne[0] = blck * r.randint(1, 3) if blck > 1 else r.randint(1, 24)
        return ne

    def add(self, type_: tuple[int, int, int], ne: list[int], op: int, src: list[int], flags: int = 0,
            nb: list[int] | None = None) -> int:
        tid, blck, size = type_
        self.tensors.append({"name": f"t{len(self.tensors)}", "type": tid, "ne": ne,
                             "nb": nb or contiguous_nb(size, blck, ne), "op": op, "src": src,
                             "view_src": -1, "view_offs": 0, "flags": flags, "preallocated": False,
                             "_t": type_})
        return len(self.tensors) - 1

    def nbytes(self, t: int) -> int:
        d = self.tensors[t]
        _, blck, size = d["_t"]
        ne, nb = d["ne"], d["nb"]
        if blck == 1:
            return size + sum((ne[i] - 1) * nb[i] for i in range(4))
        return ne[0] * nb[0] // blck + sum((ne[i] - 1) * nb[i] for i in range(1, 4))

    def view(self, parent: int) -> int:
        """A view of ``parent`` that stays inside its root (ggml asserts that at creation)."""
        r = self.rng
        p = self.tensors[parent]
        root = p["view_src"] if p["view_src"] >= 0 else parent
        base_offs = p["view_offs"] if p["view_src"] >= 0 else 0
        type_ = p["_t"]
        _, blck, size = type_
        op = r.choice(VIEW_OPS)
        avail = self.nbytes(parent)
        if op in (38, 39) and blck == 1:     # PERMUTE / TRANSPOSE: same bytes, axes swapped
            axes = list(range(4))
            if op == 39:
                axes[0], axes[1] = 1, 0
            else:
                r.shuffle(axes)
            ne, nb = [0] * 4, [0] * 4
            for i, ax in enumerate(axes):
                ne[ax] = p["ne"][i]
                nb[ax] = p["nb"][i]
            t = self.add(type_, ne, op, [parent], nb=nb)
            offs = 0
        else:
            row = size if blck == 1 else size * 1    # one element or one block
            n_units = max(1, avail // row)
            if op == 36:                             # RESHAPE: everything, offset 0
                offs = 0
                n = n_units if self.tensors[parent]["nb"] == contiguous_nb(size, blck, p["ne"]) else 1
            else:
                k = r.randint(1, n_units)
                start = r.randint(0, n_units - k)
                offs = start * row
                n = k
            if blck > 1:
                ne = [blck * n, 1, 1, 1]
            elif n > 1 and r.random() < 0.4:
                d0 = r.choice([d for d in range(1, n + 1) if n % d == 0])
                ne = [d0, n // d0, 1, 1]
            else:
                ne = [n, 1, 1, 1]
            t = self.add(type_, ne, op, [parent])
        self.tensors[t]["view_src"] = root
        self.tensors[t]["view_offs"] = base_offs + offs
        return t


def random_scenario(rng: random.Random, *, max_nodes: int = 24) -> dict[str, Any]:
    g = _Gen(rng)
    r = rng
    # buffer types
    n_bufts = r.choice([1, 1, 1, 2, 2, 3])
    bufts: list[dict[str, Any]] = []
    for i in range(n_bufts):
        if i > 0 and r.random() < 0.2:
            bufts.append({"alignment": 8, "max_size": 0, "shared_with": r.randrange(i)})
            continue
        max_size = r.choice([0, 0, r.randint(1, 16), r.randint(8, 64), r.randint(32, 256),
                             r.randint(64, 4096)])
        bufts.append({"alignment": r.choice(ALIGNMENTS), "max_size": max_size})
    for b in bufts:
        # a buffer type that refuses large buffers (the allocation fails, reserve returns false)
        if "shared_with" not in b and r.random() < 0.04:
            b["fail_above"] = r.randint(8, 512)
    for b in bufts:
        if "shared_with" in b:
            b.update({k: v for k, v in bufts[b["shared_with"]].items() if k != "shared_with"})

    # leafs
    n_leafs = r.randint(1, 6)
    leafs: list[int] = []
    for _ in range(n_leafs):
        type_ = r.choice(TYPES) if r.random() < 0.3 else r.choice(FLOAT_TYPES)
        kind = r.random()
        flags = FLAG_INPUT if kind < 0.5 else 0
        t = g.add(type_, g.shape(type_[1]), 0, [], flags)
        if 0.5 <= kind < 0.75:
            g.tensors[t]["preallocated"] = True
        leafs.append(t)

    # nodes
    nodes: list[int] = []
    n_nodes = r.randint(1, max_nodes)
    for _ in range(n_nodes):
        pool = list(range(len(g.tensors)))
        recent = pool[-6:]

        def pick(recent: list[int] = recent, pool: list[int] = pool) -> int:
            return r.choice(recent) if r.random() < 0.7 else r.choice(pool)

        kind = r.random()
        if kind < 0.45:                                  # in-place capable op
            a = pick()
            srcs = [a] + [pick() for _ in range(r.choice([0, 1, 1, 2]))]
            pa = g.tensors[a]
            if r.random() < 0.75:                        # same layout as a contiguous src0
                type_, ne = pa["_t"], list(pa["ne"])
            else:
                type_ = r.choice(FLOAT_TYPES)
                ne = g.shape(1)
            t = g.add(type_, ne, r.choice(INPLACE), srcs)
        elif kind < 0.7:                                 # never in place
            srcs = [pick() for _ in range(r.choice([1, 1, 2, 3]))]
            type_ = r.choice(FLOAT_TYPES)
            ne = list(g.tensors[srcs[0]]["ne"]) if r.random() < 0.5 and g.tensors[srcs[0]]["_t"][1] == 1 \
                else g.shape(1)
            if type_ != g.tensors[srcs[0]]["_t"]:
                ne = g.shape(1)
            t = g.add(type_, ne, r.choice(NOT_INPLACE), srcs)
        elif kind < 0.92:                                # view (maybe of a view)
            t = g.view(pick())
        else:                                            # GGML_OP_NONE dependency node
            keep = [pick() for _ in range(r.randint(1, 3))]
            k0 = g.tensors[keep[0]]
            t = g.add(k0["_t"], list(k0["ne"]), 0, keep, nb=list(k0["nb"]))
            g.tensors[t]["view_src"] = k0["view_src"] if k0["view_src"] >= 0 else keep[0]
            g.tensors[t]["view_offs"] = k0["view_offs"] if k0["view_src"] >= 0 else 0
        if r.random() < 0.08:
            g.tensors[t]["flags"] |= FLAG_OUTPUT
        if r.random() < 0.05:
            g.tensors[t]["flags"] |= FLAG_INPUT
        if r.random() < 0.03 and g.tensors[t]["view_src"] < 0 and g.tensors[t]["op"] != 0:
            g.tensors[t]["preallocated"] = True
        if r.random() < 0.02:
            g.tensors[t]["flags"] |= FLAG_PARAM
        nodes.append(t)
    g.tensors[nodes[-1]]["flags"] |= FLAG_OUTPUT

    # graph order: nodes as built; leafs as declared, sometimes shuffled or incomplete
    if r.random() < 0.2:
        r.shuffle(leafs)
    if r.random() < 0.1 and len(leafs) > 1:
        leafs = leafs[:-1]
    tensors = [{k: v for k, v in t.items() if k != "_t"} for t in g.tensors]
    sc: dict[str, Any] = {"bufts": bufts, "tensors": tensors, "nodes": nodes, "leafs": leafs,
                          "node_buffer_ids": None, "leaf_buffer_ids": None}
    if n_bufts > 1 or r.random() < 0.2:
        sc["node_buffer_ids"] = [r.randrange(n_bufts) for _ in nodes]
        sc["leaf_buffer_ids"] = [r.randrange(n_bufts) for _ in leafs]
        if r.random() < 0.15:
            sc["leaf_buffer_ids"] = None

    # step program
    prog = r.random()
    if any("fail_above" in b for b in bufts) and r.random() < 0.5:
        prog = 0.35                                      # mostly reserve only (see below)
    prefix = {"nodes": nodes[:max(1, len(nodes) // 2)], "leafs": leafs}
    if prog < 0.3:
        pass                                             # default: reserve, alloc_graph
    elif prog < 0.38:
        # reserve only: a refused buffer shows as "reserve failed" (the alloc_graph after a
        # failed reserve would read the missing buffer and crash the reference)
        sc["steps"] = [{"call": "reserve"}, {"call": "get_buffer_size"}, {"call": "needs_realloc"}]
    elif prog < 0.5:
        sc["steps"] = [{"call": "alloc_graph"}]
    elif prog < 0.65:
        sc["steps"] = [{"call": "needs_realloc"}, {"call": "reserve"}, {"call": "needs_realloc"},
                       {"call": "get_buffer_size"}, {"call": "alloc_graph"}, {"call": "needs_realloc"}]
    elif prog < 0.75:
        sc["steps"] = [{"call": "reserve_n_size"}, {"call": "reserve"}, {"call": "alloc_graph"},
                       {"call": "get_buffer_size"}]
    elif prog < 0.85:
        sc["steps"] = [{"call": "reserve"}, {"call": "needs_realloc", "graph": prefix},
                       {"call": "alloc_graph"}]
    elif prog < 0.93:
        sc["steps"] = [{"call": "reserve", "graph": prefix}, {"call": "needs_realloc"},
                       {"call": "alloc_graph"}, {"call": "get_buffer_size"}]
    else:
        b = r.randrange(n_bufts)
        sc["steps"] = [{"call": "alloc_ctx_tensors_size", "buft": b},
                       {"call": "alloc_ctx_tensors", "buft": b}]
    return sc


def random_scenarios(seed: int, n: int, **kw: Any) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [random_scenario(rng, **kw) for _ in range(n)]
