"""The BERT encoder graph: token + type ("Sentence A") + position embeddings -> LayerNorm ->
n_layer x (non-causal attention over the ubatch with biases, residual, LayerNorm, GELU FFN,
residual, LayerNorm) -> "result_embd".  No memory: K/V are this ubatch's own.

llama.cpp: src/models/bert.cpp ``llama_model_bert::graph`` (LLM_ARCH_BERT: no Q/K norms, no
RoPE, no MoE), with the toolbox of ``builder.py``.  Shapes in ggml ne order: hidden states are
[n_embd, n_tokens].
"""

from __future__ import annotations

from typing import Any

from .builder import GraphBuilder
from .llama import QKV_WEIGHTS, kq_scale

_LAYER_WEIGHTS = (
    *QKV_WEIGHTS,
    "attn_output.weight",
    "attn_output.bias",
    "attn_output_norm.weight",
    "attn_output_norm.bias",
    "ffn_up.weight",
    "ffn_up.bias",
    "ffn_down.weight",
    "ffn_down.bias",
    "layer_output_norm.weight",
    "layer_output_norm.bias",
)


def _ptr(tensors: dict[str, Any], name: str) -> Any:
    t = tensors.get(name)
    return None if t is None else t.ptr


def build(b: GraphBuilder) -> None:
    """llama_model_bert::graph: fills b.res with the graph, its inputs and t_embd."""
    lib, ctx, hp, model = b.lib, b.ctx0, b.hp, b.model
    tensors = model._buffers.tensors
    scale = kq_scale(hp.n_embd_head_v)

    inp_pos = b.inp_pos()
    inp_l = b.inp_embd(tensors["token_embd.weight"].ptr)
    type_embd = _ptr(tensors, "token_types.weight")
    if type_embd is not None:  # token types are hardcoded to zero ("Sentence A")
        inp_l = lib.ggml_add(ctx, inp_l, lib.ggml_view_1d(ctx, type_embd, hp.n_embd, 0))
    inp_l = lib.ggml_add(ctx, lib.ggml_get_rows(ctx, tensors["position_embd.weight"].ptr, inp_pos), inp_l)
    b.cb(inp_l, "inp_embd", -1)
    # the reference passes il=0 here: the embedding norm's nodes are "norm-0"/"norm_w-0"
    inp_l = b.norm(inp_l, tensors["token_embd_norm.weight"].ptr, tensors["token_embd_norm.bias"].ptr, 0)
    b.cb(inp_l, "inp_norm", 0)

    inp_attn = b.attn_inp_no_cache()
    inp_out_ids = b.inp_out_ids()

    for il in range(hp.n_layer):
        w = {name: _ptr(tensors, f"blk.{il}.{name}") for name in _LAYER_WEIGHTS}
        q, k, v = b.qkv(w, inp_l, il)
        b.cb(q, "Qcur", il)
        b.cb(k, "Kcur", il)
        b.cb(v, "Vcur", il)
        cur = b.attn_no_cache(inp_attn, w, q, k, v, scale, il)
        b.cb(cur, "kqv_out", il)
        if il == hp.n_layer - 1:
            cur = lib.ggml_get_rows(ctx, cur, inp_out_ids)
            inp_l = lib.ggml_get_rows(ctx, inp_l, inp_out_ids)
        cur = lib.ggml_add(ctx, cur, inp_l)  # re-add the layer input
        cur = b.norm(cur, w["attn_output_norm.weight"], w["attn_output_norm.bias"], il)
        ffn_inp = b.cb(cur, "ffn_inp", il)
        cur = b.cb(b.ffn_gelu_seq(cur, w, il), "ffn_out", il)
        cur = lib.ggml_add(ctx, cur, ffn_inp)  # attentions bypass the intermediate layer
        inp_l = b.norm(cur, w["layer_output_norm.weight"], w["layer_output_norm.bias"], il)

    b.cb(inp_l, "result_embd", -1)
    b.res.t_embd = inp_l
    b.expand(inp_l)

