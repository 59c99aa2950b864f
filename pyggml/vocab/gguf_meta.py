"""The GGUF metadata the vocabulary needs (key -> value), nothing else.

Files are read with ``pyggml.model.gguf`` (``read_metadata``); ``metadata_from_gguffile``
adapts its ``GGUFFile`` (``.kv`` list of ``KV(key, type, value, arr_type)``).  ``parse_metadata``
is a small stand-alone reader of the header and key/value section (v2/v3, little endian) for
raw buffers.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

# ggml/include/gguf.h gguf_type
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)

_SCALAR = {
    UINT8: "<u1",
    INT8: "<i1",
    UINT16: "<u2",
    INT16: "<i2",
    UINT32: "<u4",
    INT32: "<i4",
    FLOAT32: "<f4",
    BOOL: "<u1",
    UINT64: "<u8",
    INT64: "<i8",
    FLOAT64: "<f8",
}


@dataclass
class Value:
    """One metadata value: ``type`` (gguf_type), ``arr_type`` for arrays, and the value
    (bytes for strings, list[bytes] for string arrays, numpy arrays for numeric arrays)."""

    type: int
    value: Any
    arr_type: int | None = None


class _Reader:
    def __init__(self, data: bytes | memoryview) -> None:
        self.d = memoryview(data)
        self.o = 0

    def take(self, n: int) -> memoryview:
        if self.o + n > len(self.d):
            raise ValueError("truncated GGUF metadata")
        v = self.d[self.o : self.o + n]
        self.o += n
        return v

    def u32(self) -> int:
        return struct.unpack_from("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack_from("<Q", self.take(8))[0]

    def string(self, wide: bool) -> bytes:
        n = self.u64() if wide else self.u32()
        return bytes(self.take(n))

    def strings(self, n: int, wide: bool) -> list[bytes]:
        d = self.d
        o = self.o
        size = len(d)
        fmt = struct.Struct("<Q" if wide else "<I")
        hdr = fmt.size
        unpack = fmt.unpack_from
        out: list[bytes] = []
        append = out.append
        for _ in range(n):
            (k,) = unpack(d, o)
            o += hdr
            if o + k > size:
                raise ValueError("truncated GGUF metadata")
            append(d[o : o + k].tobytes())
            o += k
        self.o = o
        return out

    def value(self, t: int, wide: bool) -> Value:
        if t == STRING:
            return Value(t, self.string(wide))
        if t == ARRAY:
            at = self.u32()
            n = self.u64() if wide else self.u32()
            if at == STRING:
                return Value(t, self.strings(n, wide), at)
            if at in _SCALAR:
                dt = np.dtype(_SCALAR[at])
                arr = np.frombuffer(self.take(n * dt.itemsize), dtype=dt).copy()
                return Value(t, arr, at)
            raise ValueError(f"unsupported GGUF array type {at}")
        if t in _SCALAR:
            dt = np.dtype(_SCALAR[t])
            v = np.frombuffer(self.take(dt.itemsize), dtype=dt)[0].item()
            return Value(t, bool(v) if t == BOOL else v)
        raise ValueError(f"unsupported GGUF value type {t}")


def parse_metadata(data: bytes | memoryview) -> dict[str, Value]:
    r = _Reader(data)
    if bytes(r.take(4)) != b"GGUF":
        raise ValueError("not a GGUF file (bad magic)")
    version = r.u32()
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}")
    wide = True
    r.u64()  # n_tensors
    n_kv = r.u64()
    out: dict[str, Value] = {}
    for _ in range(n_kv):
        key = r.string(wide).decode("utf-8", "surrogateescape")
        t = r.u32()
        out[key] = r.value(t, wide)
    return out


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Value]:
    """Metadata of a GGUF file, through ``pyggml.model.gguf.parse_file`` (the project's
    parser, with the reference's validation)."""
    from ..model import gguf

    return metadata_from_gguffile(gguf.parse_file(path))


def metadata_from_gguffile(g: Any) -> dict[str, Value]:
    """Adapter for ``pyggml.model.gguf.GGUFFile`` (duck-typed so this module does not import it)."""
    out: dict[str, Value] = {}
    for kv in g.kv:
        key = kv.key.decode("utf-8", "surrogateescape") if isinstance(kv.key, bytes) else kv.key
        key = key.split("\0", 1)[0]  # gguf_find_key compares C strings: the first match wins
        if key in out:
            continue
        val = kv.value
        if kv.type == ARRAY and kv.arr_type == STRING:
            if not (type(val) is list and set(map(type, val)) <= {bytes}):
                val = [v if isinstance(v, bytes) else str(v).encode() for v in val]
        elif kv.type == ARRAY:
            val = np.asarray(val)
        elif kv.type == STRING and not isinstance(val, bytes):
            val = str(val).encode()
        out[key] = Value(kv.type, val, kv.arr_type)
    return out
