"""Pythonic ggml over the cffi bindings of ``pyggml._native`` (GGML_CDEF).

Shapes: ggml ``ne`` order, everywhere in pyggml
-----------------------------------------------
A tensor's shape is written as ggml writes it, ``ne = (ne[0], ne[1], ne[2], ne[3])`` with
**ne[0] the fastest-varying dimension** (contiguous in memory; one row), so a matrix of
``n_rows`` rows of ``n_cols`` elements has ``ne = (n_cols, n_rows)``.  numpy writes the same
data the other way round: ``Tensor.numpy().shape == tuple(reversed(tensor.shape))``, and
``Context.from_numpy(a)`` gives ``ne == a.shape[::-1]``.  Byte strides ``nb`` follow ``ne``
(``nb[0]`` is the element/block size).  A shape comment ``# [n_embd, n_tokens]`` in pyggml
code means ne order.  Block (quantized) types show their data as uint8 rows of whole blocks.

Pieces: ``Context`` (tensor arena; ops as methods: ``ctx.mul_mat(w, x)``), ``Tensor``,
``Graph``, ``Backend`` (CPU with a thread count), ``BufferType``/``Buffer``,
``alloc_ctx_tensors``, ``TensorAllocator`` (ggml_tallocr), ``GraphAllocator`` (ggml_gallocr),
``Scheduler`` (ggml_backend_sched).
Types are ``gguf.GGMLQuantizationType`` (re-exported as ``GGMLType``).  Input that ggml would
answer with an abort raises ``pyggml.errors.GGMLError`` instead.
"""

from pyggml.ggml.backend import (
    Backend,
    Buffer,
    BufferType,
    GraphAllocator,
    Scheduler,
    TensorAllocator,
    alloc_ctx_tensors,
    devices,
)
from pyggml.ggml.context import Context, graph_overhead, tensor_overhead
from pyggml.ggml.graph import Graph
from pyggml.ggml.ops import ROPE_TYPE_NEOX, ROPE_TYPE_NORMAL
from pyggml.ggml.tensor import Tensor
from pyggml.ggml.types import GGMLType

__all__ = [
    "Backend", "Buffer", "BufferType", "Context", "GGMLType", "Graph", "GraphAllocator",
    "ROPE_TYPE_NEOX", "ROPE_TYPE_NORMAL", "Scheduler", "Tensor", "TensorAllocator", "alloc_ctx_tensors",
    "devices", "graph_overhead", "tensor_overhead",
]
