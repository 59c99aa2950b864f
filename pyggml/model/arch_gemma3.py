"""Tensors the gemma3 architecture declares, in the order the reference creates them.

llama.cpp: src/models/gemma3.cpp ``llama_model_gemma3::load_arch_tensors`` (and the generic
scale pass of ``llama_model_base::load_tensors``).  Shapes in ggml ``ne`` order.  Compared with
llama: Q/K RMS norms per head, norms after the attention and after the FFN, no rope factors, and
the optional dense projections of the embedding variant (absent from the decoder models).
"""

from __future__ import annotations

from collections.abc import Iterator

from .arch_llama import DUPLICATED, NOT_REQUIRED, Present, TensorDecl, declare_qkv, scale_decls
from .hparams import LlamaHParams


def declare(hp: LlamaHParams, present: Present) -> Iterator[TensorDecl]:
    n_embd, n_vocab = hp.n_embd, hp.n_vocab
    head_k, n_ff = hp.n_embd_head_k, hp.n_ff[0]
    n_embd_q = head_k * hp.n_head[0]

    yield TensorDecl("token_embd.weight", (n_embd, n_vocab))
    yield TensorDecl("output_norm.weight", (n_embd,))
    has_output = present("output.weight")
    yield TensorDecl("output.weight", (n_embd, n_vocab), NOT_REQUIRED)
    if not has_output:  # tied embeddings
        yield TensorDecl("token_embd.weight", (n_embd, n_vocab), DUPLICATED)
    # the embedding variant's dense projections (dense_2_feat_out / dense_3_feat_in are 0 here:
    # a decoder file never has them, and a not-required absent tensor declares nothing)
    yield TensorDecl("dense_2.weight", (n_embd, 0), NOT_REQUIRED)
    yield TensorDecl("dense_3.weight", (0, n_embd), NOT_REQUIRED)

    per_layer: list[dict[str, bool]] = []
    for i in range(hp.n_layer):
        blk = f"blk.{i}."
        made: dict[str, bool] = {}

        def t(name: str, ne: tuple[int, ...], flags: int = 0, _made=made) -> TensorDecl:
            _made[name] = present(name) or not flags & NOT_REQUIRED
            return TensorDecl(name, ne, flags)

        yield t(blk + "attn_norm.weight", (n_embd,))
        yield from declare_qkv(t, present, blk, n_embd, n_embd_q, hp.n_embd_k_gqa, hp.n_embd_v_gqa)
        yield t(blk + "attn_output.weight", (n_embd_q, n_embd))
        yield t(blk + "post_attention_norm.weight", (n_embd,))
        yield t(blk + "attn_k_norm.weight", (head_k,))
        yield t(blk + "attn_q_norm.weight", (head_k,))
        yield t(blk + "ffn_norm.weight", (n_embd,))
        yield t(blk + "ffn_gate.weight", (n_embd, n_ff))
        yield t(blk + "ffn_up.weight", (n_embd, n_ff))
        yield t(blk + "ffn_down.weight", (n_ff, n_embd))
        yield t(blk + "post_ffw_norm.weight", (n_embd,))
        per_layer.append(made)
    yield from scale_decls(per_layer, 0)
