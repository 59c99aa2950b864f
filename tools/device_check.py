"""GPU check of a CUDA build (run on a machine with a GPU after
``CMAKE_ARGS="-DGGML_CUDA=ON" pip install -e .``).

Computes one llama-style block (mul_mat, add, rms_norm, mul, rope, soft_max) on every
non-CPU ggml device and on the CPU backend, and prints the largest difference.
Exit 1 when the build registered no GPU device or the results disagree.
"""

from __future__ import annotations

import sys

import numpy as np

from pyggml.ggml import Backend, Context, GGMLType, Graph, alloc_ctx_tensors, devices


def run_block(backend: Backend, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n_embd, n_tokens = 256, 7
    ctx = Context.for_tensors(8)
    w = ctx.new_tensor(GGMLType.F32, (n_embd, n_embd), name="w")          # [n_embd, n_embd]
    x = ctx.new_tensor(GGMLType.F32, (n_embd, n_tokens), name="x")        # [n_embd, n_tokens]
    g = ctx.new_tensor(GGMLType.F32, (n_embd,), name="norm")              # [n_embd]
    buf = alloc_ctx_tensors(ctx, backend)
    assert buf is not None
    w.set(rng.standard_normal((n_embd, n_embd), dtype=np.float32) / 16)
    x.set(rng.standard_normal((n_tokens, n_embd), dtype=np.float32))
    g.set(rng.standard_normal(n_embd, dtype=np.float32))
    gctx = Context.for_tensors(32, graph_size=32)
    h = gctx.mul(gctx.rms_norm(gctx.mul_mat(w, x), 1e-5), g)
    out = gctx.soft_max(h)
    out.set_output()
    graph = Graph(gctx, 32).build_forward_expand(out)
    out_buf = alloc_ctx_tensors(gctx, backend)
    assert out_buf is not None
    backend.compute(graph)
    return out.numpy()


def main() -> int:
    names = devices()
    print("ggml devices:", names)
    gpus = [n for n in names if n != "CPU"]
    if not gpus:
        print("no GPU device registered: was this built with -DGGML_CUDA=ON?")
        return 1
    ref = run_block(Backend.cpu())
    ok = True
    for name in gpus:
        got = run_block(Backend.by_name(name))
        err = float(np.max(np.abs(got - ref)))
        print(f"{name}: max |gpu - cpu| = {err:.3e}")
        ok &= err < 1e-3
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
