"""ggml-backend and ggml-alloc: backends, buffer types, buffers, tensor and graph allocators."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyggml._native import ffi, ggml
from pyggml.errors import GGMLError
from pyggml.ggml._owner import BUFFERS, NumpyHolder, Owner
from pyggml.ggml.context import Context
from pyggml.ggml.graph import Graph
from pyggml.ggml.tensor import Tensor

_UINTPTR = ffi.typeof("uintptr_t")

MAX_N_THREADS = 512        # GGML_MAX_N_THREADS
SCHED_MAX_BACKENDS = 16    # GGML_SCHED_MAX_BACKENDS (ggml-backend.cpp)
_STATUS_SUCCESS = 0


def _addr(ptr: Any) -> int:
    return int(ffi.cast(_UINTPTR, ptr))


def _pad(x: int, n: int) -> int:
    return (x + n - 1) // n * n


def _status(status: int, what: str) -> None:
    if status != _STATUS_SUCCESS:
        text = ffi.string(ggml().ggml_status_to_string(status)).decode()
        raise GGMLError(f"{what} failed: {text} ({status})")


class BufferType:
    """A ``ggml_backend_buffer_type_t`` (static in ggml: never freed)."""

    __slots__ = ("ptr",)

    def __init__(self, ptr: Any) -> None:
        if ptr == ffi.NULL:
            raise GGMLError("no buffer type")
        self.ptr = ptr

    @classmethod
    def cpu(cls) -> BufferType:
        """Host memory (ggml_backend_cpu_buffer_type)."""
        return cls(ggml().ggml_backend_cpu_buffer_type())

    @property
    def name(self) -> str:
        return ffi.string(ggml().ggml_backend_buft_name(self.ptr)).decode()

    @property
    def alignment(self) -> int:
        return int(ggml().ggml_backend_buft_get_alignment(self.ptr))

    @property
    def max_size(self) -> int:
        return int(ggml().ggml_backend_buft_get_max_size(self.ptr))

    @property
    def is_host(self) -> bool:
        return bool(ggml().ggml_backend_buft_is_host(self.ptr))

    def alloc_size(self, tensor: Tensor) -> int:
        """Bytes ``tensor`` takes in a buffer of this type (ggml_backend_buft_get_alloc_size)."""
        return int(ggml().ggml_backend_buft_get_alloc_size(self.ptr, tensor.ptr))

    def alloc_buffer(self, size: int) -> Buffer:
        """A new buffer of ``size`` bytes (MemoryError when the backend cannot allocate it)."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise GGMLError(f"buffer size must be a non-negative int, got {size!r}")
        ptr = ggml().ggml_backend_buft_alloc_buffer(self.ptr, size)
        if ptr == ffi.NULL:
            raise MemoryError(f"{self.name}: cannot allocate a buffer of {size} bytes")
        return Buffer(ptr)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BufferType) and self.ptr == other.ptr

    def __hash__(self) -> int:
        return _addr(self.ptr)

    def __repr__(self) -> str:
        return f"<BufferType {self.name}>"


