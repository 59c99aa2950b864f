"""Tensors through numpy: dtypes, shapes (ne order), zero-copy views, lifetimes, struct layout."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from pyggml._native import ffi, ggml
from pyggml.errors import GGMLError
from pyggml.ggml import Context, GGMLType, Tensor
from pyggml.ggml.types import row_size, type_name

RNG = np.random.default_rng(1234)


def _sample(dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return RNG.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


@pytest.fixture
def ctx():
    with Context(8 << 20) as c:
        yield c


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int8, np.int16, np.int32, np.int64])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2), (1, 6)])
def test_round_trip(ctx, dtype, shape):
    arr = _sample(dtype, shape)
    t = ctx.from_numpy(arr)
    assert t.ne == tuple(reversed(shape)) + (1,) * (4 - len(shape))  # ne is numpy's shape reversed
    assert t.shape == tuple(reversed(shape))
    back = t.numpy()
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert t.get_bytes() == arr.tobytes()


def test_strides_match_nb(ctx):
    t = ctx.new_tensor(GGMLType.F32, (5, 4, 3))
    assert t.nb == (4, 20, 80, 240)
    assert t.numpy().strides == (80, 20, 4)


def test_view_is_zero_copy(ctx):
    t = ctx.from_numpy(np.zeros((2, 3), np.float32))
    view = t.numpy()
    view[1, 2] = 7.5
    assert t.get_bytes(offset=5 * 4, size=4) == np.float32(7.5).tobytes()
    assert view.ctypes.data == t.data
    t.set(np.ones((2, 3)))
    assert view.sum() == 6


def test_f16_from_float32_and_bf16_bits(ctx):
    x = np.array([1.0, -2.5, 3.14159, 65504.0], np.float32)
    h = ctx.from_numpy(x, GGMLType.F16)
    np.testing.assert_array_equal(h.numpy(), x.astype(np.float16))
    b = ctx.from_numpy(x, GGMLType.BF16)
    out = np.empty(4, np.float32)
    lib = ggml()
    lib.ggml_bf16_to_fp32_row(ffi.cast("ggml_bf16_t *", b.data), ffi.cast("float *", ffi.from_buffer(out)), 4)
    # our rounding matches ggml's fp32 -> bf16 conversion of the same values
    ref = np.empty(4, np.uint16)
    lib.ggml_fp32_to_bf16_row(ffi.cast("float *", ffi.from_buffer(x)),
                              ffi.cast("ggml_bf16_t *", ffi.from_buffer(ref)), 4)
    np.testing.assert_array_equal(b.numpy(), ref)
    np.testing.assert_allclose(out, x, rtol=1e-2)


def test_quantized_rows_are_raw_bytes(ctx):
    rows = 3
    per_row = row_size(GGMLType.Q8_0, 64)
    raw = RNG.integers(0, 255, size=(rows, per_row), dtype=np.uint8)
    t = ctx.from_numpy(raw, GGMLType.Q8_0)
    assert t.ne == (64, rows, 1, 1) and type_name(t.type) == "q8_0"
    np.testing.assert_array_equal(t.numpy(), raw)
    with pytest.raises(GGMLError, match="uint8"):
        ctx.from_numpy(np.zeros((2, 34), np.float32), GGMLType.Q8_0)
    with pytest.raises(GGMLError, match="block"):
        ctx.new_tensor(GGMLType.Q4_0, (33,))


def test_layout_matches_library(ctx):
    lib = ggml()
    t = ctx.new_tensor(GGMLType.F16, (6, 5, 4, 3), name="probe_layout")
    assert int(ffi.cast("uintptr_t", lib.ggml_get_data(t.ptr))) == t.data
    assert ffi.string(lib.ggml_get_name(t.ptr)) == b"probe_layout"
    assert lib.ggml_nbytes(t.ptr) == 6 * 5 * 4 * 3 * 2 == t.nbytes
    assert lib.ggml_n_dims(t.ptr) == 4
    assert ffi.sizeof("struct ggml_tensor") + 32 == lib.ggml_tensor_overhead()


def test_names_and_flags(ctx):
    t = ctx.new_tensor(GGMLType.F32, (2,), name="x")
    assert t.name == "x"
    t.name = "y" * 100  # ggml_set_name keeps GGML_MAX_NAME - 1 bytes
    assert t.name == "y" * 63
    assert t.set_input().flags & 1 and t.set_output().flags & 2


def test_set_rejects_wrong_shape_and_kind(ctx):
    t = ctx.new_tensor(GGMLType.I32, (4, 2))
    with pytest.raises(GGMLError, match="shape"):
        t.set(np.zeros((4, 2), np.int32))
    with pytest.raises(GGMLError, match="cannot store"):
        t.set(np.zeros((2, 4), np.float32))
    t.set(np.arange(8, dtype=np.int16).reshape(1, 2, 4))  # leading 1s and safe casts are fine
    assert t.numpy().tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_byte_ranges_checked(ctx):
    t = ctx.new_tensor(GGMLType.F32, (4,))
    with pytest.raises(GGMLError, match="outside"):
        t.set_bytes(b"\0" * 8, offset=12)
    with pytest.raises(GGMLError, match="outside"):
        t.get_bytes(offset=-1, size=2)


def test_freed_context_raises_and_views_survive():
    ctx = Context(1 << 16)
    t = ctx.from_numpy(np.arange(4, dtype=np.float32))
    view = t.numpy()
    ctx.free()
    with pytest.raises(GGMLError, match="freed"):
        t.numpy()
    with pytest.raises(GGMLError, match="freed"):
        ctx.new_tensor(GGMLType.F32, (2,))
    del ctx, t
    gc.collect()
    assert view.tolist() == [0, 1, 2, 3]  # the view kept the context's memory


def test_context_out_of_memory_raises():
    with Context(4096) as small:
        with pytest.raises(GGMLError, match="out of memory"):
            small.new_tensor(GGMLType.F32, (4096,))
        meta = Context.for_tensors(2)
        meta.new_tensor(GGMLType.F32, (1 << 20,))  # no_alloc: only the struct
        meta.new_tensor(GGMLType.F32, (1 << 20,))
        with pytest.raises(GGMLError, match="out of memory"):
            meta.new_tensor(GGMLType.F32, (1,))


@pytest.mark.parametrize("shape", [(), (1, 2, 3, 4, 5), (-1,), (2**62, 4), (1.5,)])
def test_bad_shapes(ctx, shape):
    with pytest.raises(GGMLError):
        ctx.new_tensor(GGMLType.F32, shape)


@pytest.mark.parametrize("bad", [4, 31, 43, -1, "f32", True])
def test_bad_types(ctx, bad):
    with pytest.raises(GGMLError):
        ctx.new_tensor(bad, (4,))


def test_unallocated_tensor_has_no_data():
    meta = Context.for_tensors(4)
    t = meta.new_tensor(GGMLType.F32, (4,))
    assert isinstance(t, Tensor) and t.data == 0
    with pytest.raises(GGMLError, match="no data"):
        t.numpy()
    with pytest.raises(GGMLError, match="no_alloc"):
        meta.from_numpy(np.zeros(2, np.float32))


def test_copies_and_bytes_of_views(ctx):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = ctx.from_numpy(a)
    copy = t.numpy(copy=True)
    copy[0, 0] = 99
    assert t.numpy()[0, 0] == 0
    row = ctx.view(t, (4,), offset=t.nb[1])
    assert row.get_bytes() == a[1].tobytes()
    row.set_bytes(np.full(4, 5, np.float32))
    assert t.numpy()[1].tolist() == [5, 5, 5, 5]
    tr = ctx.transpose(t)
    np.testing.assert_array_equal(tr.numpy(copy=True), t.numpy().T)


def test_huge_context_is_a_memory_error():
    with pytest.raises(MemoryError):
        Context(1 << 56)  # ggml_init would GGML_ASSERT on its failed malloc


def test_every_declared_function_resolves():
    import re

    from pyggml import _native

    names = set(re.findall(r"\b(ggml_\w+)\s*\(", _native.GGML_CDEF))
    assert len(names) > 200
    lib = ggml()
    missing = [n for n in sorted(names) if not callable(getattr(lib, n, None))]
    assert not missing, missing
