"""The parsed form of a GGUF file (what ggml/src/gguf.cpp's gguf_context holds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gguf import GGMLQuantizationType, GGUFValueType


@dataclass(frozen=True)
class KV:
    key: bytes                      # raw key bytes
    type: GGUFValueType
    value: Any                      # int | float | bool | bytes | list (arrays)
    arr_type: GGUFValueType | None = None


@dataclass(frozen=True)
class TensorInfo:
    name: bytes
    type: GGMLQuantizationType
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
