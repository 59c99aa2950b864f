"""Context parameters: ``llama_context_params``' defaults and what llama_context derives from them.

llama.cpp: src/llama-context.cpp ``llama_context_default_params`` and the constructor of
``llama_context`` (rope/YaRN factors in float32, flash attention, n_batch/n_ubatch, n_ctx padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType as QT

from ..errors import PyggmlError
from ..graph import CParams
from ..graph.builder import POOLING_CLS, POOLING_LAST, POOLING_MEAN, POOLING_NONE, POOLING_RANK
from ..memory.api import ContextSizes, context_sizes

GGML_DEFAULT_N_THREADS = 4
ROPE_SCALING_NONE, ROPE_SCALING_YARN = 0, 2  # enum llama_rope_scaling_type
_KV_TYPES = {"f32": QT.F32, "f16": QT.F16, "bf16": QT.BF16}
POOLING_TYPES = {"none": POOLING_NONE, "mean": POOLING_MEAN, "cls": POOLING_CLS, "last": POOLING_LAST,
                 "rank": POOLING_RANK}


class ContextError(PyggmlError, ValueError):
    """Context parameters the reference refuses (llama_init_from_model returns NULL)."""


@dataclass
class ContextParams:
    """``llama_context_params`` (the fields pyggml implements), with the reference's defaults.

    ``flash_attn``: None = auto (the reference resolves it to on for a CPU-only context),
    True = on, False = off.  ``pooling_type``: None = the model's (else none), or "none",
    "mean", "cls", "last", "rank" (or llama_pooling_type's numbers).
    ``type_k``/``type_v``: "f16" (default), "f32" or "bf16".
    """

    n_ctx: int = 512
    n_batch: int = 2048
    n_ubatch: int = 512
    n_seq_max: int = 1
    n_threads: int = GGML_DEFAULT_N_THREADS
    n_threads_batch: int = GGML_DEFAULT_N_THREADS
    kv_unified: bool = False
    flash_attn: bool | None = None
    type_k: str = "f16"
    type_v: str = "f16"
    swa_full: bool = True
    embeddings: bool = False
    pooling_type: str | int | None = None
    rope_freq_base: float = 0.0
    rope_freq_scale: float = 0.0
    rope_scaling_type: int = -1
    yarn_ext_factor: float = -1.0
    yarn_attn_factor: float = -1.0
    yarn_beta_fast: float = -1.0
    yarn_beta_slow: float = -1.0
    yarn_orig_ctx: int = 0
    abort_callback: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class Derived:
    """What the constructor computes: sizes, the graph's CParams, KV types."""

    sizes: ContextSizes
    type_k: int
    type_v: int
    v_trans: bool
    graph: CParams


def _f32(x: float) -> float:
    return float(np.float32(x))


def _kv_type(name: str, what: str) -> int:
    t = _KV_TYPES.get(str(name).lower())
    if t is None:
        raise ContextError(
            f"{what} = {name!r}: pyggml supports f32, f16 and bf16 KV caches "
            "(quantized caches need the Hadamard rotation, not implemented yet)"
        )
    return int(t)


def _pooling_type(value: str | int | None, model_default: int) -> int:
    """UNSPECIFIED (None, -1) takes the model's pooling type, and NONE where it has none."""
    if value is None or value == -1:
        return max(model_default, 0)
    if isinstance(value, str):
        if value.lower() not in POOLING_TYPES:
            raise ContextError(f"pooling_type = {value!r}: one of {', '.join(POOLING_TYPES)}")
        return POOLING_TYPES[value.lower()]
    if value not in POOLING_TYPES.values():
        raise ContextError(f"pooling_type = {value!r}: -1 .. 4 (enum llama_pooling_type)")
    return int(value)


def _check_reserve(cp: CParams, sizes: ContextSizes, hp: Any, n_seq_max: int) -> None:
    """A quirk of the reference's constructor: its worst-case graph reserve rounds
    min(n_ctx, n_ubatch) tokens up to a multiple of n_seq_max but keeps that many outputs, so
    with mean pooling the pooling product has mismatched shapes and the process aborts
    (GGML_ASSERT(ggml_can_mul_mat(a, b)) in llama_init_from_model)."""
    pt = cp.pooling_type
    mean = pt == POOLING_MEAN or (pt == POOLING_RANK and hp.pooling_type_cls == POOLING_MEAN)
    n_tokens = min(sizes.n_ctx, sizes.n_ubatch)
    if cp.embeddings and mean and n_seq_max > 0 and n_tokens % n_seq_max:
        raise ContextError(
            f"the reference aborts: mean pooling with min(n_ctx, n_ubatch) = {n_tokens} not a multiple "
            f"of n_seq_max = {n_seq_max} (GGML_ASSERT(ggml_can_mul_mat(a, b)) in its graph reserve)"
        )


def derive(p: ContextParams, hp: Any) -> Derived:
    """The llama_context constructor's derivations for a model with hparams ``hp``."""
    for name in ("n_ctx", "n_batch", "n_ubatch", "n_seq_max", "n_threads", "n_threads_batch"):
        v = getattr(p, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ContextError(f"{name} must be a non-negative int, got {v!r}")
    if p.n_threads < 1 or p.n_threads_batch < 1:
        raise ContextError("n_threads and n_threads_batch must be >= 1")
    causal = hp.causal_attn
    sizes = context_sizes(
        n_ctx=p.n_ctx,
        n_ctx_train=hp.n_ctx_train,
        n_seq_max=p.n_seq_max,
        kv_unified=p.kv_unified,
        n_batch=p.n_batch,
        n_ubatch=p.n_ubatch,
        causal_attn=causal,
    )
    freq_base = hp.rope_freq_base_train if p.rope_freq_base == 0.0 else _f32(p.rope_freq_base)
    freq_scale = hp.rope_freq_scale_train if p.rope_freq_scale == 0.0 else _f32(p.rope_freq_scale)
    n_ctx_orig = p.yarn_orig_ctx or hp.n_ctx_orig_yarn or hp.n_ctx_train
    scaling = hp.rope_scaling_type_train if p.rope_scaling_type == -1 else p.rope_scaling_type
    if scaling == ROPE_SCALING_NONE:
        freq_scale = 1.0  # never scale if scaling type is none
    # llama hparams keep the YaRN defaults (ext -1, attn 1, beta 32 / 1)
    ext = _f32(p.yarn_ext_factor) if p.yarn_ext_factor >= 0 else -1.0
    attn = _f32(p.yarn_attn_factor) if p.yarn_attn_factor >= 0 else 1.0
    beta_fast = _f32(p.yarn_beta_fast) if p.yarn_beta_fast >= 0 else 32.0
    beta_slow = _f32(p.yarn_beta_slow) if p.yarn_beta_slow >= 0 else 1.0
    if ext < 0:
        ext = 1.0 if scaling == ROPE_SCALING_YARN else 0.0
    if ext != 0:
        f32 = np.float32
        factor = f32(1.0) / f32(freq_scale)
        # get_mscale(factor, 1) = factor <= 1 ? 1 : 0.1 * logf(factor) + 1  (rope_yarn_log_mul == 0)
        mscale = f32(1.0) if factor <= 1 else f32(0.1) * f32(math.log(factor)) + f32(1.0)
        attn = float(mscale * (f32(1.0) / (f32(1.0) + f32(0.1) * f32(math.log(factor)))))
    attn = _f32(attn * hp.rope_attn_factor)
    # AUTO resolves to on: the FA node always lands on the layer's device with one CPU backend
    flash = True if p.flash_attn is None else bool(p.flash_attn)
    type_k, type_v = _kv_type(p.type_k, "type_k"), _kv_type(p.type_v, "type_v")
    graph = CParams(
        n_ctx=sizes.n_ctx,
        n_ctx_seq=sizes.n_ctx_seq,
        n_ctx_orig_yarn=n_ctx_orig,
        rope_freq_base=_f32(freq_base),
        rope_freq_scale=_f32(freq_scale),
        yarn_ext_factor=_f32(ext),
        yarn_attn_factor=attn,
        yarn_beta_fast=beta_fast,
        yarn_beta_slow=beta_slow,
        flash_attn=flash,
        causal_attn=causal,
        embeddings=bool(p.embeddings),
        kv_unified=bool(p.kv_unified),
        pooling_type=_pooling_type(p.pooling_type, hp.pooling_type),
    )
    _check_reserve(graph, sizes, hp, p.n_seq_max)
    # the memory is created before AUTO resolves, from "not disabled": V stays untransposed
    v_trans = p.flash_attn is False
    return Derived(
        sizes=sizes,
        type_k=type_k,
        type_v=type_v,
        v_trans=v_trans,
        graph=graph,
    )
