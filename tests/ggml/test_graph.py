"""Graphs computed on the CPU backend against the same computation in numpy."""

from __future__ import annotations

import numpy as np
import pytest

from pyggml.errors import GGMLError
from pyggml.ggml import (
    ROPE_TYPE_NEOX,
    ROPE_TYPE_NORMAL,
    Backend,
    BufferType,
    Context,
    GGMLType,
    Graph,
    GraphAllocator,
    alloc_ctx_tensors,
)

RNG = np.random.default_rng(99)


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.fixture(scope="module")
def cpu():
    # one thread: libggml-cpu uses OpenMP above one, and a 2-core CI box shared with other
    # test processes (some forking) is no place for spinning OpenMP workers
    return Backend.cpu(1)


@pytest.fixture
def ctx():
    with Context(16 << 20) as c:
        yield c


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def rms_norm(x: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x.astype(np.float64) ** 2).mean(axis=-1, keepdims=True) + eps)


def run(ctx: Context, cpu: Backend, *outs):
    g = Graph(ctx)
    for o in outs:
        g.build_forward_expand(o)
    cpu.compute(g)
    return g


def test_small_llama_like_graph(ctx, cpu):
    x, w, bias, gamma = f32(5, 8), f32(6, 8), f32(6), f32(6)  # numpy order: x is 5 tokens of 8
    tx, tw, tb, tg = (ctx.from_numpy(a) for a in (x, w, bias, gamma))
    cur = ctx.mul_mat(tw, tx)              # [6, 5]
    cur = ctx.add(cur, tb)                 # bias broadcast over tokens
    cur = ctx.rms_norm(cur, 1e-5)
    cur = ctx.mul(cur, tg)
    out = ctx.soft_max_ext(cur, scale=0.5)
    g = run(ctx, cpu, out)
    assert [n.op for n in g.nodes] == ["MUL_MAT", "ADD", "RMS_NORM", "MUL", "SOFT_MAX"]
    assert g.n_leafs == 4 and g.node(-1) is out
    ref = softmax(0.5 * rms_norm(x @ w.T + bias, 1e-5) * gamma)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_binary_ops_broadcast(ctx, cpu):
    a, b = f32(2, 3, 4), f32(1, 3, 1) + 3.0
    ta, tb = ctx.from_numpy(a), ctx.from_numpy(b)
    outs = [ctx.add(ta, tb), ctx.sub(ta, tb), ctx.mul(ta, tb), ctx.div(ta, tb)]
    run(ctx, cpu, *outs)
    for o, r in zip(outs, (a + b, a - b, a * b, a / b), strict=True):
        np.testing.assert_allclose(o.numpy(), r, rtol=1e-6)


def test_views_permute_cont(ctx, cpu):
    a = f32(2, 3, 4)                         # ne = (4, 3, 2)
    t = ctx.from_numpy(a)
    p = ctx.permute(t, 1, 0, 2, 3)           # swap ne0/ne1: a view, no compute needed
    assert p.ne == (3, 4, 2, 1) and p.is_view
    np.testing.assert_array_equal(p.numpy(), a.transpose(0, 2, 1))
    tr = ctx.transpose(t)
    np.testing.assert_array_equal(tr.numpy(), a.transpose(0, 2, 1))
    c = ctx.cont(p)
    rows = ctx.view(t, (4, 2), nb=(t.nb[2],), offset=t.nb[1])  # row 1 of both matrices
    r = ctx.reshape(c, (12, 2))
    run(ctx, cpu, r)
    assert c.is_contiguous
    np.testing.assert_array_equal(c.numpy(), a.transpose(0, 2, 1))
    np.testing.assert_array_equal(rows.numpy(), a[:, 1, :])
    np.testing.assert_array_equal(r.numpy(), a.transpose(0, 2, 1).reshape(2, 12))


