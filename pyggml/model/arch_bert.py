"""Tensors the bert architecture declares, in the order the reference creates them.

llama.cpp: src/models/bert.cpp ``llama_model_bert::load_arch_tensors`` (LLM_ARCH_BERT only;
the optional attention Q/K norms, MoE and gated FFNs of the other BERT variants are not
declared).  Not modelled: the generic per-tensor ``.scale`` pass (no BERT file carries one).
Shapes are in ggml ``ne`` order.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import LoadError
from .arch_llama import NOT_REQUIRED, Present, TensorDecl, declare_qkv
from .hparams import LlamaHParams


def declare(hp: LlamaHParams, present: Present) -> Iterator[TensorDecl]:
    n_embd, n_ff = hp.n_embd, hp.n_ff[0]
    n_embd_gqa = hp.n_embd_v_gqa
    if hp.n_token_types == 0:
        raise LoadError("bert model needs to define token type count")

    def t(name: str, ne: tuple[int, ...], flags: int = 0) -> TensorDecl:
        return TensorDecl(name, ne, flags)

    yield t("token_embd.weight", (n_embd, hp.n_vocab))
    yield t("token_types.weight", (n_embd, hp.n_token_types), NOT_REQUIRED)
    yield t("position_embd.weight", (n_embd, hp.n_ctx_train))
    # the classifier head of rerankers (RANK pooling)
    yield t("cls.weight", (n_embd, n_embd), NOT_REQUIRED)
    yield t("cls.bias", (n_embd,), NOT_REQUIRED)
    yield t("cls.output.weight", (n_embd, hp.n_cls_out), NOT_REQUIRED)
    yield t("cls.output.bias", (hp.n_cls_out,), NOT_REQUIRED)
    yield t("token_embd_norm.weight", (n_embd,))
    yield t("token_embd_norm.bias", (n_embd,))
    for i in range(hp.n_layer):
        blk = f"blk.{i}."
        yield from declare_qkv(t, present, blk, n_embd, n_embd, n_embd_gqa, n_embd_gqa)
        yield t(blk + "attn_output.weight", (n_embd, n_embd))
        yield t(blk + "attn_output.bias", (n_embd,), NOT_REQUIRED)
        yield t(blk + "attn_output_norm.weight", (n_embd,))
        yield t(blk + "attn_output_norm.bias", (n_embd,))
        yield t(blk + "ffn_up.weight", (n_embd, n_ff))
        yield t(blk + "ffn_up.bias", (n_ff,), NOT_REQUIRED)
        yield t(blk + "ffn_down.weight", (n_ff, n_embd))
        yield t(blk + "ffn_down.bias", (n_embd,), NOT_REQUIRED)
        yield t(blk + "layer_output_norm.weight", (n_embd,))
        yield t(blk + "layer_output_norm.bias", (n_embd,))
