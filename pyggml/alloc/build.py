"""Building allocator-IR graphs by hand, the way ggml's op constructors shape them.

For tests and scenario generators: ``Builder`` creates tensors like ggml_new_tensor (contiguous
strides), ops like the ggml_* constructors the reference's tests/test-alloc.cpp uses (result
shape and srcs; gallocr never computes, so only the fields it reads matter), views like
ggml_view_impl (a view of a view points at the base tensor, offsets add up), and orders the
graph like ggml_build_forward_expand (ggml.c ggml_visit_parents_graph: srcs depth-first left
to right, then the tensor; op NONE without PARAM is a leaf).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from pyggml.alloc.ir import FLAG_INPUT, FLAG_OUTPUT, FLAG_PARAM, GGML_MAX_SRC, Graph
from pyggml.errors import AllocError

F32 = 0


@functools.cache
def op_ids() -> dict[str, int]:
    """enum ggml_op by name (ggml_op_name), from the library."""
    from pyggml._native import ffi, ggml

    lib = ggml()
    out: dict[str, int] = {}
    for op in range(256):
        name = ffi.string(lib.ggml_op_name(op)).decode()
        if name in out:  # past GGML_OP_COUNT the table is not indexed; stop at a repeat
            break
        out[name] = op
        if name == "GLU":  # last op before GGML_OP_COUNT at 0c1e57098
            break
    return out


def op_id(name: str) -> int:
    try:
        return op_ids()[name]
    except KeyError:
        raise AllocError(f"unknown ggml op {name!r}") from None


class Builder:
    """An IR graph under construction (see module docstring)."""

    def __init__(self) -> None:
        self.g = Graph()
        self._visited: set[int] = set()

    # -- tensors -------------------------------------------------------------------------
    def new(self, ne: Sequence[int], type_: int = F32, *, name: str | None = None, flags: int = 0,
            op: str = "NONE", src: Sequence[int] = (), preallocated: bool = False) -> int:
        g = self.g
        return g.add_tensor(name=name if name is not None else f"t{g.n_tensors}", type=type_, ne=tuple(ne),
                            op=op_id(op), src=tuple(src), flags=flags, preallocated=preallocated)

    def input(self, n: int, type_: int = F32, **kw: Any) -> int:
        return self.new((n,), type_, flags=FLAG_INPUT, **kw)

    def op(self, name: str, *src: int, ne: Sequence[int] | None = None, type_: int | None = None) -> int:
        """A result tensor like ggml_dup_tensor(src[0]) (or with ``ne``) computed by ``name``."""
        g = self.g
        a = src[0]
        return self.new(ne if ne is not None else g.ne[a], g.types[a] if type_ is None else type_,
                        op=name, src=src)

    def add(self, a: int, b: int) -> int:
        return self.op("ADD", a, b)

    def mul(self, a: int, b: int) -> int:
        return self.op("MUL", a, b)

    def scale(self, a: int) -> int:
        return self.op("SCALE", a)

    def pad(self, a: int, p0: int, p1: int = 0, p2: int = 0, p3: int = 0) -> int:
        ne = self.g.ne[a]
        return self.op("PAD", a, ne=(ne[0] + p0, ne[1] + p1, ne[2] + p2, ne[3] + p3))

    def mean(self, a: int) -> int:
        ne = self.g.ne[a]
        return self.op("MEAN", a, ne=(1, ne[1], ne[2], ne[3]))

    def concat(self, a: int, b: int, dim: int) -> int:
        ne = list(self.g.ne[a])
        ne[dim] += self.g.ne[b][dim]
        return self.op("CONCAT", a, b, ne=ne)

    def mul_mat(self, a: int, b: int) -> int:
        na, nb_ = self.g.ne[a], self.g.ne[b]
        return self.op("MUL_MAT", a, b, ne=(na[1], nb_[1], nb_[2], nb_[3]), type_=F32)

    # -- views (ggml_view_impl / ggml_new_tensor_impl) ------------------------------------
    def view(self, a: int, ne: Sequence[int], nb: Sequence[int] | None = None, offset: int = 0,
             op: str = "VIEW") -> int:
        g = self.g
        base, offs = a, offset
        if g.view_src[a] >= 0:  # a view of a view points at the base; offsets add up
            offs += g.view_offs[a]
            base = g.view_src[a]
        ne4 = tuple(ne) + (1,) * (4 - len(ne))
        t = g.add_tensor(name=f"t{g.n_tensors}", type=g.types[a], ne=ne4,
                         nb=None if nb is None else tuple(nb), op=op_id(op), src=(a,),
                         view_src=base, view_offs=offs)
        return t

    def reshape(self, a: int, ne: Sequence[int]) -> int:
        return self.view(a, ne, op="RESHAPE")

    def view_1d(self, a: int, n: int, offset: int) -> int:
        return self.view(a, (n,), offset=offset)

    def permute(self, a: int, axes: Sequence[int]) -> int:
        g = self.g
        ne, nb = g.ne[a], g.nb[a]
        ne2, nb2 = [0] * 4, [0] * 4
        for i, ax in enumerate(axes):
            ne2[ax] = ne[i]
            nb2[ax] = nb[i]
        return self.view(a, ne2, nb2, 0, op="PERMUTE")

    # -- flags and graph order ----------------------------------------------------------
    def set_output(self, t: int) -> None:
        self.g.flags[t] |= FLAG_OUTPUT

    def set_input(self, t: int) -> None:
        self.g.flags[t] |= FLAG_INPUT

    def expand(self, t: int) -> None:
        """ggml_build_forward_expand(graph, t): append t's unvisited ancestry, srcs first."""
        g = self.g
        stack: list[tuple[int, int]] = [(t, 0)]
        while stack:
            node, k = stack.pop()
            if k == 0:
                if node in self._visited:
                    continue
                self._visited.add(node)
            # visit srcs left to right (GGML_CGRAPH_EVAL_ORDER_LEFT_TO_RIGHT)
            while k < GGML_MAX_SRC and (g.srcs[node][k] < 0 or g.srcs[node][k] in self._visited):
                k += 1
            if k < GGML_MAX_SRC:
                stack.append((node, k + 1))
                stack.append((g.srcs[node][k], 0))
                continue
            if g.ops[node] == 0 and not g.flags[node] & FLAG_PARAM:
                g.leafs.append(node)
            else:
                g.nodes.append(node)

    def scenario(self, bufts: Sequence[dict[str, Any]] | None = None,
                 steps: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
        default = [{"alignment": 8, "max_size": 0}]
        out: dict[str, Any] = {"bufts": list(bufts) if bufts is not None else default}
        out.update(self.g.to_json())
        if steps is not None:
            out["steps"] = list(steps)
        return out