def test_unary_glu_scale_concat(ctx, cpu):
    a, b = f32(3, 8), f32(3, 8)
    ta, tb = ctx.from_numpy(a), ctx.from_numpy(b)
    silu, gelu = ctx.silu(ta), ctx.gelu(ta)
    swiglu = ctx.swiglu_split(ta, tb)
    scaled = ctx.scale(ta, 0.25, bias=1.0)
    cat = ctx.concat(ta, tb, 1)
    run(ctx, cpu, silu, gelu, swiglu, scaled, cat)
    s = a / (1 + np.exp(-a))
    np.testing.assert_allclose(silu.numpy(), s, rtol=1e-5, atol=1e-6)
    g = 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)))
    np.testing.assert_allclose(gelu.numpy(), g, rtol=1e-2, atol=1e-3)  # ggml uses an f16 table
    np.testing.assert_allclose(swiglu.numpy(), s * b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scaled.numpy(), a * 0.25 + 1.0, rtol=1e-6)
    np.testing.assert_array_equal(cat.numpy(), np.concatenate([a, b], axis=0))


def test_get_rows_set_rows_cpy(ctx, cpu):
    table = f32(10, 4)
    ids = np.array([3, 0, 9, 3], np.int32)
    t = ctx.from_numpy(table)
    got = ctx.get_rows(t, ctx.from_numpy(ids))
    cache = ctx.from_numpy(np.zeros((6, 4), np.float16))
    src = f32(2, 4)
    put = ctx.set_rows(cache, ctx.from_numpy(src), ctx.from_numpy(np.array([5, 1], np.int64)))
    as_f16 = ctx.cpy(t, ctx.new_tensor(GGMLType.F16, (4, 10)))
    run(ctx, cpu, got, put, as_f16)
    np.testing.assert_array_equal(got.numpy(), table[ids])
    expect = np.zeros((6, 4), np.float16)
    expect[[5, 1]] = src.astype(np.float16)
    np.testing.assert_array_equal(cache.numpy(), expect)
    np.testing.assert_array_equal(as_f16.numpy(), table.astype(np.float16))


@pytest.mark.parametrize("mode", [ROPE_TYPE_NORMAL, ROPE_TYPE_NEOX])
def test_rope_ext(ctx, cpu, mode):
    head_dim, n_head, n_tok, n_dims, base = 8, 2, 3, 6, 10000.0
    x = f32(n_tok, n_head, head_dim)          # ne = [head_dim, n_head, n_tok]
    pos = np.array([0, 5, 11], np.int32)
    out = ctx.rope_ext(ctx.from_numpy(x), ctx.from_numpy(pos), n_dims=n_dims, mode=mode, freq_base=base)
    run(ctx, cpu, out)
    ref = x.copy()
    half = n_dims // 2
    for i in range(half):
        theta = pos[:, None] * base ** (-2.0 * i / n_dims)
        j0, j1 = (2 * i, 2 * i + 1) if mode == ROPE_TYPE_NORMAL else (i, i + half)
        x0, x1 = x[..., j0], x[..., j1]
        ref[..., j0] = x0 * np.cos(theta) - x1 * np.sin(theta)
        ref[..., j1] = x0 * np.sin(theta) + x1 * np.cos(theta)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-5)


def test_flash_attn_ext_matches_attention(ctx, cpu):
    d, n_tok, n_kv, n_head = 16, 3, 5, 2
    q = f32(n_head, n_tok, d)                 # ne = [d, n_tok, n_head]
    k = f32(n_head, n_kv, d).astype(np.float16)
    v = f32(n_head, n_kv, d).astype(np.float16)
    mask = np.zeros((n_tok, n_kv), np.float16)
    mask[0, 3:] = -np.inf                     # causal-ish: token 0 sees 3 cells
    scale = 1 / np.sqrt(d)
    out = ctx.flash_attn_ext(ctx.from_numpy(q), ctx.from_numpy(k), ctx.from_numpy(v), ctx.from_numpy(mask),
                             scale=scale)
    assert out.ne == (d, n_head, n_tok, 1)
    run(ctx, cpu, out)
    kq = np.einsum("htd,hkd->htk", q, k.astype(np.float32)) * scale + mask.astype(np.float32)
    ref = np.einsum("htk,hkd->htd", softmax(kq), v.astype(np.float32))  # [head, tok, d]
    np.testing.assert_allclose(out.numpy(), ref.transpose(1, 0, 2), rtol=2e-2, atol=2e-2)


