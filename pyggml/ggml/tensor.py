"""``Tensor``: a ``struct ggml_tensor`` owned by a ``Context``, with numpy interop."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from pyggml._native import ffi, ggml
from pyggml.errors import GGMLError
from pyggml.ggml import types
from pyggml.ggml._owner import BUFFERS, NumpyHolder

_UINTPTR = ffi.typeof("uintptr_t")

if TYPE_CHECKING:
    from pyggml.ggml.context import Context

# Every tensor created through pyggml, by address; lets a graph node found by pointer come
# back as the Tensor (and Context) that owns it.
TENSORS: weakref.WeakValueDictionary[int, Tensor] = weakref.WeakValueDictionary()


class Tensor:
    """One ggml tensor.  Shapes are in ggml ``ne`` order (see the package docstring)."""

    __slots__ = ("_ptr", "_ctx", "_ndim", "__weakref__")

    def __init__(self, ptr: Any, ctx: Context, ndim: int | None = None) -> None:
        self._ptr = ptr
        self._ctx = ctx
        self._ndim = ndim
        TENSORS[int(ffi.cast(_UINTPTR, ptr))] = self

    # -- identity ------------------------------------------------------------------------
    @property
    def ptr(self) -> Any:
        """The ``struct ggml_tensor *`` (GGMLError once the context is freed)."""
        if self._ctx._owner.closed:
            raise GGMLError("ggml context was freed")
        return self._ptr

    @property
    def context(self) -> Context:
        return self._ctx

    @property
    def address(self) -> int:
        return int(ffi.cast(_UINTPTR, self.ptr))

    def __repr__(self) -> str:
        if self._ctx.closed:
            return "<Tensor of a freed context>"
        return f"<Tensor {self.name!r} {types.type_name(self._ptr.type)} ne={self.shape} op={self.op}>"

    # -- shape and type -------------------------------------------------------------------
    @property
    def type(self) -> types.GGMLType | int:
        return types.as_type(self.ptr.type)

    @property
    def ne(self) -> tuple[int, int, int, int]:
        """Elements per dimension, all four (ne[0] fastest)."""
        return tuple(self.ptr.ne)

    @property
    def nb(self) -> tuple[int, int, int, int]:
        """Byte strides per dimension, all four."""
        return tuple(self.ptr.nb)

    @property
    def ndim(self) -> int:
        """Dimensions given at creation, else ggml_n_dims (the last dimension > 1, at least 1)."""
        return self._ndim if self._ndim is not None else ggml().ggml_n_dims(self.ptr)

    @property
    def shape(self) -> tuple[int, ...]:
        """``ne`` cut to ``ndim`` entries; ggml order, the reverse of ``numpy().shape``."""
        return self.ne[: self.ndim]

    @property
    def nelements(self) -> int:
        return int(ggml().ggml_nelements(self.ptr))

    @property
    def nbytes(self) -> int:
        return int(ggml().ggml_nbytes(self.ptr))

    @property
    def is_contiguous(self) -> bool:
        return bool(ggml().ggml_is_contiguous(self.ptr))

    @property
    def is_view(self) -> bool:
        return self.ptr.view_src != ffi.NULL

    @property
    def op(self) -> str:
        """ggml's op description (``NONE``, ``MUL_MAT``, ``SILU``...)."""
        return ffi.string(ggml().ggml_op_desc(self.ptr)).decode()

    @property
    def op_params(self) -> tuple[int, ...]:
        return tuple(self.ptr.op_params)

    @property
    def src(self) -> list[Tensor | None]:
        """The op's sources (ggml's ``src[]``, trailing empty slots dropped)."""
        out: list[Tensor | None] = []
        for i in range(ffi.sizeof(self.ptr.src) // ffi.sizeof("void *")):
            out.append(wrap(self.ptr.src[i]))
        while out and out[-1] is None:
            out.pop()
        return out

    @property
    def view_src(self) -> Tensor | None:
        return wrap(self.ptr.view_src)

    @property
    def name(self) -> str:
        return ffi.string(self.ptr.name).decode("utf-8", "replace")

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str):
            raise GGMLError(f"tensor name must be a str, got {type(value).__name__}")
        raw = value.encode()
        if b"\0" in raw:
            raise GGMLError("tensor name contains a NUL character")
        # ggml_set_name truncates to GGML_MAX_NAME - 1 bytes, as here
        ggml().ggml_set_name(self.ptr, raw)

    def set_input(self) -> Tensor:
        """Flag as a graph input (ggml_set_input): the graph allocator places it first."""
        ggml().ggml_set_input(self.ptr)
        return self

    def set_output(self) -> Tensor:
        """Flag as a graph output (ggml_set_output): the graph allocator never reuses it."""
        ggml().ggml_set_output(self.ptr)
        return self

    @property
    def flags(self) -> int:
        return int(self.ptr.flags)

    # -- data -----------------------------------------------------------------------------
    @property
    def data(self) -> int:
        """Address of the data (0 while unallocated)."""
        return int(ffi.cast(_UINTPTR, self.ptr.data))

    @property
    def buffer(self) -> int:
        """Address of the ``ggml_backend_buffer`` holding the data (0: context memory/none)."""
        return int(ffi.cast(_UINTPTR, self._base_ptr().buffer))

    def _base_ptr(self) -> Any:
        p = self.ptr
        return p.view_src if p.view_src != ffi.NULL else p

    def _memory_owner(self) -> tuple[Any, bool]:
        """(object keeping the data alive, data is host memory)."""
        p = self.ptr
        if p.data == ffi.NULL:
            if self.nbytes == 0:
                return None, True
            raise GGMLError(f"tensor {self.name!r} has no data: allocate its context or a buffer first")
        base = self._base_ptr()
        if base.buffer == ffi.NULL:
            base_tensor = wrap(base)
            if base_tensor is None:
                raise GGMLError(f"tensor {self.name!r} views memory pyggml does not track")
            return base_tensor._ctx, True
        owner = BUFFERS.get(int(ffi.cast(_UINTPTR, base.buffer)))
        if owner is None:
            raise GGMLError(f"tensor {self.name!r} lies in a buffer that was freed or reallocated")
        return owner, bool(ggml().ggml_backend_buffer_is_host(base.buffer)) and owner.zero_copy

    def _numpy_layout(self) -> tuple[tuple[int, ...], tuple[int, ...], np.dtype]:
        """numpy shape, strides and dtype of the data (numpy order: ne/nb reversed)."""
        t = int(self.ptr.type)
        n = self.ndim
        ne, nb = self.ne, self.nb
        dtype = types.numpy_dtype(t)
        if dtype is not None:
            return tuple(reversed(ne[:n])), tuple(reversed(nb[:n])), dtype
        # quantized: one uint8 row of whole blocks per ne[0] elements
        if nb[0] != types.type_size(t):
            raise GGMLError(f"{types.type_name(t)} tensor {self.name!r} has permuted blocks; "
                            "make it contiguous first")
        row = types.row_size(t, ne[0])
        return tuple(reversed(ne[1:n])) + (row,), tuple(reversed(nb[1:n])) + (1,), np.dtype(np.uint8)

    def numpy(self, *, copy: bool | None = None) -> np.ndarray:
        """The data as a numpy array in numpy order (shape = reversed ``shape``).

        Host memory gives a writable view without copying (``copy=None`` or ``False``); the view
        keeps the memory alive.  Memory a view cannot reach (a device buffer, a graph allocator's
        buffer) is copied out (``copy=False`` raises GGMLError there).  F32/F16/F64/I8-I64
        have their numpy dtype, BF16 shows its raw bits as uint16, block types are uint8 rows.
        """
        shape, strides, dtype = self._numpy_layout()
        owner, host = self._memory_owner()
        if owner is None:  # empty tensor, no memory
            return np.empty(shape, dtype)
        if host:
            interface = {
                "version": 3,
                "shape": shape,
                "strides": strides,
                "typestr": dtype.str,
                "data": (self.data, False),
            }
            view = np.asarray(NumpyHolder(interface, owner))
            return view.copy() if copy else view
        if copy is False:
            raise GGMLError(f"tensor {self.name!r} is not in host memory pyggml controls; "
                            "numpy(copy=False) cannot view it")
        if not self.is_contiguous:
            raise GGMLError(f"tensor {self.name!r} outside host memory must be contiguous to copy it")
        out = np.empty(self.nbytes, np.uint8)
        ggml().ggml_backend_tensor_get(self.ptr, ffi.from_buffer(out), 0, out.nbytes)
        return out.view(dtype).reshape(shape)

    def set(self, array: Any) -> Tensor:
        """Copy ``array`` (numpy order, cast to the tensor's dtype) into the data.

        The array's shape, padded with leading 1s, must match ``ne`` reversed; block types take
        uint8 rows as ``numpy()`` shows them.
        """
        shape, _, dtype = self._numpy_layout()
        arr = np.asarray(array)
        if arr.ndim > 4 or _pad4(arr.shape) != _pad4(shape):
            raise GGMLError(f"array of shape {arr.shape} does not fit tensor {self.name!r} "
                            f"(numpy shape {shape}, ggml ne {self.ne})")
        if types.numpy_dtype(int(self.ptr.type)) is None and arr.dtype != np.uint8:
            raise GGMLError(f"{types.type_name(self.ptr.type)} data is set from uint8 block rows, "
                            f"got {arr.dtype}")
        try:
            arr = arr.astype(dtype, casting="same_kind", copy=False).reshape(shape)
        except TypeError as exc:
            raise GGMLError(f"cannot store {arr.dtype} values in a {types.type_name(self.ptr.type)} "
                            f"tensor: {exc}") from None
        owner, host = self._memory_owner()
        if owner is None:
            return self
        if host:
            np.copyto(self.numpy(copy=False), arr)
            return self
        if not self.is_contiguous:
            raise GGMLError(f"tensor {self.name!r} outside host memory must be contiguous to set it")
        src = np.ascontiguousarray(arr)
        ggml().ggml_backend_tensor_set(self.ptr, ffi.from_buffer(src), 0, src.nbytes)
        return self

    def get_bytes(self, offset: int = 0, size: int | None = None) -> bytes:
        """``size`` raw bytes of the data from ``offset`` (ggml_backend_tensor_get semantics)."""
        offset, size = self._byte_range(offset, size)
        owner, host = self._memory_owner()
        if owner is None or size == 0:
            return b""
        if self._base_ptr().buffer == ffi.NULL:  # context memory: no backend to ask
            return bytes(ffi.buffer(ffi.cast("char *", self.ptr.data) + offset, size))
        out = bytearray(size)
        ggml().ggml_backend_tensor_get(self.ptr, ffi.from_buffer(out), offset, size)
        return bytes(out)

    def set_bytes(self, data: bytes | bytearray | memoryview | np.ndarray, offset: int = 0) -> Tensor:
        """Write raw bytes at ``offset`` into the data (ggml_backend_tensor_set semantics)."""
        raw = memoryview(data).cast("B")
        offset, size = self._byte_range(offset, raw.nbytes)
        owner, _ = self._memory_owner()
        if owner is None or size == 0:
            return self
        if self._base_ptr().buffer == ffi.NULL:
            ffi.memmove(ffi.cast("char *", self.ptr.data) + offset, raw, size)
        else:
            ggml().ggml_backend_tensor_set(self.ptr, ffi.from_buffer(raw), offset, size)
        return self

    def _byte_range(self, offset: int, size: int | None) -> tuple[int, int]:
        nbytes = self.nbytes
        if size is None:
            size = nbytes - offset
        # ggml-backend.cpp ggml_backend_tensor_set/get: offset + size <= ggml_nbytes
        if offset < 0 or size < 0 or offset + size > nbytes:
            raise GGMLError(f"byte range [{offset}, {offset + size}) outside tensor {self.name!r} "
                            f"of {nbytes} bytes")
        return offset, size


def wrap(ptr: Any) -> Tensor | None:
    """The Tensor for a ``struct ggml_tensor *`` created through pyggml (None for NULL)."""
    if ptr == ffi.NULL:
        return None
    found = TENSORS.get(int(ffi.cast(_UINTPTR, ptr)))
    if found is None or found._ctx.closed:
        raise GGMLError("tensor pointer does not belong to a live pyggml context")
    return found


def _pad4(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) * (4 - len(shape)) + tuple(shape)