class Buffer:
    """A ``ggml_backend_buffer_t``: one allocation of a buffer type.

    ``free()`` ends its use; the memory goes once no context placed in it, tensor or numpy
    view refers to it (see ``_owner``).
    """

    zero_copy = True  # host buffers of this kind back numpy views directly

    def __init__(self, ptr: Any) -> None:
        if ptr == ffi.NULL:
            raise GGMLError("no backend buffer (allocation failed)")
        self._owner = Owner(ptr, ggml().ggml_backend_buffer_free, "backend buffer")
        BUFFERS[_addr(ptr)] = self

    @property
    def ptr(self) -> Any:
        return self._owner.check()

    @property
    def closed(self) -> bool:
        return self._owner.closed

    def free(self) -> None:
        if not self._owner.closed:
            BUFFERS.pop(_addr(self._owner.ptr), None)
            self._owner.close()

    @property
    def name(self) -> str:
        return ffi.string(ggml().ggml_backend_buffer_name(self.ptr)).decode()

    @property
    def size(self) -> int:
        return int(ggml().ggml_backend_buffer_get_size(self.ptr))

    @property
    def base(self) -> int:
        """Address of the first byte."""
        return _addr(ggml().ggml_backend_buffer_get_base(self.ptr))

    @property
    def alignment(self) -> int:
        return int(ggml().ggml_backend_buffer_get_alignment(self.ptr))

    @property
    def is_host(self) -> bool:
        return bool(ggml().ggml_backend_buffer_is_host(self.ptr))

    @property
    def buffer_type(self) -> BufferType:
        return BufferType(ggml().ggml_backend_buffer_get_type(self.ptr))

    def set_usage(self, usage: int) -> None:
        """0 any, 1 weights, 2 compute (enum ggml_backend_buffer_usage)."""
        if usage not in (0, 1, 2):
            raise GGMLError(f"buffer usage must be 0, 1 or 2, got {usage!r}")
        ggml().ggml_backend_buffer_set_usage(self.ptr, usage)

    def clear(self, value: int = 0) -> None:
        """Fill every byte with ``value`` (ggml_backend_buffer_clear)."""
        if not isinstance(value, int) or not 0 <= value <= 255:
            raise GGMLError(f"clear value must be a byte, got {value!r}")
        ggml().ggml_backend_buffer_clear(self.ptr, value)

    def _range(self, offset: int, size: int) -> None:
        if not isinstance(offset, int) or offset < 0 or size < 0 or offset + size > self.size:
            raise GGMLError(f"byte range [{offset}, {offset + size}) outside a buffer of {self.size} bytes")

    def _host(self, what: str) -> None:
        if not self.is_host:
            raise GGMLError(f"{what}: {self.name} is not host memory; "
                            "place a tensor and use Tensor.set_bytes")

    def set_bytes(self, offset: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """Copy ``data`` to ``offset`` (host buffers; the weight loader's placement of tensor bytes)."""
        raw = memoryview(data).cast("B")
        self._range(offset, raw.nbytes)
        self._host("set_bytes")
        base = ffi.cast("char *", ggml().ggml_backend_buffer_get_base(self.ptr))
        ffi.memmove(base + offset, raw, raw.nbytes)

    def get_bytes(self, offset: int, size: int) -> bytes:
        self._range(offset, size)
        self._host("get_bytes")
        base = ffi.cast("char *", ggml().ggml_backend_buffer_get_base(self.ptr))
        return bytes(ffi.buffer(base + offset, size))

    def numpy(self) -> np.ndarray:
        """The whole buffer as a writable uint8 view (host buffers); keeps the buffer alive."""
        self._host("numpy")
        interface = {"version": 3, "shape": (self.size,), "typestr": "|u1", "data": (self.base, False)}
        return np.asarray(NumpyHolder(interface, self))

    def place(self, tensor: Tensor, offset: int) -> None:
        """Put ``tensor``'s data at ``offset`` of this buffer (ggml_backend_tensor_alloc)."""
        p = tensor.ptr
        # ggml-backend.cpp ggml_backend_tensor_alloc asserts
        if p.buffer != ffi.NULL or p.data != ffi.NULL or p.view_src != ffi.NULL:
            raise GGMLError(f"tensor {tensor.name!r} already has memory or is a view")
        need = int(ggml().ggml_backend_buffer_get_alloc_size(self.ptr, p))
        self._range(offset, need)
        addr = ffi.cast("char *", ggml().ggml_backend_buffer_get_base(self.ptr)) + offset
        _status(ggml().ggml_backend_tensor_alloc(self.ptr, p, addr), "ggml_backend_tensor_alloc")
        tensor.context.keep_alive(self)

    def __repr__(self) -> str:
        return "<Buffer freed>" if self.closed else f"<Buffer {self.name} {self.size} bytes>"


def alloc_ctx_tensors(ctx: Context, where: BufferType | Backend) -> Buffer | None:
    """One buffer holding every unallocated tensor of a ``no_alloc`` context, each placed at its
    aligned offset (ggml_backend_alloc_ctx_tensors_from_buft); None when there is nothing to place.
    """
    if not ctx.no_alloc:  # ggml-alloc.c asserts ggml_get_no_alloc(ctx)
        raise GGMLError("alloc_ctx_tensors needs a no_alloc context")
    buft = where.buffer_type if isinstance(where, Backend) else where
    if not isinstance(buft, BufferType):
        raise GGMLError(f"expected a BufferType or Backend, got {type(where).__name__}")
    ptr = ggml().ggml_backend_alloc_ctx_tensors_from_buft(ctx.ptr, buft.ptr)
    if ptr == ffi.NULL:
        return None
    buf = Buffer(ptr)
    ctx.keep_alive(buf)
    return buf


class TensorAllocator:
    """Bump allocator over one buffer (ggml_tallocr): tensors go one after another, aligned."""

    def __init__(self, buffer: Buffer) -> None:
        self.buffer = buffer
        self._t = ffi.new("struct ggml_tallocr *", ggml().ggml_tallocr_new(buffer.ptr))

    @property
    def offset(self) -> int:
        return int(self._t.offset)

    def alloc(self, tensor: Tensor) -> None:
        p = tensor.ptr
        lib = ggml()
        if p.buffer != ffi.NULL or p.data != ffi.NULL or p.view_src != ffi.NULL:
            raise GGMLError(f"tensor {tensor.name!r} already has memory or is a view")
        # ggml-alloc.c ggml_tallocr_alloc aborts when the padded size does not fit
        size = _pad(int(lib.ggml_backend_buffer_get_alloc_size(self.buffer.ptr, p)), int(self._t.alignment))
        if self.offset + size > self.buffer.size:
            raise GGMLError(f"not enough space in the buffer for {tensor.name!r}: needs {size} bytes, "
                            f"{self.buffer.size - self.offset} left")
        _status(lib.ggml_tallocr_alloc(self._t, p), "ggml_tallocr_alloc")
        tensor.context.keep_alive(self.buffer)


class _BufferHolder:
    """What BUFFERS maps an allocator-owned buffer to: no zero-copy views of it."""

    zero_copy = False

    def __init__(self, allocator: Any) -> None:
        self.allocator = allocator


class GraphAllocator:
    """Places a graph's tensors in buffers it owns, reusing memory (ggml_gallocr).

    Each (re)allocation of its buffers starts a new ``generation``; graphs allocated in an
    older one refuse to compute, and their tensors refuse to be read.
    """

    def __init__(self, buffer_types: BufferType | Sequence[BufferType]) -> None:
        bufts = [buffer_types] if isinstance(buffer_types, BufferType) else list(buffer_types)
        if not bufts or not all(isinstance(b, BufferType) for b in bufts):
            raise GGMLError("GraphAllocator needs one or more BufferType")
        lib = ggml()
        arr = ffi.new("ggml_backend_buffer_type_t[]", [b.ptr for b in bufts])
        self._owner = Owner(lib.ggml_gallocr_new_n(arr, len(bufts)), lib.ggml_gallocr_free, "graph allocator")
        self.n_buffers = len(bufts)
        self.generation = 0
        self._holder = _BufferHolder(self)
        self._registered: set[int] = set()
        self._stale: set[int] = set()   # buffers of older generations (freed by ggml-alloc)

    @property
    def ptr(self) -> Any:
        return self._owner.check()

    def free(self) -> None:
        for a in self._registered:
            if BUFFERS.get(a) is self._holder:
                del BUFFERS[a]
        self._registered.clear()
        self._owner.close()

    def buffer_size(self, buffer_id: int = 0) -> int:
        """Bytes of buffer ``buffer_id`` (ggml_gallocr_get_buffer_size)."""
        if not isinstance(buffer_id, int) or not 0 <= buffer_id < self.n_buffers:
            raise GGMLError(f"buffer id {buffer_id!r} outside 0..{self.n_buffers - 1}")
        return int(ggml().ggml_gallocr_get_buffer_size(self.ptr, buffer_id))

    def _sizes(self) -> list[int]:
        return [self.buffer_size(i) for i in range(self.n_buffers)]

    def _check_graph(self, graph: Graph) -> None:
        if not isinstance(graph, Graph):
            raise GGMLError(f"expected a Graph, got {type(graph).__name__}")
        if self.n_buffers > 1:
            raise GGMLError("graphs over several buffer types need per-node buffer ids, not exposed here")

    def _after(self, before: list[int]) -> None:
        if self._sizes() != before:
            self.generation += 1
            for a in self._registered:
                if BUFFERS.get(a) is self._holder:
                    del BUFFERS[a]
            self._stale |= self._registered
            self._registered.clear()

    def _detach_stale(self, graph: Graph) -> None:
        # Tensors placed in an older generation still point into freed buffers, and ggml-alloc
        # takes a tensor with data for a pre-allocated one: clear them so they are placed again.
        if not self._stale:
            return
        for t in graph.nodes + graph.leafs:
            if _addr(t.ptr.buffer) in self._stale:
                t.ptr.data = ffi.NULL
                t.ptr.buffer = ffi.NULL

    def reserve(self, graph: Graph) -> bool:
        """Size the buffers for ``graph`` without placing it (ggml_gallocr_reserve)."""
        self._check_graph(graph)
        self._detach_stale(graph)
        before = self._sizes()
        ok = bool(ggml().ggml_gallocr_reserve(self.ptr, graph.ptr))
        self._after(before)
        return ok

    def alloc_graph(self, graph: Graph) -> bool:
        """Give every tensor of ``graph`` memory (ggml_gallocr_alloc_graph); False on failure."""
        self._check_graph(graph)
        self._detach_stale(graph)
        before = self._sizes()
        ok = bool(ggml().ggml_gallocr_alloc_graph(self.ptr, graph.ptr))
        self._after(before)
        if not ok:
            return False
        for t in graph.nodes + graph.leafs:
            base = t.ptr.view_src if t.ptr.view_src != ffi.NULL else t.ptr
            a = _addr(base.buffer)
            if a and a not in BUFFERS:
                BUFFERS[a] = self._holder
                self._registered.add(a)
                self._stale.discard(a)
        graph.allocation = (self, self.generation)
        graph.context.keep_alive(self)
        return True


def devices() -> list[str]:
    """Names of the ggml devices this build registered (CPU, plus CUDA0... with GGML_CUDA)."""
    lib = ggml()
    return [ffi.string(lib.ggml_backend_dev_name(lib.ggml_backend_dev_get(i))).decode()
            for i in range(lib.ggml_backend_dev_count())]


class Backend:
    """A ``ggml_backend_t`` that computes graphs."""

    def __init__(self, ptr: Any) -> None:
        if ptr == ffi.NULL:
            raise GGMLError("backend initialization failed")
        self._owner = Owner(ptr, ggml().ggml_backend_free, "backend")

    @classmethod
    def cpu(cls, n_threads: int | None = None) -> Backend:
        """The CPU backend (ggml_backend_cpu_init) with ``n_threads`` (default: all cores)."""
        backend = cls(ggml().ggml_backend_cpu_init())
        backend.set_n_threads(n_threads if n_threads is not None else (os.cpu_count() or 1))
        return backend

    @classmethod
    def by_name(cls, name: str) -> Backend:
        """The backend of the device named ``name`` (``devices()`` lists them, e.g. ``CUDA0``)."""
        if name not in devices():
            raise GGMLError(f"no ggml device named {name!r}; devices: {', '.join(devices())}")
        return cls(ggml().ggml_backend_init_by_name(name.encode(), ffi.NULL))

    @property
    def ptr(self) -> Any:
        return self._owner.check()

    def free(self) -> None:
        self._owner.close()

    @property
    def name(self) -> str:
        return ffi.string(ggml().ggml_backend_name(self.ptr)).decode()

    @property
    def is_cpu(self) -> bool:
        return bool(ggml().ggml_backend_is_cpu(self.ptr))

    def set_n_threads(self, n_threads: int) -> None:
        """Threads the CPU backend computes with."""
        if not self.is_cpu:
            raise GGMLError(f"{self.name} has no thread count")
        if isinstance(n_threads, bool) or not isinstance(n_threads, int) \
                or not 1 <= n_threads <= MAX_N_THREADS:
            raise GGMLError(f"n_threads must be an int in 1..{MAX_N_THREADS}, got {n_threads!r}")
        ggml().ggml_backend_cpu_set_n_threads(self.ptr, n_threads)

    @property
    def buffer_type(self) -> BufferType:
        return BufferType(ggml().ggml_backend_get_default_buffer_type(self.ptr))

    def alloc_buffer(self, size: int) -> Buffer:
        return self.buffer_type.alloc_buffer(size)

    def supports_op(self, tensor: Tensor) -> bool:
        return bool(ggml().ggml_backend_supports_op(self.ptr, tensor.ptr))

    def compute(self, graph: Graph) -> None:
        """Compute every node of ``graph`` (ggml_backend_graph_compute); GGMLError on failure.

        Refused before reaching C: a tensor without memory, in a freed buffer or context, in
        memory this backend cannot reach, or an op the backend does not support.
        """
        if not isinstance(graph, Graph):
            raise GGMLError(f"expected a Graph, got {type(graph).__name__}")
        lib, ptr = ggml(), self.ptr
        # The checks walk every node; a graph recomputed unchanged (the decode loop) is checked
        # once.  Its memory cannot go meanwhile: its context keeps buffers, allocators and
        # source contexts alive, and an allocator's reallocation changes the key.
        alloc = graph.allocation
        key = (_addr(ptr), id(alloc[0]), alloc[1]) if alloc is not None else (_addr(ptr), 0, -1)
        if graph.checked_for != key:
            graph.check_computable(host_only=self.is_cpu)
            for i in range(lib.ggml_graph_n_nodes(graph.ptr)):
                node = lib.ggml_graph_node(graph.ptr, i)
                if not lib.ggml_backend_supports_op(ptr, node):
                    op = ffi.string(lib.ggml_op_desc(node)).decode()
                    raise GGMLError(f"{self.name} does not support {op} for node "
                                    f"{ffi.string(node.name).decode()!r}")
            graph.checked_for = key
        elif alloc is not None and alloc[0].generation != alloc[1]:
            graph.check_computable(host_only=self.is_cpu)  # raises: reallocated since
        _status(lib.ggml_backend_graph_compute(ptr, graph.ptr), "ggml_backend_graph_compute")

    def __repr__(self) -> str:
        return f"<Backend {self.name}>"


class Scheduler:
    """Splits graphs over several backends and allocates them (ggml_backend_sched).

    ``backends`` in priority order, the last one the CPU backend (ggml-backend.cpp asserts it).
    Graphs must leave node memory to the scheduler; pre-allocated tensors (weights) must lie in
    a live ``Buffer`` some backend can use.  Tensor data of scheduled graphs is read by copy.
    """

    def __init__(self, backends: Sequence[Backend], *, graph_size: int = 2048, parallel: bool = False,
                 op_offload: bool = False) -> None:
        backends = list(backends)
        # ggml-backend.cpp ggml_backend_sched_new asserts
        if not 1 <= len(backends) <= SCHED_MAX_BACKENDS or not all(isinstance(b, Backend) for b in backends):
            raise GGMLError(f"a scheduler takes 1 to {SCHED_MAX_BACKENDS} Backend objects")
        lib = ggml()
        if lib.ggml_backend_dev_type(lib.ggml_backend_get_device(backends[-1].ptr)) != 0:
            raise GGMLError("the scheduler's last backend must be the CPU backend")
        if isinstance(graph_size, bool) or not isinstance(graph_size, int) or graph_size < 1:
            raise GGMLError(f"graph_size must be a positive int, got {graph_size!r}")
        arr = ffi.new("ggml_backend_t[]", [b.ptr for b in backends])
        ptr = lib.ggml_backend_sched_new(arr, ffi.NULL, len(backends), graph_size, parallel, op_offload)
        # the backends' owners ride along, so that no backend is freed before the scheduler
        self._owner = Owner(ptr, lib.ggml_backend_sched_free, "scheduler", [b._owner for b in backends])
        self.backends = backends
        self.graph_size = graph_size
        self.generation = 0
        self._allocated: Graph | None = None  # the graph the scheduler holds allocated
        self._holder = _BufferHolder(self)
        self._registered: set[int] = set()

    @property
    def ptr(self) -> Any:
        return self._owner.check()

    def free(self) -> None:
        self._forget_buffers()
        self._owner.close()

    def _forget_buffers(self) -> None:
        for a in self._registered:
            if BUFFERS.get(a) is self._holder:
                del BUFFERS[a]
        self._registered.clear()

    def buffer_size(self, backend: Backend) -> int:
        """Compute-buffer bytes the scheduler holds for ``backend``."""
        if not any(b is backend for b in self.backends):
            raise GGMLError("backend is not one of the scheduler's")
        return int(ggml().ggml_backend_sched_get_buffer_size(self.ptr, backend.ptr))

    def _sizes(self) -> list[int]:
        return [self.buffer_size(b) for b in self.backends]

    @property
    def n_splits(self) -> int:
        return int(ggml().ggml_backend_sched_get_n_splits(self.ptr))

    def _check_graph(self, graph: Graph) -> None:
        if not isinstance(graph, Graph):
            raise GGMLError(f"expected a Graph, got {type(graph).__name__}")
        # ggml-backend.cpp: GGML_ASSERT(hash_set.size >= n_nodes + n_leafs)
        if graph.n_nodes + graph.n_leafs > self.graph_size:
            raise GGMLError(f"graph of {graph.n_nodes} nodes and {graph.n_leafs} leafs exceeds the "
                            f"scheduler's graph_size {self.graph_size}")
        lib = ggml()
        for t in graph.nodes + graph.leafs:
            p = t.ptr
            base = p.view_src if p.view_src != ffi.NULL else p
            if base.data == ffi.NULL:
                continue
            if base.buffer == ffi.NULL or BUFFERS.get(_addr(base.buffer)) is None:
                raise GGMLError(f"tensor {t.name!r} has memory outside a live backend buffer; "
                                "the scheduler places graph memory itself")
            # ggml_backend_sched_backend_id_from_cur aborts when no backend takes the buffer
            if not any(lib.ggml_backend_supports_buft(b.ptr, lib.ggml_backend_buffer_get_type(base.buffer))
                       and lib.ggml_backend_supports_op(b.ptr, p) for b in self.backends):
                raise GGMLError(f"no backend of the scheduler can use tensor {t.name!r} where it lies")

    def _after(self, before: list[int]) -> None:
        if self._sizes() != before:
            self.generation += 1
            self._forget_buffers()

    def reserve(self, graph: Graph) -> bool:
        """Size the compute buffers for ``graph`` (ggml_backend_sched_reserve)."""
        self._check_graph(graph)
        before = self._sizes()
        ok = bool(ggml().ggml_backend_sched_reserve(self.ptr, graph.ptr))
        self._after(before)
        return ok

    def reset(self) -> None:
        """Forget the current allocation (ggml_backend_sched_reset)."""
        ggml().ggml_backend_sched_reset(self.ptr)
        self._allocated = None

    def alloc_graph(self, graph: Graph) -> bool:
        """Split and allocate ``graph`` (ggml_backend_sched_alloc_graph); False on failure."""
        self._check_graph(graph)
        if self._allocated is not None:  # ggml-backend.cpp: GGML_ASSERT(!sched->is_alloc)
            raise GGMLError("the scheduler holds an allocated graph: reset() first")
        before = self._sizes()
        ok = bool(ggml().ggml_backend_sched_alloc_graph(self.ptr, graph.ptr))
        self._after(before)
        if ok:
            self._allocated = graph
            for t in graph.nodes + graph.leafs:
                base = t.ptr.view_src if t.ptr.view_src != ffi.NULL else t.ptr
                a = _addr(base.buffer)
                if a and a not in BUFFERS:
                    BUFFERS[a] = self._holder
                    self._registered.add(a)
            graph.allocation = (self, self.generation)
            graph.context.keep_alive(self)
        return ok

    def compute(self, graph: Graph) -> None:
        """Allocate ``graph`` unless it is the allocated one, then compute it."""
        if self._allocated is not graph:
            if self._allocated is not None:
                self.reset()
            if not self.alloc_graph(graph):
                raise GGMLError("the scheduler could not allocate the graph")
        elif graph.allocation[1] != self.generation:
            raise GGMLError("the scheduler reallocated since this graph was allocated")
        status = ggml().ggml_backend_sched_graph_compute(self.ptr, graph.ptr)
        _status(status, "ggml_backend_sched_graph_compute")
