"""ggml tensor types: the ``gguf.GGMLQuantizationType`` enum plus the facts ggml knows about each.

Block and byte sizes come from the library (``ggml_blck_size``/``ggml_type_size``), never from a
retyped table, so a type the installed ``gguf`` package does not name yet still works as an int.
"""

from __future__ import annotations

import functools

import numpy as np
from gguf import GGMLQuantizationType

from pyggml._native import ffi, ggml
from pyggml.errors import GGMLError

GGMLType = GGMLQuantizationType

# numpy element type of each non-block type; BF16 has no numpy dtype and shows its raw bits.
_NUMPY_DTYPES: dict[int, np.dtype] = {
    GGMLType.F32: np.dtype(np.float32),
    GGMLType.F16: np.dtype(np.float16),
    GGMLType.BF16: np.dtype(np.uint16),
    GGMLType.F64: np.dtype(np.float64),
    GGMLType.I8: np.dtype(np.int8),
    GGMLType.I16: np.dtype(np.int16),
    GGMLType.I32: np.dtype(np.int32),
    GGMLType.I64: np.dtype(np.int64),
}
_FROM_NUMPY: dict[np.dtype, GGMLType] = {
    np.dtype(np.float32): GGMLType.F32,
    np.dtype(np.float16): GGMLType.F16,
    np.dtype(np.float64): GGMLType.F64,
    np.dtype(np.int8): GGMLType.I8,
    np.dtype(np.int16): GGMLType.I16,
    np.dtype(np.int32): GGMLType.I32,
    np.dtype(np.int64): GGMLType.I64,
}


@functools.cache
def _all_facts() -> dict[int, tuple[int, int, str]]:
    # ggml.c type_traits: removed ids (4, 5, 31-33, 36-38) have blck_size 0
    lib = ggml()
    out = {}
    for value in range(lib.GGML_TYPE_COUNT):
        blck = int(lib.ggml_blck_size(value))
        if blck > 0:
            name = ffi.string(lib.ggml_type_name(value)).decode()
            out[value] = (blck, int(lib.ggml_type_size(value)), name)
    return out


FACTS = _all_facts  # type id -> (block size, block bytes, name), ids ggml implements


def _type_facts(value: int) -> tuple[int, int, str] | None:
    return _all_facts().get(value)


def check_type(value: int | GGMLType) -> int:
    """The type id as an int, or GGMLError for an id ggml does not implement.

    ``ggml_new_tensor_impl`` asserts ``type < GGML_TYPE_COUNT``; a removed id would divide by a
    zero block size in ``ggml_row_size``.
    """
    if value.__class__ is not bool and isinstance(value, int | np.integer) and int(value) in _all_facts():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise GGMLError(f"ggml type must be a GGMLQuantizationType or int, got {value!r}")
    raise GGMLError(f"{int(value)} is not a ggml type")


def as_type(value: int) -> GGMLType | int:
    """The enum member for ``value`` when the installed gguf package names it, else the int."""
    try:
        return GGMLType(value)
    except ValueError:
        return value


def blck_size(type_: int) -> int:
    """Elements per block (1 for F32/F16/I*, 32 for Q4_0, 256 for K-quants...)."""
    return _type_facts(check_type(type_))[0]


def type_size(type_: int) -> int:
    """Bytes per block."""
    return _type_facts(check_type(type_))[1]


def type_name(type_: int) -> str:
    """ggml's name of the type (``f32``, ``q4_0``...)."""
    return _type_facts(check_type(type_))[2]


def is_quantized(type_: int) -> bool:
    """True for block types (those without a numpy element dtype)."""
    return check_type(type_) not in _NUMPY_DTYPES


def row_size(type_: int, ne0: int) -> int:
    """Bytes of one row of ``ne0`` elements; GGMLError when ne0 is not a whole number of blocks."""
    blck, size, name = _type_facts(check_type(type_))
    if ne0 % blck:
        raise GGMLError(f"row of {ne0} elements is not a multiple of the {name} block size {blck}")
    return size * ne0 // blck


def numpy_dtype(type_: int) -> np.dtype | None:
    """numpy dtype of one element, or None for block (quantized) types."""
    return _NUMPY_DTYPES.get(check_type(type_))


def from_numpy_dtype(dtype: np.dtype) -> GGMLType:
    """The ggml type that stores ``dtype`` elements as they are."""
    try:
        return _FROM_NUMPY[np.dtype(dtype)]
    except KeyError:
        raise GGMLError(f"no ggml type holds numpy {np.dtype(dtype)} elements "
                        f"(supported: {', '.join(str(d) for d in _FROM_NUMPY)})") from None
