"""The llama graph: token embeddings -> n_layer x (RMS norm, RoPE'd GQA attention over the KV
cache, residual, RMS norm, SwiGLU FFN or mixture of experts, residual) -> RMS norm -> output
projection.

llama.cpp: src/models/llama.cpp ``llama_model_llama::graph`` (node order and names), with the
toolbox of ``builder.py``.  Shapes in ggml ne order: hidden states are [n_embd, n_tokens].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import ffi
from .builder import GraphBuilder

# the attention projections every architecture's layers may have (fused or not, with biases)
QKV_WEIGHTS = (
    "attn_q.weight",
    "attn_k.weight",
    "attn_v.weight",
    "attn_qkv.weight",
    "attn_q.bias",
    "attn_k.bias",
    "attn_v.bias",
    "attn_qkv.bias",
)

_LAYER_WEIGHTS = (
    "attn_norm.weight",
    *QKV_WEIGHTS,
    "attn_output.weight",
    "attn_output.bias",
    "ffn_norm.weight",
    "ffn_gate.weight",
    "ffn_up.weight",
    "ffn_down.weight",
    "ffn_gate.bias",
    "ffn_up.bias",
    "ffn_down.bias",
    "attn_q.scale",
    "attn_k.scale",
    "attn_v.scale",
    "attn_qkv.scale",
    "attn_output.scale",
    "ffn_gate.scale",
    "ffn_up.scale",
    "ffn_down.scale",
    "ffn_gate_inp.weight",
    "ffn_gate_exps.weight",
    "ffn_up_exps.weight",
    "ffn_down_exps.weight",
    "ffn_gate_exps.scale",
    "ffn_up_exps.scale",
    "ffn_down_exps.scale",
)


def layer_weights(model: Any, il: int, names: tuple[str, ...] = _LAYER_WEIGHTS) -> dict[str, Any]:
    """The raw ggml tensors of layer il, by name without the "blk.N." prefix (absent: None)."""
    tensors = model._buffers.tensors
    out = {}
    for name in names:
        t = tensors.get(f"blk.{il}.{name}")
        out[name] = None if t is None else t.ptr
    return out


def kq_scale(n_embd_head: int) -> float:
    """1.0f/sqrtf(float(n_embd_head)), in float32."""
    return float(np.float32(1.0) / np.sqrt(np.float32(n_embd_head)))


def build(b: GraphBuilder) -> None:
    """llama_model_llama::graph<false>: fills b.res with the graph, its inputs and outputs."""
    lib, ctx, hp, cp, model = b.lib, b.ctx0, b.hp, b.cp, b.model
    # llm_graph_context::n_expert_used: cparams.warmup ? n_expert : n_expert_used() (no warmup here)
    n_expert, n_expert_used = hp.n_expert, hp.n_expert_used[0]
    n_layer, n_rot = hp.n_layer, hp.n_rot
    tensors = model._buffers.tensors
    rope_freqs = tensors.get("rope_freqs.weight")  # llama3 frequency factors, shared by every layer
    scale = kq_scale(hp.n_embd_head_v)

    inp_l = b.inp_embd(tensors["token_embd.weight"].ptr)
    inp_pos = b.inp_pos()
    inp_attn = b.attn_inp_kv()
    inp_out_ids = b.inp_out_ids()
    rope_args = cp.rope_args(n_rot, hp.rope_type)
    factors = rope_freqs.ptr if rope_freqs is not None else ffi.NULL

    for il in range(n_layer):
        w = layer_weights(model, il)
        inp_sa = inp_l
        cur = b.cb(b.norm_rms(inp_l, w["attn_norm.weight"], il), "attn_norm", il)
        q, k, v = b.qkv(w, cur, il)
        q = lib.ggml_rope_ext(ctx, q, inp_pos, factors, *rope_args)
        k = lib.ggml_rope_ext(ctx, k, inp_pos, factors, *rope_args)
        b.cb(q, "Qcur", il)
        b.cb(k, "Kcur", il)
        b.cb(v, "Vcur", il)
        cur = b.attn_kv(inp_attn, w, q, k, v, scale, il)
        b.cb(cur, "attn_out", il)
        if il == n_layer - 1:
            cur = lib.ggml_get_rows(ctx, cur, inp_out_ids)
            inp_sa = lib.ggml_get_rows(ctx, inp_sa, inp_out_ids)
        ffn_inp = b.cb(lib.ggml_add(ctx, cur, inp_sa), "ffn_inp", il)
        cur = b.cb(b.norm_rms(ffn_inp, w["ffn_norm.weight"], il), "ffn_norm", il)
        if w["ffn_gate_inp.weight"] is None:
            cur = b.cb(b.ffn_swiglu(cur, w, il), "ffn_out", il)
        else:
            cur = b.moe_ffn(
                cur,
                w["ffn_gate_inp.weight"],
                w["ffn_up_exps.weight"],
                w["ffn_gate_exps.weight"],
                w["ffn_down_exps.weight"],
                n_expert,
                n_expert_used,
                hp.expert_weights_scale,
                il,
                up_exps_s=w["ffn_up_exps.scale"],
                gate_exps_s=w["ffn_gate_exps.scale"],
                down_exps_s=w["ffn_down_exps.scale"],
            )
            b.cb(cur, "ffn_moe_out", il)
        cur = b.cb(lib.ggml_add(ctx, cur, ffn_inp), "ffn_out", il)
        inp_l = b.cb(cur, "l_out", il)

    cur = output_head(b, model, tensors, inp_l)
    b.cb(cur, "result_output", -1)
    b.res.t_logits = cur
    b.expand(cur)


def output_head(b: GraphBuilder, model: Any, tensors: dict[str, Any], inp_l: Any) -> Any:
    """The final RMS norm ("result_norm", the embeddings output) and the output projection
    (with its optional scale): the logits before anything an architecture adds."""
    cur = b.norm_rms(inp_l, tensors["output_norm.weight"].ptr, -1)
    b.cb(cur, "result_norm", -1)
    b.res.t_embd = cur
    out_s = tensors.get("output.scale")
    return b.mm(model.output_tensor().ptr, cur, out_s.ptr if out_s is not None else None)
