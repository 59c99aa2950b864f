"""Seeded tiny BERT encoders (LLM_ARCH_BERT) as GGUF files, embedding models and rerankers.

The keys and tensors are the ones the reference's converter writes for a BertModel
(convert_hf_to_gguf.py, conversion/bert.py): a WordPiece ("bert") vocab in phantom-space form
with token types, the LayerNorm epsilon, ``causal`` false, an optional pooling type and, for a
reranker, the classifier head (``cls.*``, ``cls.output.*``) with its labels.  Written by the
same small GGUF writer as the tiny llama models.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

from ..context.params import POOLING_TYPES as POOLING
from .tinymodels import KVEntry, TensorEntry, TinyModel, _weight


@dataclass(frozen=True)
class BertSpec:
    n_embd: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_ff: int = 96
    n_vocab: int = 48
    n_ctx: int = 128
    qtype: QT = QT.F32        # 2-D weights; embeddings, norms and biases follow the converter's rules
    pooling: str = "mean"     # the GGUF's pooling_type ("" = no key)
    reranker: bool = False    # the classifier head; pooling "rank"
    n_cls_out: int = 1        # > 1: classifier labels LABEL_0.. (several rank scores)
    token_types: bool = True  # token_types.weight (type vocab of 2)
    seed: int = 0

    @property
    def tag(self) -> str:
        parts = [f"bert-e{self.n_embd}l{self.n_layer}h{self.n_head}", self.qtype.name,
                 self.pooling or "nopool"]
        if self.reranker:
            parts.append(f"rank{self.n_cls_out}")
        if not self.token_types:
            parts.append("notypes")
        return "-".join(parts)


SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CLS_ID, SEP_ID = 2, 3


def _vocab(n_vocab: int) -> tuple[list[str], list[int]]:
    # phantom-space WordPiece: words start with U+2581, "##" continuations are bare
    words = [("\u2581" if i % 3 else "") + chr(ord("a") + i % 26) * (1 + i // 26) for i in range(n_vocab - 5)]
    return SPECIALS + words, [3] * len(SPECIALS) + [1] * len(words)


def build(spec: BertSpec) -> TinyModel:
    """A valid BERT model for ``spec``."""
    rng = np.random.default_rng(spec.seed)
    a = "bert"
    toks, types = _vocab(spec.n_vocab)
    kv = [
        KVEntry("general.architecture", VT.STRING, a),
        KVEntry("general.name", VT.STRING, f"tiny-{spec.tag}"),
        KVEntry(f"{a}.block_count", VT.UINT32, spec.n_layer),
        KVEntry(f"{a}.context_length", VT.UINT32, spec.n_ctx),
        KVEntry(f"{a}.embedding_length", VT.UINT32, spec.n_embd),
        KVEntry(f"{a}.feed_forward_length", VT.UINT32, spec.n_ff),
        KVEntry(f"{a}.attention.head_count", VT.UINT32, spec.n_head),
        KVEntry(f"{a}.attention.layer_norm_epsilon", VT.FLOAT32, 1e-12),
        KVEntry("general.file_type", VT.UINT32, 1 if spec.qtype == QT.F16 else 0),
        KVEntry(f"{a}.attention.causal", VT.BOOL, False),
        *([KVEntry(f"{a}.pooling_type", VT.UINT32, POOLING[spec.pooling])] if spec.pooling else []),
        *([KVEntry(f"{a}.classifier.output_labels", VT.ARRAY,
                   [f"LABEL_{i}" for i in range(spec.n_cls_out)], VT.STRING)] if spec.n_cls_out > 1 else []),
        KVEntry("tokenizer.ggml.token_type_count", VT.UINT32, 2),
        KVEntry("tokenizer.ggml.model", VT.STRING, "bert"),
        KVEntry("tokenizer.ggml.pre", VT.STRING, "bert-bge"),
        KVEntry("tokenizer.ggml.tokens", VT.ARRAY, toks, VT.STRING),
        KVEntry("tokenizer.ggml.token_type", VT.ARRAY, types, VT.INT32),
        KVEntry("tokenizer.ggml.unknown_token_id", VT.UINT32, 1),
        KVEntry("tokenizer.ggml.seperator_token_id", VT.UINT32, SEP_ID),
        KVEntry("tokenizer.ggml.padding_token_id", VT.UINT32, 0),
        KVEntry("tokenizer.ggml.cls_token_id", VT.UINT32, CLS_ID),
        KVEntry("tokenizer.ggml.mask_token_id", VT.UINT32, 4),
    ]
    tensors: list[TensorEntry] = []
    e, f = spec.n_embd, spec.n_ff

    def add(name: str, ne: tuple[int, ...], qtype: QT = spec.qtype) -> None:
        t, data = _weight(rng, ne, qtype)
        tensors.append(TensorEntry(name, t, ne, data))

    def norm(name: str) -> None:  # LayerNorm weights near 1 keep activations in range
        w = (1.0 + rng.standard_normal(e) * 0.05).astype(np.float32)
        tensors.append(TensorEntry(name + ".weight", QT.F32, (e,), w.tobytes()))
        add(name + ".bias", (e,))

    add("token_embd.weight", (e, spec.n_vocab))
    if spec.token_types:
        add("token_types.weight", (e, 2), QT.F32)
    add("position_embd.weight", (e, spec.n_ctx))
    norm("token_embd_norm")
    for i in range(spec.n_layer):
        b = f"blk.{i}."
        for x in ("attn_q", "attn_k", "attn_v", "attn_output"):
            add(b + x + ".weight", (e, e))
            add(b + x + ".bias", (e,))
        norm(b + "attn_output_norm")
        add(b + "ffn_up.weight", (e, f))
        add(b + "ffn_up.bias", (f,))
        add(b + "ffn_down.weight", (f, e))
        add(b + "ffn_down.bias", (e,))
        norm(b + "layer_output_norm")
    if spec.reranker:
        add("cls.weight", (e, e))
        add("cls.bias", (e,))
        add("cls.output.weight", (e, spec.n_cls_out))
        add("cls.output.bias", (spec.n_cls_out,))
    return TinyModel(spec, kv, tensors)  # type: ignore[arg-type]


def spec_grid(seed: int = 0) -> list[BertSpec]:
    """The default parity slice: pooling types from the file, F16, a reranker."""
    base = BertSpec(seed=seed)
    return [
        base,
        replace(base, qtype=QT.F16, pooling="cls", token_types=False),
        replace(base, n_embd=96, n_head=3, n_ff=128, n_layer=3, pooling=""),
        replace(base, pooling="rank", reranker=True),
        replace(base, qtype=QT.F16, pooling="rank", reranker=True, n_cls_out=3),
    ]
