"""The gemma3 graph: scaled token embeddings -> n_layer x (RMS norm, attention with RMS-normed Q/K
and NEOX RoPE over the layer's cache (sliding-window layers: the SWA cache and their own RoPE
base), post-attention norm, residual, RMS norm, GELU-gated FFN, post-FFN norm, residual) -> RMS
norm -> output projection -> optional final soft-capping.

llama.cpp: src/models/gemma3.cpp ``llama_model_gemma3::graph<iswa>`` (node order and names), with
the toolbox of ``builder.py``.  ``iswa`` (a sliding window in the hparams) selects the iSWA
memory's inputs; without a window the model uses one KV cache like llama.  Shapes in ggml ne
order: hidden states are [n_embd, n_tokens].
"""

from __future__ import annotations

import numpy as np

from .._native import ffi
from .builder import GraphBuilder
from .llama import QKV_WEIGHTS, layer_weights, output_head

_LAYER_WEIGHTS = (
    "attn_norm.weight",
    *QKV_WEIGHTS,
    "attn_q.scale",
    "attn_k.scale",
    "attn_v.scale",
    "attn_qkv.scale",
    "attn_output.weight",
    "attn_output.scale",
    "attn_q_norm.weight",
    "attn_k_norm.weight",
    "post_attention_norm.weight",
    "ffn_norm.weight",
    "ffn_gate.weight",
    "ffn_up.weight",
    "ffn_down.weight",
    "post_ffw_norm.weight",
)  # no FFN biases or scales: the reference passes NULL for them


def _f32(x: float) -> float:
    return float(np.float32(x))


def build(b: GraphBuilder) -> None:
    """llama_model_gemma3::graph<iswa>: fills b.res with the graph, its inputs and outputs."""
    lib, ctx, hp, cp, model = b.lib, b.ctx0, b.hp, b.cp, b.model
    tensors = model._buffers.tensors
    iswa = hp.swa_type != 0
    n_layer = hp.n_layer
    # llm_graph_context's n_rot is hparams.n_rot() = n_rot(0)
    n_rot = hp.n_rot_swa if hp.is_swa(0) else hp.n_rot

    inp_l = b.inp_embd(tensors["token_embd.weight"].ptr)
    # raw embeddings (no tokens) are not scaled
    scale = float(np.sqrt(np.float32(hp.n_embd))) if b.ub.token is not None else 1.0
    inp_l = b.cb(lib.ggml_scale(ctx, inp_l, scale), "inp_scaled", -1)
    inp_pos = b.inp_pos()
    if iswa:
        inp_base, inp_swa = b.attn_inp_kv_iswa()
    else:
        inp_base = inp_swa = b.attn_inp_kv()
    inp_out_ids = b.inp_out_ids()

    for il in range(n_layer):
        w = layer_weights(model, il, _LAYER_WEIGHTS)
        swa = iswa and hp.is_swa(il)
        rope_args = cp.layer_rope_args(hp, il, n_rot)

        cur = b.cb(b.norm_rms(inp_l, w["attn_norm.weight"], il), "attn_norm", il)
        q, k, v = b.qkv(w, cur, il)
        q = b.cb(b.norm_rms(q, w["attn_q_norm.weight"], il), "Qcur_normed", il)
        q = lib.ggml_rope_ext(ctx, q, inp_pos, ffi.NULL, *rope_args)
        k = b.cb(b.norm_rms(k, w["attn_k_norm.weight"], il), "Kcur_normed", il)
        k = lib.ggml_rope_ext(ctx, k, inp_pos, ffi.NULL, *rope_args)
        b.cb(q, "Qcur", il)
        b.cb(k, "Kcur", il)
        b.cb(v, "Vcur", il)
        q = lib.ggml_scale(ctx, q, hp.f_attention_scale)  # the softmax scale is applied to Q
        cur = b.attn_kv(inp_swa if swa else inp_base, w, q, k, v, 1.0, il, iswa=iswa)
        if il == n_layer - 1:
            cur = lib.ggml_get_rows(ctx, cur, inp_out_ids)
            inp_l = lib.ggml_get_rows(ctx, inp_l, inp_out_ids)
        cur = b.cb(b.norm_rms(cur, w["post_attention_norm.weight"], il), "attn_post_norm", il)
        sa_out = b.cb(lib.ggml_add(ctx, cur, inp_l), "sa_out", il)
        cur = b.cb(b.norm_rms(sa_out, w["ffn_norm.weight"], il), "ffn_norm", il)
        cur = b.cb(b.ffn_swiglu(cur, w, il, gelu=True), "ffn_out", il)
        # llama.cpp quirk: this norm is built with il = -1, so its RMS node is plain "norm"
        cur = b.cb(b.norm_rms(cur, w["post_ffw_norm.weight"], -1), "ffn_post_norm", il)
        cur = lib.ggml_add(ctx, cur, sa_out)
        inp_l = b.cb(cur, "l_out", il)

    cur = output_head(b, model, tensors, inp_l)
    cap = hp.f_final_logit_softcapping
    if cap:
        cur = lib.ggml_scale(ctx, cur, _f32(np.float32(1.0) / np.float32(cap)))
        cur = lib.ggml_tanh(ctx, cur)
        cur = lib.ggml_scale(ctx, cur, cap)
    b.cb(cur, "result_output", -1)
    b.res.t_logits = cur
    b.expand(cur)
