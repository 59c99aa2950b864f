"""Where the weights live after a load: the mapped files, or a host buffer read from them.

llama.cpp: src/llama-model-loader.cpp ``load_all_data`` (mmap: the backend buffer aliases the
mapping; otherwise host tensors are read from the file in place) and ``ggml_validate_row_data``
(ggml/src/ggml-quants.c) for ``check_tensors``.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES
from gguf import GGMLQuantizationType as QT


@dataclass(frozen=True)
class Weight:
    """One tensor of the model: its file and absolute byte offset (llama_tensor_weight)."""

    name: str
    type: QT
    ne: tuple[int, int, int, int]   # ggml order
    file: int                       # split index
    offset: int                     # absolute, in that file
    nbytes: int


class WeightBuffers:
    """The weights as ggml tensors, their data in backend buffers placed as the reference places them.

    Weights of the CPU buffer type: with ``use_mmap`` one buffer per file over its read-only
    mapping (ggml_backend_cpu_buffer_from_ptr), each tensor at its file offset, as the reference
    aliases the mapping; otherwise one allocated buffer (ggml_backend_alloc_ctx_tensors) that
    ``read_into`` fills from the files.  Weights of an extra buffer type (``extra``: CPU_REPACK,
    AMX, ...) get one context and buffer per type and are written with ggml_backend_tensor_set,
    which converts them to that type's layout (llama_model_loader::load_all_data).  ``dups`` are
    the second copies the reference makes of a TENSOR_DUPLICATED weight (the tied output) when it
    lands in another buffer type than the original (``self.dups``, by name).
    A mapping lives as long as its buffer, so numpy views of the weights never outlive their memory."""

    def __init__(self, weights: list[Weight], paths: list[str], *, use_mmap: bool,
                 extra: dict[str, Any] | None = None, dups: list[tuple[Weight, Any]] | None = None) -> None:
        from ..ggml import BufferType, Context, alloc_ctx_tensors

        extra = extra or {}
        dups = dups or []
        plain = [w for w in weights if w.name not in extra]
        self.ctx = Context.for_tensors(max(len(plain), 1))
        self.tensors = {w.name: self.ctx.new_tensor(w.type, _trim(w.ne), name=w.name) for w in plain}
        self.dups: dict[str, Any] = {}
        self.buffers: list[Any] = []
        self._where: dict[str, tuple[np.ndarray, int]] = {}   # name -> (buffer bytes, offset)
        self.maps: dict[int, np.ndarray] = {}   # file index -> its mapping (use_mmap)
        if use_mmap:
            used = sorted({w.file for w in weights} | {w.file for w, _ in dups})
            views = {i: self._map(paths[i]) for i in used}
            self.maps = {i: arr for i, (_, arr) in views.items()}
            for w in plain:
                buf, arr = views[w.file]
                buf.place(self.tensors[w.name], w.offset)
                self._where[w.name] = (arr, w.offset)
        elif plain:
            buf = alloc_ctx_tensors(self.ctx, BufferType.cpu())
            if buf is not None:
                self.buffers.append(buf)
                arr = buf.numpy()
                for w in plain:
                    self._where[w.name] = (arr, self.tensors[w.name].data - buf.base)
        # extra buffer types: one context + buffer per type, filled by the loader (set_from)
        self.pending: list[tuple[Weight, Any]] = []
        groups: dict[Any, list[tuple[Weight, bool]]] = {}
        for w in weights:
            if w.name in extra:
                groups.setdefault(extra[w.name], []).append((w, False))
        for w, bt in dups:
            groups.setdefault(bt, []).append((w, True))
        for bt, items in groups.items():
            gctx = Context.for_tensors(len(items))
            made = [(w, is_dup, gctx.new_tensor(w.type, _trim(w.ne), name=w.name)) for w, is_dup in items]
            buf = alloc_ctx_tensors(gctx, BufferType(bt))
            self.buffers.append(buf)
            # a repacked layout is the backend's business (CPU_REPACK is not a host buffer)
            arr = buf.numpy() if buf.is_host else None
            for w, is_dup, t in made:
                (self.dups if is_dup else self.tensors)[w.name] = t
                if arr is not None and not is_dup:
                    self._where[w.name] = (arr, t.data - buf.base)
                self.pending.append((w, t))
        for b in self.buffers:
            b.set_usage(1)  # GGML_BACKEND_BUFFER_USAGE_WEIGHTS

    def _map(self, path: str) -> tuple[Any, np.ndarray]:
        from .._native import ffi, ggml
        from ..ggml import Buffer

        with open(path, "rb") as f:
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        arr = np.frombuffer(m, dtype=np.uint8)
        ptr = ggml().ggml_backend_cpu_buffer_from_ptr(ffi.cast("void *", arr.ctypes.data), arr.size)
        buf = Buffer(ptr)
        buf._mapping = (m, arr)  # the mapping lives as long as the buffer
        self.buffers.append(buf)
        return buf, arr

    def set_from(self, tensor: Any, src: np.ndarray) -> None:
        """ggml_backend_tensor_set: the backend converts the bytes to its own layout."""
        from .._native import ffi, ggml

        src = np.ascontiguousarray(src)
        ggml().ggml_backend_tensor_set(tensor.ptr, ffi.cast("void *", src.ctypes.data), 0, src.size)

    def view(self, name: str, nbytes: int) -> np.ndarray:
        """The tensor's bytes in its buffer (uint8, no copy); KeyError for a weight in a buffer
        type that is not host memory (CPU_REPACK keeps its own layout)."""
        if name not in self._where:
            raise KeyError(f"{name}: its buffer type is not host memory")
        arr, off = self._where[name]
        return arr[off:off + nbytes]

    def close(self) -> None:
        for b in self.buffers:
            b.free()
        self.buffers.clear()
        self._where.clear()
        self.tensors.clear()
        self.dups.clear()


def _trim(ne: tuple[int, ...]) -> tuple[int, ...]:
    n = len(ne)
    while n > 1 and ne[n - 1] == 1:
        n -= 1
    return tuple(ne[:n])


def read_into(dst: np.ndarray, f, offset: int) -> None:
    """file->seek + read_raw into a tensor's bytes; a short read is an error."""
    f.seek(offset)
    n = f.readinto(memoryview(dst))
    if n != dst.size:
        raise OSError(f"read error: unexpected end of file (read {n} of {dst.size} bytes)")


