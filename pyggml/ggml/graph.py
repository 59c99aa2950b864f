"""``Graph``: a ggml compute graph (``struct ggml_cgraph``) in a context."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyggml._native import ffi, ggml
from pyggml.errors import GGMLError
from pyggml.ggml._owner import BUFFERS
from pyggml.ggml.context import Context, graph_overhead
from pyggml.ggml.tensor import TENSORS, Tensor, wrap

_UINTPTR = ffi.typeof("uintptr_t")

if TYPE_CHECKING:
    from pyggml.ggml.backend import Backend

DEFAULT_GRAPH_SIZE = 2048  # GGML_DEFAULT_GRAPH_SIZE
_FLAG_PARAM = 4            # GGML_TENSOR_FLAG_PARAM
_MAX_SRC = 10              # GGML_MAX_SRC


def _addr(ptr: Any) -> int:
    return int(ffi.cast(_UINTPTR, ptr))


class Graph:
    """Up to ``size`` nodes and ``size`` leafs, built by ``build_forward_expand``.

    The graph lives in ``ctx``'s memory (ggml_new_graph_custom, no gradients).  Python keeps
    the set of tensors it reached, so it knows the node and leaf counts ggml would assert on.
    """

    def __init__(self, ctx: Context, size: int = DEFAULT_GRAPH_SIZE) -> None:
        if not isinstance(ctx, Context):
            raise GGMLError(f"Graph needs a pyggml.ggml.Context, got {type(ctx).__name__}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise GGMLError(f"graph size must be a positive int, got {size!r}")
        ctx._reserve(graph_overhead(size) - ctx._object_size)
        self._ctx = ctx
        self._ptr = ggml().ggml_new_graph_custom(ctx.ptr, size, False)
        self.size = size
        self._visited: set[int] = set()
        self._leafs: list[Any] = []
        self._n_nodes = 0
        self.allocation: tuple[Any, int] | None = None  # (allocator, its generation) once allocated
        self.checked_for: tuple[int, int, int] | None = None  # (backend, allocator, generation) checked

    @property
    def ptr(self) -> Any:
        self._ctx._check()
        return self._ptr

    @property
    def context(self) -> Context:
        return self._ctx

    def build_forward_expand(self, tensor: Tensor) -> Graph:
        """Add ``tensor`` and every tensor it depends on, sources first (ggml_build_forward_expand)."""
        if not isinstance(tensor, Tensor):
            raise GGMLError(f"build_forward_expand takes a Tensor, got {type(tensor).__name__}")
        root = tensor.ptr
        new_nodes, new_leafs = self._reach(root)
        # ggml.c ggml_visit_parents_graph: GGML_ASSERT(n_nodes < size) / (n_leafs < size)
        if self._n_nodes + len(new_nodes) > self.size or len(self._leafs) + len(new_leafs) > self.size:
            raise GGMLError(f"graph of size {self.size} cannot hold {self._n_nodes + len(new_nodes)} nodes "
                            f"and {len(self._leafs) + len(new_leafs)} leafs")
        ggml().ggml_build_forward_expand(self.ptr, root)
        self._visited.update(_addr(p) for p in new_nodes)
        self._visited.update(_addr(p) for p in new_leafs)
        self._leafs.extend(new_leafs)
        self._n_nodes += len(new_nodes)
        self.allocation = None
        self.checked_for = None
        return self

    def _reach(self, root: Any) -> tuple[list[Any], list[Any]]:
        nodes: list[Any] = []
        leafs: list[Any] = []
        seen: set[int] = set()
        stack = [root]
        while stack:
            p = stack.pop()
            a = _addr(p)
            if a in self._visited or a in seen:
                continue
            seen.add(a)
            owner = TENSORS.get(a)
            if owner is None or owner.context.closed:
                raise GGMLError("the graph reaches a tensor whose context was freed")
            for i in range(_MAX_SRC):
                if p.src[i] != ffi.NULL:
                    stack.append(p.src[i])
            if p.op == 0 and not (p.flags & _FLAG_PARAM):
                leafs.append(p)
            else:
                nodes.append(p)
        return nodes, leafs

    @property
    def n_nodes(self) -> int:
        return int(ggml().ggml_graph_n_nodes(self.ptr))

    @property
    def n_leafs(self) -> int:
        return len(self._leafs)

    def node(self, i: int) -> Tensor:
        """Node ``i`` in compute order (negative counts from the end, as ggml_graph_node)."""
        n = self.n_nodes
        if not isinstance(i, int) or not -n <= i < n:
            raise GGMLError(f"node index {i!r} outside a graph of {n} nodes")
        return wrap(ggml().ggml_graph_node(self.ptr, i))

    @property
    def nodes(self) -> list[Tensor]:
        """Every node in compute order."""
        lib, ptr = ggml(), self.ptr
        return [wrap(lib.ggml_graph_node(ptr, i)) for i in range(lib.ggml_graph_n_nodes(ptr))]

    @property
    def leafs(self) -> list[Tensor]:
        return [wrap(p) for p in self._leafs]

    def get_tensor(self, name: str) -> Tensor | None:
        """The node or leaf named ``name`` (ggml_graph_get_tensor)."""
        found = ggml().ggml_graph_get_tensor(self.ptr, name.encode())
        return wrap(found) if found != ffi.NULL else None

    def clear(self) -> None:
        """Drop every node and leaf (ggml_graph_clear)."""
        ggml().ggml_graph_clear(self.ptr)
        self._visited.clear()
        self._leafs.clear()
        self._n_nodes = 0
        self.allocation = None
        self.checked_for = None

    def compute(self, backend: Backend) -> None:
        """Compute on ``backend`` (ggml_backend_graph_compute); see ``Backend.compute``."""
        backend.compute(self)

    def check_computable(self, host_only: bool) -> None:
        """GGMLError unless every tensor has live memory (what compute would otherwise crash on)."""
        allocation = self.allocation
        if allocation is not None and allocation[0].generation != allocation[1]:
            raise GGMLError("the graph's allocator reallocated its buffers since this graph was allocated; "
                            "allocate the graph again")
        lib, ptr = ggml(), self.ptr
        tensors = [lib.ggml_graph_node(ptr, i) for i in range(lib.ggml_graph_n_nodes(ptr))] + self._leafs
        for p in tensors:
            if p.data == ffi.NULL and lib.ggml_nbytes(p) > 0:
                name = ffi.string(p.name).decode("utf-8", "replace")
                raise GGMLError(f"tensor {name!r} has no memory: allocate the graph (GraphAllocator) "
                                "or its context's tensors first")
            base = p.view_src if p.view_src != ffi.NULL else p
            if base.buffer != ffi.NULL:
                if BUFFERS.get(_addr(base.buffer)) is None:
                    raise GGMLError("a graph tensor lies in a buffer that was freed or reallocated")
                if host_only and not lib.ggml_backend_buffer_is_host(base.buffer):
                    raise GGMLError("the CPU backend cannot compute tensors in a device buffer")
            elif _addr(base) not in TENSORS:
                raise GGMLError("a graph tensor's memory belongs to a freed context")
