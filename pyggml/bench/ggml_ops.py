"""Bench: the checked pyggml.ggml layer against the same ggml calls made raw through cffi.

Both sides run the same C library, so the ratio is the cost of pyggml's Python checks and
wrappers (what a graph builder pays per decode step), not of the kernels.
"""

from __future__ import annotations

import numpy as np

from . import Pair

N_EMBD, N_TOK = 64, 8


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((N_TOK, N_EMBD)).astype(np.float32),
            rng.standard_normal((N_EMBD, N_EMBD)).astype(np.float32))


def _graph() -> Pair:
    """Build and compute x -> mul_mat -> rms_norm -> silu -> soft_max in a fresh context."""
    from .._native import ffi, ggml
    from ..ggml import Backend, Context, Graph

    lib = ggml()
    x, w = _inputs()
    backend = Backend.cpu(1)

    def ours() -> float:
        with Context(1 << 20) as ctx:
            tw, tx = ctx.from_numpy(w), ctx.from_numpy(x)
            out = ctx.soft_max(ctx.silu(ctx.rms_norm(ctx.mul_mat(tw, tx), 1e-5)))
            g = Graph(ctx, 16).build_forward_expand(out)
            backend.compute(g)
            return float(out.numpy()[0, 0])

    raw_backend = lib.ggml_backend_cpu_init()
    lib.ggml_backend_cpu_set_n_threads(raw_backend, 1)
    params = ffi.new("struct ggml_init_params *", {"mem_size": 1 << 20, "no_alloc": False})

    def reference() -> float:
        ctx = lib.ggml_init(params[0])
        tw = lib.ggml_new_tensor_2d(ctx, 0, N_EMBD, N_EMBD)
        tx = lib.ggml_new_tensor_2d(ctx, 0, N_EMBD, N_TOK)
        ffi.memmove(tw.data, w, w.nbytes)
        ffi.memmove(tx.data, x, x.nbytes)
        cur = lib.ggml_rms_norm(ctx, lib.ggml_mul_mat(ctx, tw, tx), 1e-5)
        out = lib.ggml_soft_max(ctx, lib.ggml_silu(ctx, cur))
        g = lib.ggml_new_graph_custom(ctx, 16, False)
        lib.ggml_build_forward_expand(g, out)
        lib.ggml_backend_graph_compute(raw_backend, g)
        first = ffi.cast("float *", out.data)[0]
        lib.ggml_free(ctx)
        return first

    return Pair(ours=ours, reference=reference, note=f"{N_EMBD}x{N_EMBD} weights, {N_TOK} tokens, 4 ops")


def _roundtrip() -> Pair:
    """Copy 1 MiB of floats into a tensor and read them back as numpy."""
    from .._native import ffi, ggml
    from ..ggml import Context, GGMLType

    lib = ggml()
    data = np.arange(1 << 18, dtype=np.float32)
    ctx = Context(4 << 20)
    t = ctx.new_tensor(GGMLType.F32, (data.size,))
    raw = lib.ggml_new_tensor_1d(ctx.ptr, 0, data.size)
    out = np.empty_like(data)

    def ours() -> float:
        t.set(data)
        return float(t.numpy()[-1])

    def reference() -> float:
        ffi.memmove(raw.data, data, data.nbytes)
        ffi.memmove(out, ffi.buffer(raw.data, data.nbytes), data.nbytes)
        return float(out[-1])

    return Pair(ours=ours, reference=reference, note="262144 f32 in, view out (ours) / copy out (raw)")


CASES = {
    "ggml_graph_build_compute": _graph,
    "ggml_numpy_roundtrip": _roundtrip,
}
