"""pyggml's Gallocr on real ggml graphs: the same placements as ggml's own gallocr, and the
same computed results on the CPU backend (bit for bit)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from pyggml.alloc.apply import Gallocr
from pyggml.ggml import Backend, BufferType, Context, GGMLType, Graph, GraphAllocator, alloc_ctx_tensors
from pyggml.ggml.tensor import Tensor

F32 = GGMLType.F32
RNG = np.random.default_rng(4)


@pytest.fixture(scope="module")
def cpu() -> Backend:
    return Backend.cpu(1)


@pytest.fixture(scope="module")
def weights(cpu: Backend) -> dict[str, Tensor]:
    wctx = Context.for_tensors(4)
    w = {"w1": wctx.new_tensor(F32, (16, 24), name="w1"), "w2": wctx.new_tensor(F32, (24, 16), name="w2"),
         "wn": wctx.new_tensor(F32, (16,), name="wn"), "b": wctx.new_tensor(F32, (24,), name="b")}
    buf = alloc_ctx_tensors(wctx, cpu)
    assert buf is not None
    for t in w.values():
        t.set(RNG.standard_normal(tuple(reversed(t.shape))).astype(np.float32))
    w["_ctx"] = wctx  # type: ignore[assignment]
    w["_buf"] = buf  # type: ignore[assignment]
    return w


def mlp(ctx: Context, w: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    x = ctx.new_tensor(F32, (16, 5), name="x").set_input()
    h = ctx.rms_norm(x, 1e-5)
    h = ctx.mul(h, w["wn"])                                # in-place candidate
    up = ctx.mul_mat(w["w1"], h)                           # [24, 5]
    up = ctx.add(up, w["b"])
    act = ctx.silu(up)                                     # UNARY: in place
    gate = ctx.scale(up, 0.5)
    y = ctx.mul(act, gate)
    down = ctx.mul_mat(w["w2"], y)                         # [16, 5]
    out = ctx.add(down, x)                                 # residual
    out = ctx.scale(out, 2.0)
    out.set_output()
    return x, out


def views(ctx: Context, w: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    x = ctx.new_tensor(F32, (16, 6), name="x").set_input()
    a = ctx.scale(x, 3.0)
    r = ctx.reshape(a, (8, 12))                            # view of a
    t = ctx.cont(ctx.transpose(r))                         # [12, 8]
    v = ctx.view(t, (12, 4), offset=12 * 4 * 2)            # rows 2..5 of t
    s = ctx.soft_max(ctx.cont(v))
    p = ctx.cont(ctx.permute(ctx.reshape(s, (4, 3, 4)), 1, 0, 2, 3))
    q = ctx.add(ctx.reshape(p, (12, 4)), ctx.reshape(p, (12, 4)))
    out = ctx.mul_mat(ctx.reshape(q, (16, 3)), ctx.reshape(ctx.scale(x, 0.25), (16, 6)))
    out.set_output()
    return x, out


def chain(ctx: Context, w: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    x = ctx.new_tensor(F32, (64,), name="x").set_input()
    h = x
    keep = []
    for i in range(12):
        h = ctx.scale(h, 1.0 + i / 8)                      # every step in place
        if i % 4 == 0:
            keep.append(ctx.mul(h, h))
    out = h
    for k in keep:
        out = ctx.add(out, k)
    out.set_output()
    return x, out


GRAPHS: dict[str, Callable[[Context, dict[str, Tensor]], tuple[Tensor, Tensor]]] = {
    "mlp": mlp, "views": views, "chain": chain,
}


def _offsets(g: Graph) -> dict[str, int]:
    from pyggml._native import ffi, ggml

    out = {}
    for t in g.nodes + g.leafs:
        p = t.ptr
        base = p.view_src if p.view_src != ffi.NULL else p
        if base.buffer == ffi.NULL:
            continue
        b = int(ffi.cast("uintptr_t", ggml().ggml_backend_buffer_get_base(base.buffer)))
        out[t.name] = int(ffi.cast("uintptr_t", p.data)) - b
    return out


def _build(kind: str, w: dict[str, Tensor]) -> tuple[Context, Graph, Tensor, Tensor]:
    ctx = Context.for_tensors(96, graph_size=128)
    x, out = GRAPHS[kind](ctx, w)
    g = Graph(ctx, 128).build_forward_expand(out)
    return ctx, g, x, out


@pytest.mark.parametrize("kind", sorted(GRAPHS))
def test_apply_matches_ggml_gallocr(kind: str, cpu: Backend, weights: dict[str, Tensor]) -> None:
    _, g_ref, x_ref, out_ref = _build(kind, weights)
    _, g_ours, x_ours, out_ours = _build(kind, weights)
    ref = GraphAllocator(BufferType.cpu())
    ours = Gallocr(BufferType.cpu())
    assert ref.alloc_graph(g_ref)
    assert ours.alloc_graph(g_ours)
    assert ours.buffer_size(0) == ref.buffer_size(0)
    assert _offsets(g_ours) == _offsets(g_ref)
    xv = RNG.standard_normal(tuple(reversed(x_ref.shape))).astype(np.float32)
    x_ref.set(xv)
    x_ours.set(xv)
    cpu.compute(g_ref)
    cpu.compute(g_ours)
    assert np.array_equal(out_ours.numpy(), out_ref.numpy())
    # an unchanged, allocated graph needs no new plan (both the cache and the scan say so)
    assert not ours.needs_realloc(g_ours)
    ours._cache = None
    assert not ours.needs_realloc(g_ours)


def test_reserve_then_other_graph(cpu: Backend, weights: dict[str, Tensor]) -> None:
    _, g_small, _, _ = _build("chain", weights)
    _, g_big, x, out = _build("mlp", weights)
    ours = Gallocr(BufferType.cpu())
    assert ours.reserve(g_small)
    assert ours.needs_realloc(g_big)           # different node count
    assert ours.alloc_graph(g_big)             # one buffer type: re-plans by itself
    x.set(np.ones((5, 16), np.float32))
    cpu.compute(g_big)
    assert np.isfinite(out.numpy()).all()
    assert not ours.needs_realloc(g_big)


def test_alloc_ctx_tensors_matches_reference(weights: dict[str, Tensor]) -> None:
    from pyggml.alloc.ctx_tensors import alloc_ctx_tensors_real, plan_ctx_tensors

    def make() -> tuple[Context, list[Tensor]]:
        c = Context.for_tensors(8)
        ts = [c.new_tensor(F32, (n,), name=f"w{i}") for i, n in enumerate((5, 64, 3, 17, 256, 1))]
        ts.append(c.view(ts[1], (8,), offset=16))
        return c, ts

    c_ref, t_ref = make()
    c_ours, t_ours = make()
    align = BufferType.cpu().alignment
    total = sum(-(-n * 4 // align) * align for n in (5, 64, 3, 17, 256, 1))
    assert plan_ctx_tensors(c_ours, BufferType.cpu()) == [(0, 7, total)]
    buf = alloc_ctx_tensors(c_ref, BufferType.cpu())
    bufs = alloc_ctx_tensors_real(c_ours, BufferType.cpu())
    assert buf is not None and len(bufs) == 1 and bufs[0].size == buf.size
    for a, b in zip(t_ref, t_ours, strict=True):
        assert a.data - buf.base == b.data - bufs[0].base


def test_realloc_makes_old_allocation_stale(cpu: Backend, weights: dict[str, Tensor]) -> None:
    from pyggml.errors import GGMLError

    _, g, x, out = _build("mlp", weights)
    _, g_ref, x_ref, out_ref = _build("mlp", weights)
    ours = Gallocr(BufferType.cpu())
    assert ours.alloc_graph(g)
    big = Context.for_tensors(4, graph_size=8)
    gbig = Graph(big, 8).build_forward_expand(big.cont(big.new_tensor(F32, (4096,))))
    assert ours.reserve(gbig)                          # the buffer grows: g's memory is gone
    with pytest.raises(GGMLError, match="reallocated"):
        cpu.compute(g)
    assert ours.alloc_graph(g)                         # placed again in the new buffer
    ref = GraphAllocator(BufferType.cpu())
    assert ref.alloc_graph(g_ref)
    xv = RNG.standard_normal((5, 16)).astype(np.float32)
    x.set(xv)
    x_ref.set(xv)
    cpu.compute(g)
    cpu.compute(g_ref)
    assert np.array_equal(out.numpy(), out_ref.numpy())


def test_lifetimes_of_a_real_graph(weights: dict[str, Tensor]) -> None:
    from pyggml.alloc import lifetimes
    from pyggml.alloc.ir import from_graph

    _, g, _, out = _build("chain", weights)
    lives = {lt.name: lt for lt in Gallocr(BufferType.cpu()).lifetimes(g)}
    assert lives[out.name].output and lives[out.name].free_step is None
    assert lives["x"].alloc_step == -1 and lives["x"].handed_to is not None   # scaled in place
    ir, _ = from_graph(g)
    assert [lt.name for lt in lifetimes(ir)] == [lt for lt in lives]
