"""The parsed form of a GGUF file (what ggml/src/gguf.cpp's gguf_context holds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gguf import GGMLQuantizationType, GGUFValueType


@dataclass(frozen=True)
class KV:
    key: bytes                      # raw key bytes (may hold NULs; the C API sees up to the first)
    type: GGUFValueType             # ARRAY for arrays
    # Scalars: int, bool, bytes (STRING), np.float32 / np.float64 (FLOAT32/FLOAT64: numpy
    # scalars keep the exact bit pattern, NaN payloads included).
    # Arrays: list[bytes] for STRING, else a 1-D numpy array (bool for BOOL) of the element type.
    value: Any
    arr_type: GGUFValueType | None = None


@dataclass(frozen=True)
class TensorInfo:
    name: bytes
    type: GGMLQuantizationType | int  # an int for a type the installed gguf package does not name
    ne: tuple[int, int, int, int]   # ggml order: ne[0] is the fastest-varying dimension
    offset: int                     # relative to data_offset
    size: int                       # bytes (ggml_nbytes)


@dataclass
class GGUFFile:
    version: int
    alignment: int
    data_offset: int                # absolute, padded to alignment iff there are tensors
    kv: list[KV] = field(default_factory=list)
    tensors: list[TensorInfo] = field(default_factory=list)
    data_size: int = 0              # bytes of the data section (each tensor padded to alignment)
    data: memoryview | None = None  # the data section, when parsed with ``with_data=True``

    def find_key(self, key: bytes | str) -> int:
        """Index of ``key`` or -1, compared as C strings like gguf_find_key (first match wins)."""
        if isinstance(key, str):
            key = key.encode()
        key = key.split(b"\0", 1)[0]
        for i, kv in enumerate(self.kv):
            if kv.key.split(b"\0", 1)[0] == key:
                return i
        return -1