def test_graph_allocator_and_weight_buffer(cpu):
    # weights: a no_alloc context placed in one CPU buffer (what the weight loader does)
    wctx = Context.for_tensors(2)
    w = wctx.new_tensor(GGMLType.F32, (8, 4), name="w")
    bias = wctx.new_tensor(GGMLType.F32, (4,), name="b")
    buf = alloc_ctx_tensors(wctx, cpu)
    assert buf is not None and buf.size >= 36 * 4 and buf.is_host
    wv, bv = f32(4, 8), f32(4)
    w.set(wv)
    bias.set(bv)
    # graph: inputs and intermediates placed by ggml-alloc
    gctx = Context.for_tensors(16, graph_size=16)
    x = gctx.new_tensor(GGMLType.F32, (8, 3), name="x").set_input()
    out = gctx.silu(gctx.add(gctx.mul_mat(w, x), bias))
    out.set_output()
    g = Graph(gctx, 16).build_forward_expand(out)
    galloc = GraphAllocator(BufferType.cpu())
    assert galloc.alloc_graph(g) and galloc.buffer_size(0) > 0
    xv = f32(3, 8)
    x.set(xv)
    cpu.compute(g)
    h = xv @ wv.T + bv
    np.testing.assert_allclose(out.numpy(), h / (1 + np.exp(-h)), rtol=1e-5, atol=1e-6)
    with pytest.raises(GGMLError, match="copy=False"):
        out.numpy(copy=False)  # the allocator's memory is copied out, never viewed
    # a bigger graph grows the allocator's buffer: the old allocation is stale
    big = Graph(gctx, 16).build_forward_expand(gctx.cont(gctx.new_tensor(GGMLType.F32, (4096,))))
    assert galloc.reserve(big)
    with pytest.raises(GGMLError, match="reallocated"):
        cpu.compute(g)
    assert galloc.alloc_graph(g)
    x.set(xv)
    cpu.compute(g)
    np.testing.assert_allclose(out.numpy(), h / (1 + np.exp(-h)), rtol=1e-5, atol=1e-6)


def test_unallocated_graph_refuses_to_compute(cpu):
    gctx = Context.for_tensors(4, graph_size=8)
    x = gctx.new_tensor(GGMLType.F32, (4,))
    g = Graph(gctx, 8).build_forward_expand(gctx.silu(x))
    with pytest.raises(GGMLError, match="no memory"):
        cpu.compute(g)


def test_graph_size_limit(ctx):
    x = ctx.from_numpy(f32(4))
    cur = x
    for _ in range(4):
        cur = ctx.silu(cur)
    g = Graph(ctx, 3)
    with pytest.raises(GGMLError, match="cannot hold"):
        g.build_forward_expand(cur)
    assert g.n_nodes == 0
    g.build_forward_expand(ctx.silu(x))
    assert g.n_nodes == 1 and g.n_leafs == 1


def test_scheduler_runs_a_graph(cpu):
    from pyggml.ggml import Scheduler

    wctx = Context.for_tensors(1)
    w = wctx.new_tensor(GGMLType.F32, (8, 4), name="w")
    alloc_ctx_tensors(wctx, cpu)
    wv = f32(4, 8)
    w.set(wv)
    gctx = Context.for_tensors(8, graph_size=8)
    x = gctx.new_tensor(GGMLType.F32, (8, 2), name="x").set_input()
    out = gctx.mul_mat(w, x).set_output()
    g = Graph(gctx, 8).build_forward_expand(out)
    sched = Scheduler([cpu], graph_size=8)
    assert sched.reserve(g) and sched.alloc_graph(g)
    with pytest.raises(GGMLError, match="reset"):
        sched.alloc_graph(g)
    xv = f32(2, 8)
    x.set(xv)
    sched.compute(g)
    np.testing.assert_allclose(out.numpy(), xv @ wv.T, rtol=1e-5, atol=1e-6)
    assert sched.n_splits == 1 and sched.buffer_size(cpu) > 0
    with pytest.raises(GGMLError, match="graph_size"):
        Scheduler([cpu], graph_size=2).reserve(g)


def test_same_shape_ops_keep_ndim(ctx, cpu):
    x = ctx.from_numpy(f32(1, 4))          # ne (4, 1): ggml_n_dims would say 1
    y = ctx.rms_norm(ctx.scale(x, 2.0), 1e-6)
    run(ctx, cpu, y)
    assert y.numpy().shape == (1, 4)
    assert ctx.mul_mat(x, x).shape == (1,)  # new results: ggml_n_dims (trailing 1s dropped)
    g = Graph(ctx).build_forward_expand(y)
    cpu.compute(g)
    cpu.compute(g)  # checked once, recomputed unchanged
