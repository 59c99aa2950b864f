"""``Context``: a ggml context (the arena that holds tensor structs, graphs and, unless
``no_alloc``, tensor data), with tensor creation and the ops of ``ops.Ops``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyggml._native import ffi, ggml
from pyggml.errors import GGMLError
from pyggml.ggml import types
from pyggml.ggml._owner import Owner
from pyggml.ggml.ops import MAX_DIMS, Ops, check_shape
from pyggml.ggml.tensor import TENSORS, Tensor

MEM_ALIGN = 16  # GGML_MEM_ALIGN on 64-bit builds
_TENSOR_SIZE = ffi.sizeof("struct ggml_tensor")


def _pad(x: int, n: int) -> int:
    return (x + n - 1) // n * n


def tensor_overhead() -> int:
    """Context bytes each tensor struct takes (ggml_tensor_overhead)."""
    return int(ggml().ggml_tensor_overhead())


def graph_overhead(size: int = 2048) -> int:
    """Context bytes a graph of ``size`` nodes takes (ggml_graph_overhead_custom, no grads)."""
    return int(ggml().ggml_graph_overhead_custom(size, False))


class Context(Ops):
    """A ggml context of ``mem_size`` bytes.

    ``no_alloc=True`` holds tensor structs only (their data goes in a backend buffer later:
    ``Buffer``, ``alloc_ctx_tensors``, a graph allocator); otherwise each tensor's data follows
    its struct in the context's memory.  A context that runs out of memory raises GGMLError
    before ggml would abort.  ``free()`` (or leaving a ``with`` block) ends its use; the memory
    goes once no tensor, graph or numpy view of it remains.
    """

    def __init__(self, mem_size: int, *, no_alloc: bool = False) -> None:
        if isinstance(mem_size, bool) or not isinstance(mem_size, int) or mem_size < 0:
            raise GGMLError(f"mem_size must be a non-negative int, got {mem_size!r}")
        lib = ggml()
        # ggml_init GGML_ASSERTs its own allocation; memory numpy allocates raises MemoryError
        # instead.  ggml needs it GGML_MEM_ALIGN-aligned and treats mem_size 0 as one alignment.
        size = max(mem_size, MEM_ALIGN)
        memory = np.empty(size + MEM_ALIGN, np.uint8)
        start = -memory.ctypes.data % MEM_ALIGN
        params = ffi.new("struct ggml_init_params *", {
            "mem_size": size, "mem_buffer": ffi.cast("void *", memory.ctypes.data + start),
            "no_alloc": bool(no_alloc)})
        ptr = lib.ggml_init(params[0])
        self._owner = Owner(ptr, lib.ggml_free, "ggml context", memory)
        self._mem_size = int(lib.ggml_get_mem_size(ptr))
        self._no_alloc = bool(no_alloc)  # fixed: ggml_set_no_alloc is not exposed
        self._tensors: list[Tensor] = []
        self._keep: dict[int, Any] = {}  # buffers, allocators, contexts its tensors point into
        self._object_size = tensor_overhead() - _TENSOR_SIZE

    @classmethod
    def for_tensors(cls, n_tensors: int, *, graph_size: int = 0, no_alloc: bool = True) -> Context:
        """A context sized for ``n_tensors`` tensor structs and one graph of ``graph_size`` nodes
        (the sizing llama.cpp uses for its metadata and graph contexts)."""
        if n_tensors < 0 or graph_size < 0:
            raise GGMLError("n_tensors and graph_size must be >= 0")
        size = n_tensors * tensor_overhead() + (graph_overhead(graph_size) if graph_size else 0)
        return cls(size, no_alloc=no_alloc)

    # -- lifetime -------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._owner.closed

    def _check(self) -> Any:
        return self._owner.check()

    @property
    def ptr(self) -> Any:
        return self._check()

    def free(self) -> None:
        """End the context's use (ggml_free once nothing refers to its memory)."""
        if not self._owner.closed:
            for t in self._tensors:
                TENSORS.pop(int(ffi.cast("uintptr_t", t._ptr)), None)
            self._tensors.clear()
            self._owner.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    def keep_alive(self, obj: Any) -> None:
        """Tie ``obj`` (a buffer or allocator holding this context's tensor data) to the context."""
        if obj is not self:
            self._keep[id(obj)] = obj

    # -- memory ---------------------------------------------------------------------------
    @property
    def mem_size(self) -> int:
        self._check()
        return self._mem_size

    @property
    def used_mem(self) -> int:
        return int(ggml().ggml_used_mem(self.ptr))

    @property
    def no_alloc(self) -> bool:
        self._check()
        return self._no_alloc

    def _reserve(self, size: int) -> None:
        # ggml.c ggml_new_object: the object header plus PAD(size, GGML_MEM_ALIGN) must fit,
        # else ggml_new_tensor_impl's GGML_ASSERT(obj_new) aborts
        needed = ggml().ggml_used_mem(self.ptr) + (size + MEM_ALIGN - 1) // MEM_ALIGN * MEM_ALIGN \
            + self._object_size
        if needed > self._mem_size:
            raise GGMLError(f"ggml context out of memory: needs {needed} bytes, has {self._mem_size}")

    def _reserve_tensor(self, type_: int, ne: Sequence[int], *, view: bool = False) -> None:
        if view or self._no_alloc:
            self._reserve(_TENSOR_SIZE)
            return
        data = types.row_size(type_, ne[0])
        for n in ne[1:]:
            data *= n
        self._reserve(_TENSOR_SIZE + data)

    def _wrap(self, ptr: Any, ndim: int | None = None) -> Tensor:
        if ptr == ffi.NULL:  # unreachable after _reserve; kept so a NULL never escapes
            raise GGMLError("ggml returned no tensor")
        t = Tensor(ptr, self, ndim)
        self._tensors.append(t)
        return t

    # -- tensors --------------------------------------------------------------------------
    def new_tensor(self, type_: int, shape: Sequence[int], *, name: str | None = None) -> Tensor:
        """A tensor of ``shape`` (ggml ne order, 1 to 4 dims) and ``type_`` (GGMLQuantizationType)."""
        t = types.check_type(type_)
        ne = check_shape(shape)
        types.row_size(t, ne[0])  # ne[0] must be whole blocks
        self._reserve_tensor(t, ne)
        arr = ffi.new("int64_t[]", ne)
        out = self._wrap(ggml().ggml_new_tensor(self.ptr, t, len(ne), arr), ndim=len(ne))
        if name is not None:
            out.name = name
        return out

    def from_numpy(self, array: Any, type_: int | None = None, *, name: str | None = None) -> Tensor:
        """A new tensor holding a copy of ``array`` (numpy order; ne is its shape reversed).

        ``type_`` defaults to the array's own dtype (float32 -> F32, int32 -> I32...); F16 and
        BF16 targets cast float arrays; block types take uint8 rows (last axis = row bytes).
        The context must allocate data (not ``no_alloc``).
        """
        arr = np.asarray(array)
        if self.no_alloc:
            raise GGMLError("from_numpy needs a context that holds data (no_alloc=False)")
        if not 1 <= arr.ndim <= MAX_DIMS:
            raise GGMLError(f"arrays of 1 to {MAX_DIMS} dimensions map to ggml tensors, got {arr.ndim}")
        t = types.from_numpy_dtype(arr.dtype) if type_ is None else types.check_type(type_)
        ne = list(reversed(arr.shape))
        if types.numpy_dtype(t) is None:
            if arr.dtype != np.uint8:
                raise GGMLError(f"{types.type_name(t)} tensors are made from uint8 block rows")
            blck, size = types.blck_size(t), types.type_size(t)
            if ne[0] % size:
                raise GGMLError(f"row of {ne[0]} bytes is not whole {types.type_name(t)} blocks of {size}")
            ne[0] = ne[0] // size * blck
        elif t == types.GGMLType.BF16 and arr.dtype.kind == "f":
            arr = _to_bf16_bits(arr)
        out = self.new_tensor(t, ne, name=name)
        return out.set(arr)


def _to_bf16_bits(arr: np.ndarray) -> np.ndarray:
    # ggml_compute_fp32_to_bf16: round to nearest even, NaN kept quiet
    bits = np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32)
    rounded = ((bits + (0x7FFF + ((bits >> 16) & 1))) >> 16).astype(np.uint16)
    nan = (bits & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, ((bits >> 16) | 64).astype(np.uint16), rounded)
