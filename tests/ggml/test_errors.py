"""Input ggml would abort on raises GGMLError in Python first."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pyggml.errors import GGMLError
from pyggml.ggml import Backend, BufferType, Context, GGMLType, Graph, TensorAllocator


@pytest.fixture
def ctx():
    with Context(4 << 20) as c:
        yield c


def t(ctx: Context, *ne: int, type_: int = GGMLType.F32):
    return ctx.new_tensor(type_, ne)


CASES = {
    "add_broadcast": lambda c: c.add(t(c, 4, 3), t(c, 3)),
    "mul_types": lambda c: c.mul(t(c, 4, type_=GGMLType.I32), t(c, 4, type_=GGMLType.I32)),
    "mul_mat_k": lambda c: c.mul_mat(t(c, 4, 3), t(c, 5, 2)),
    "mul_mat_bcast": lambda c: c.mul_mat(t(c, 4, 3, 2), t(c, 4, 2, 3)),
    "mul_mat_transposed": lambda c: c.mul_mat(c.transpose(t(c, 4, 4)), t(c, 4, 2)),
    "mul_mat_zero": lambda c: c.mul_mat(t(c, 4, 3, 0), t(c, 4, 2, 2)),
    "get_rows_ids": lambda c: c.get_rows(t(c, 4, 3), t(c, 2)),
    "get_rows_dims": lambda c: c.get_rows(t(c, 4, 3, 2), t(c, 2, 3, type_=GGMLType.I32)),
    "set_rows_count": lambda c: c.set_rows(t(c, 4, 6), t(c, 4, 2), t(c, 3, type_=GGMLType.I32)),
    "rms_norm_f16": lambda c: c.rms_norm(t(c, 4, type_=GGMLType.F16), 1e-5),
    "rms_norm_eps": lambda c: c.rms_norm(t(c, 4), -1.0),
    "soft_max_mask": lambda c: c.soft_max_ext(t(c, 4, 3), t(c, 5, 3)),
    "soft_max_bias": lambda c: c.soft_max_ext(t(c, 4, 3), None, 1.0, 8.0),
    "rope_pos_type": lambda c: c.rope_ext(t(c, 8, 2, 3), t(c, 3), n_dims=8),
    "rope_pos_count": lambda c: c.rope_ext(t(c, 8, 2, 3), t(c, 2, type_=GGMLType.I32), n_dims=8),
    "rope_n_dims": lambda c: c.rope_ext(t(c, 8, 2, 3), t(c, 3, type_=GGMLType.I32), n_dims=10),
    "rope_mode": lambda c: c.rope_ext(t(c, 8, 2, 3), t(c, 3, type_=GGMLType.I32), n_dims=8, mode=1),
    "fa_head_dim": lambda c: c.flash_attn_ext(t(c, 8, 2, 2), t(c, 4, 3, 2, type_=GGMLType.F16),
                                              t(c, 4, 3, 2, type_=GGMLType.F16), scale=1.0),
    "fa_mask_type": lambda c: c.flash_attn_ext(t(c, 8, 2, 2), t(c, 8, 3, 2, type_=GGMLType.F16),
                                               t(c, 8, 3, 2, type_=GGMLType.F16), t(c, 3, 2), scale=1.0),
    "cpy_count": lambda c: c.cpy(t(c, 4), t(c, 5)),
    "cpy_types": lambda c: c.cpy(t(c, 4, type_=GGMLType.I32), t(c, 4, type_=GGMLType.F16)),
    "reshape_count": lambda c: c.reshape(t(c, 4, 3), (5, 2)),
    "reshape_noncontig": lambda c: c.reshape(c.transpose(t(c, 4, 3)), (12,)),
    "view_range": lambda c: c.view(t(c, 4, 3), (4,), offset=40),
    "view_strides": lambda c: c.view(t(c, 4, 3), (4, 3), nb=(32,)),
    "view_nb_count": lambda c: c.view(t(c, 4, 3), (4, 3), nb=(16, 48)),
    "permute_dup": lambda c: c.permute(t(c, 4, 3), 0, 0, 2, 3),
    "permute_range": lambda c: c.permute(t(c, 4, 3), 0, 1, 2, 4),
    "concat_dim": lambda c: c.concat(t(c, 4), t(c, 4), 4),
    "concat_shape": lambda c: c.concat(t(c, 4, 3), t(c, 4, 2), 0),
    "swiglu_shape": lambda c: c.swiglu_split(t(c, 4, 3), t(c, 4, 2)),
    "silu_noncontig": lambda c: c.silu(c.transpose(t(c, 4, 3))),
    "scale_type": lambda c: c.scale(t(c, 4, type_=GGMLType.F16), 2.0),
    "not_a_tensor": lambda c: c.add(np.zeros(4), t(c, 4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_op_input_raises(ctx, name):
    with pytest.raises(GGMLError):
        CASES[name](ctx)


def test_ops_on_freed_context(ctx):
    a = t(ctx, 4)
    other = Context(1 << 16)
    b = other.new_tensor(GGMLType.F32, (4,))
    other.free()
    with pytest.raises(GGMLError, match="freed"):
        ctx.add(a, b)
    with pytest.raises(GGMLError, match="freed"):
        Graph(other)


def test_buffer_misuse():
    buf = BufferType.cpu().alloc_buffer(64)
    with pytest.raises(GGMLError, match="outside"):
        buf.set_bytes(60, b"12345678")
    meta = Context.for_tensors(3)
    small = meta.new_tensor(GGMLType.F32, (8,))
    big = meta.new_tensor(GGMLType.F32, (32,))
    with pytest.raises(GGMLError, match="outside"):
        buf.place(big, 0)
    talloc = TensorAllocator(buf)
    talloc.alloc(small)
    with pytest.raises(GGMLError, match="already has memory"):
        buf.place(small, 0)
    with pytest.raises(GGMLError, match="not enough space"):
        talloc.alloc(big)
    buf.free()
    with pytest.raises(GGMLError, match="freed"):
        buf.get_bytes(0, 4)
    with pytest.raises(GGMLError):
        Backend.cpu(0)


def test_buffer_bytes_and_placement():
    buf = Backend.cpu(1).alloc_buffer(256)
    buf.clear(0)
    meta = Context.for_tensors(2)
    a = meta.new_tensor(GGMLType.F32, (4,))
    buf.place(a, 64)
    assert a.data == buf.base + 64 and a.buffer != 0
    buf.set_bytes(64, np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(a.numpy(), [0, 1, 2, 3])
    a.set(np.full(4, 2.5))
    assert buf.get_bytes(64, 16) == np.full(4, 2.5, np.float32).tobytes()
    assert buf.numpy()[64:80].tobytes() == buf.get_bytes(64, 16)


ABORT_SCRIPT = textwrap.dedent("""
    import sys
    from pyggml._native import ffi, ggml
    from pyggml.errors import GGMLError
    from pyggml.ggml import Context, GGMLType
    ctx = Context(1 << 20)
    a = ctx.new_tensor(GGMLType.F32, (4, 3))
    b = ctx.new_tensor(GGMLType.F32, (5, 2))
    if sys.argv[1] == "python":
        try:
            ctx.mul_mat(a, b)
        except GGMLError as exc:
            print("raised:", exc)
            sys.exit(0)
        sys.exit(3)
    ggml().ggml_mul_mat(ctx.ptr, a.ptr, b.ptr)  # GGML_ASSERT(ggml_can_mul_mat(a, b)) aborts
    sys.exit(4)
""")


def test_abort_in_c_is_an_exception_in_python():
    def run(mode: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "GGML_NO_BACKTRACE": "1"}  # no gdb attach on abort
        return subprocess.run([sys.executable, "-c", ABORT_SCRIPT, mode], capture_output=True, text=True,
                              timeout=120, env=env)

    raw = run("c")
    assert raw.returncode not in (0, 4), raw  # the C call took the process down
    assert "GGML_ASSERT" in raw.stderr, raw.stderr
    py = run("python")
    assert py.returncode == 0, py.stderr
    assert py.stdout.startswith("raised: mul_mat"), (py.stdout, py.stderr)