# ---- check_tensors: ggml_validate_row_data ----------------------------------------------
# Covered as the reference checks them: F32, F64, F16, BF16 (every value: no NaN, no inf);
# the f16 block scales (d, and m/dmin where the block has one) of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
# Q2_K..Q6_K, TQ1_0, TQ2_0, IQ1_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS; the
# f32 scale of Q8_K; I8..I64 need no check; Q8_1 is always invalid (the reference's default
# case).  Not checked here (accepted): IQ1_M, MXFP4, NVFP4 scales.

def _f16_bad(u16: np.ndarray) -> bool:
    return bool(np.any((u16 & 0x7C00) == 0x7C00))


# type -> byte offsets of the f16 scale fields within a block (ggml-common.h block_* layouts)
_BLOCK_F16_SCALES: dict[QT, tuple[int, ...]] = {
    QT.Q4_0: (0,), QT.Q4_1: (0, 2), QT.Q5_0: (0,), QT.Q5_1: (0, 2), QT.Q8_0: (0,),
    QT.Q2_K: (80, 82), QT.Q3_K: (108,), QT.Q4_K: (0, 2), QT.Q5_K: (0, 2), QT.Q6_K: (208,),
    QT.TQ1_0: (52,), QT.TQ2_0: (64,), QT.IQ1_S: (0,), QT.IQ2_XXS: (0,), QT.IQ2_XS: (0,),
    QT.IQ2_S: (0,), QT.IQ3_XXS: (0,), QT.IQ3_S: (0,), QT.IQ4_NL: (0,), QT.IQ4_XS: (0,),
}


def validate_row_data(qtype: QT, data: np.ndarray) -> bool:
    """False where ggml_validate_row_data rejects the bytes (NaN/inf values or block scales)."""
    _, type_size = GGML_QUANT_SIZES[qtype]
    if data.size % type_size:
        return False
    if qtype == QT.F32:
        return bool(np.isfinite(data.view(np.float32)).all())
    if qtype == QT.F64:
        return bool(np.isfinite(data.view(np.float64)).all())
    if qtype == QT.F16:
        return not _f16_bad(data.view(np.uint16))
    if qtype == QT.BF16:
        return not bool(np.any((data.view(np.uint16) & 0x7FFF) >= 0x7F80))
    if qtype == QT.Q8_K:
        d = np.ascontiguousarray(data.reshape(-1, type_size)[:, :4]).view(np.float32)  # block_q8_K.d
        return bool(np.isfinite(d).all())
    if qtype == QT.Q8_1:
        return False
    fields = _BLOCK_F16_SCALES.get(qtype)
    if fields is None:
        return True
    blocks = data.reshape(-1, type_size)
    return not any(_f16_bad(np.ascontiguousarray(blocks[:, o:o + 2]).view(np.uint16)) for o in fields)
