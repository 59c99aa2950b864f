"""Reading a ``struct ggml_cgraph`` through cffi: its node and leaf arrays.

The binding declares ``struct ggml_cgraph`` opaque (GGML_CDEF) and ggml has no public accessor
for the leafs, so the header fields are read at their fixed offsets.  llama.cpp:
ggml/src/ggml-impl.h ``struct ggml_cgraph`` starts {int size; int n_nodes; int n_leafs;
ggml_tensor ** nodes; ** grads; ** grad_accs; ** leafs; ...}; the pointers are 8-byte aligned
after the three ints (offset 16), so leafs is pointer slot 5.
"""

from __future__ import annotations

from typing import Any

from pyggml._native import ffi, ggml

NULL = ffi.NULL
_UINTPTR = ffi.typeof("uintptr_t")
_NODES_SLOT = 2    # (16 bytes of ints) / 8 + 0
_LEAFS_SLOT = 5


def addr(p: Any) -> int:
    return int(ffi.cast(_UINTPTR, p))


def name(p: Any) -> str:
    return ffi.string(p.name).decode("utf-8", "replace")


def nbytes(p: Any) -> int:
    return int(ggml().ggml_nbytes(p))


def counts(graph_ptr: Any) -> tuple[int, int]:
    """(n_nodes, n_leafs) of a ``struct ggml_cgraph *``."""
    ints = ffi.cast("int *", graph_ptr)
    return int(ints[1]), int(ints[2])


def arrays(graph_ptr: Any) -> tuple[Any, Any]:
    """The ``nodes`` and ``leafs`` arrays (``struct ggml_tensor **``)."""
    slots = ffi.cast("struct ggml_tensor ***", graph_ptr)
    return slots[_NODES_SLOT], slots[_LEAFS_SLOT]


def check_layout(ptr: Any, n_nodes: int, nodes: Any) -> None:
    """Cross-check the fields read at fixed offsets against ggml's public accessors."""
    lib = ggml()
    if n_nodes != int(lib.ggml_graph_n_nodes(ptr)) or (n_nodes and nodes[0] != lib.ggml_graph_node(ptr, 0)):
        raise RuntimeError("struct ggml_cgraph layout differs from what pyggml.alloc.cgraph expects")


def nodes_and_leafs(graph: Any) -> tuple[list[Any], list[Any]]:
    """The node and leaf pointers of a ``pyggml.ggml.Graph`` (or a raw cgraph pointer)."""
    ptr = graph.ptr if hasattr(graph, "ptr") else graph
    n_nodes, n_leafs = counts(ptr)
    nodes, leafs = arrays(ptr)
    check_layout(ptr, n_nodes, nodes)
    return [nodes[i] for i in range(n_nodes)], [leafs[i] for i in range(n_leafs)]


def array_bytes(arr: Any, n: int) -> bytes:
    """The raw pointer array (a cheap identity fingerprint of a node/leaf list)."""
    return bytes(ffi.buffer(ffi.cast("char *", arr), n * ffi.sizeof("void *"))) if n else b""
