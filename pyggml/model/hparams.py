"""Metadata -> typed hyper-parameters of the llama architecture, and the tokenizer keys.

Mirrors llama.cpp's ``llama_model_loader::get_key/get_arr/get_arr_n/get_key_or_arr``
(src/llama-model-loader.cpp) and ``llama_model_base::load_hparams`` (src/llama-model.cpp)
+ ``llama_model_llama::load_arch_hparams`` (src/models/llama.cpp): same keys, same defaults,
same error texts.  A check the reference makes with ``GGML_ASSERT`` (the process aborts)
raises ``LoadAbortError`` here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from gguf import GGUFValueType as VT

from ..errors import LoadAbortError, LoadError
from .gguf_types import KV

LLAMA_MAX_LAYERS = 512     # llama.cpp: src/llama-hparams.h
LLAMA_MAX_EXPERTS = 1024

# llama.cpp: ggml/src/gguf.cpp GGUF_TYPE_NAME
TYPE_NAME: dict[VT, str] = {
    VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32",
    VT.INT32: "i32", VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "str", VT.ARRAY: "arr",
    VT.UINT64: "u64", VT.INT64: "i64", VT.FLOAT64: "f64",
}


class KEY:
    """Key templates of LLM_KV_NAMES (src/llama-arch.cpp), formatted with the architecture.

    Spelled out rather than taken from ``gguf.Keys`` because the installed ``gguf`` may
    predate some of them; the strings are the same as gguf.Keys where both exist."""

    GENERAL_ARCHITECTURE = "general.architecture"
    GENERAL_NAME = "general.name"
    GENERAL_FILE_TYPE = "general.file_type"
    SPLIT_NO = "split.no"
    SPLIT_COUNT = "split.count"
    SPLIT_TENSORS_COUNT = "split.tensors.count"
    VOCAB_SIZE = "{arch}.vocab_size"
    CONTEXT_LENGTH = "{arch}.context_length"
    EMBEDDING_LENGTH = "{arch}.embedding_length"
    EMBEDDING_LENGTH_OUT = "{arch}.embedding_length_out"
    BLOCK_COUNT = "{arch}.block_count"
    FEED_FORWARD_LENGTH = "{arch}.feed_forward_length"
    EXPERT_COUNT = "{arch}.expert_count"
    EXPERT_USED_COUNT = "{arch}.expert_used_count"
    EXPERT_GROUP_COUNT = "{arch}.expert_group_count"
    EXPERT_GROUP_USED_COUNT = "{arch}.expert_group_used_count"
    NEXTN_PREDICT_LAYERS = "{arch}.nextn_predict_layers"
    POOLING_TYPE = "{arch}.pooling_type"
    CLASSIFIER_POOLING_TYPE = "{arch}.classifier.pooling_type"
    CLASSIFIER_OUTPUT_LABELS = "{arch}.classifier.output_labels"
    ATTENTION_HEAD_COUNT = "{arch}.attention.head_count"
    ATTENTION_HEAD_COUNT_KV = "{arch}.attention.head_count_kv"
    ATTENTION_KEY_LENGTH = "{arch}.attention.key_length"
    ATTENTION_VALUE_LENGTH = "{arch}.attention.value_length"
    ATTENTION_KEY_LENGTH_SWA = "{arch}.attention.key_length_swa"
    ATTENTION_VALUE_LENGTH_SWA = "{arch}.attention.value_length_swa"
    ATTENTION_LAYERNORM_RMS_EPS = "{arch}.attention.layer_norm_rms_epsilon"
    ATTENTION_LAYERNORM_EPS = "{arch}.attention.layer_norm_epsilon"
    ATTENTION_CAUSAL = "{arch}.attention.causal"
    ROPE_DIMENSION_COUNT = "{arch}.rope.dimension_count"
    ROPE_DIMENSION_COUNT_SWA = "{arch}.rope.dimension_count_swa"
    ROPE_FREQ_BASE = "{arch}.rope.freq_base"
    ROPE_SCALE_LINEAR = "{arch}.rope.scale_linear"
    ROPE_SCALING_TYPE = "{arch}.rope.scaling.type"
    ROPE_SCALING_FACTOR = "{arch}.rope.scaling.factor"
    ROPE_SCALING_ATTN_FACTOR = "{arch}.rope.scaling.attn_factor"
    ROPE_SCALING_ALPHA = "{arch}.rope.scaling.alpha"
    ROPE_SCALING_ORIG_CTX_LEN = "{arch}.rope.scaling.original_context_length"
    ROPE_SCALING_FINETUNED = "{arch}.rope.scaling.finetuned"
    ROPE_FREQ_BASE_SWA = "{arch}.rope.freq_base_swa"
    ATTENTION_SLIDING_WINDOW = "{arch}.attention.sliding_window"
    ATTENTION_SLIDING_WINDOW_PATTERN = "{arch}.attention.sliding_window_pattern"
    FINAL_LOGIT_SOFTCAPPING = "{arch}.final_logit_softcapping"
    TOKENIZER_MODEL = "tokenizer.ggml.model"
    TOKENIZER_PRE = "tokenizer.ggml.pre"
    TOKENIZER_LIST = "tokenizer.ggml.tokens"
    TOKENIZER_TOKEN_TYPE_COUNT = "tokenizer.ggml.token_type_count"


# llama.cpp: src/llama-model.cpp LLAMA_ROPE_SCALING_TYPES; include/llama.h enum values
ROPE_SCALING_TYPES = {"none": 0, "linear": 1, "yarn": 2, "longrope": 3}
POOLING_TYPE_UNSPECIFIED = -1
ROPE_TYPE_NORM = 0          # llama_model_rope_type(LLM_ARCH_LLAMA)
SWA_TYPE_STANDARD = 1       # enum llama_swa_type
ROPE_TYPE_NEOX = 2          # llama_model_rope_type(LLM_ARCH_BERT)


class Metadata:
    """Typed access to GGUF key/values with llama_model_loader's rules and error texts."""

    def __init__(self, kvs: list[KV], arch: str = "") -> None:
        self.arch = arch
        self._kv: dict[str, KV] = {}
        for kv in kvs:
            # gguf_find_key returns the first match (duplicates are rejected by the parser)
            self._kv.setdefault(_key_str(kv.key), kv)

    def key(self, template: str) -> str:
        return template.format(arch=self.arch)

    def find(self, key: str) -> KV | None:
        return self._kv.get(key)

    def get(self, template: str, vtype: VT, *, required: bool = False) -> Any:
        """llama_model_loader::get_key: the exact GGUF type or an error; None when absent."""
        key = self.key(template)
        kv = self._kv.get(key)
        if kv is None:
            if required:
                raise LoadError(f"key not found in model: {key}", key=key)
            return None
        if kv.type != vtype:
            raise LoadError(f"key {key} has wrong type {TYPE_NAME[kv.type]} but expected type "
                            f"{TYPE_NAME[vtype]}", key=key)
        return _decode(kv.value) if vtype == VT.STRING else kv.value

    def arr_n(self, template: str) -> int | None:
        """llama_model_loader::get_arr_n (optional): the array's length."""
        key = self.key(template)
        kv = self._kv.get(key)
        if kv is None:
            return None
        if kv.type != VT.ARRAY:
            raise LoadError(f"key {key} has wrong type {TYPE_NAME[kv.type]} but expected type arr",
                            key=key)
        return len(kv.value)

    def str_arr(self, template: str) -> list[str] | None:
        """llama_model_loader::get_arr into a std::vector<std::string> (optional)."""
        key = self.key(template)
        kv = self._kv.get(key)
        if kv is None or kv.type != VT.ARRAY:
            return None
        _check_arr_type(key, kv, VT.STRING, allow_bool=False)
        return [_decode(v) for v in kv.value]

    def u32_or_arr(self, template: str, n: int) -> list[int] | None:
        """llama_model_loader::get_key_or_arr into std::array<uint32_t, LLAMA_MAX_LAYERS>."""
        key = self.key(template)
        kv = self._kv.get(key)
        if kv is None:
            return None
        if n > LLAMA_MAX_LAYERS:
            raise LoadError(f"n > N_MAX: {n} > {LLAMA_MAX_LAYERS} for key {key}", key=key)
        if kv.type == VT.ARRAY:
            if len(kv.value) != n:
                raise LoadError(f"key {key} has wrong array length; expected {n}, got {len(kv.value)}",
                                key=key)
            _check_arr_type(key, kv, VT.UINT32, allow_bool=True)
            # i32/bool elements are reinterpreted as uint32 (std::copy / x != 0)
            if kv.arr_type == VT.BOOL:
                return [int(bool(v)) for v in kv.value]
            return [int(v) & 0xFFFFFFFF for v in kv.value]
        value = self.get(template, VT.UINT32)
        return [value] * n


def _check_arr_type(key: str, kv: KV, want: VT, *, allow_bool: bool) -> None:
    # llama.cpp: llama_model_loader::get_arr, element type switch
    gt = kv.arr_type
    if gt in (VT.UINT32, VT.INT32) or (allow_bool and gt == VT.BOOL):
        ok = want == VT.UINT32
    elif gt in (VT.UINT64, VT.FLOAT32, VT.STRING):
        ok = want == gt
    else:
        raise LoadError(f"{key} is not a string/float32/uint32/int32/uint64 array", key=key)
    if not ok:
        raise LoadError(f"{key} has wrong array element type {TYPE_NAME[gt]}", key=key)


def _key_str(key: bytes | str) -> str:
    if isinstance(key, str):
        return key
    nul = key.find(b"\0")  # C strings: a key compares up to its first NUL
    return (key if nul < 0 else key[:nul]).decode("utf-8", "surrogateescape")


def _decode(v: bytes | str) -> str:
    # gguf_get_val_str/gguf_get_arr_str hand out C strings: a value ends at its first NUL
    if isinstance(v, str):
        return v.split("\0", 1)[0]
    return v.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _f32(x: float) -> float:
    return float(np.float32(x))


@dataclass(frozen=True)
class LlamaHParams:
    """Hyper-parameters of LLM_ARCH_LLAMA as llama_hparams holds them after load_hparams.

    Per-layer fields are tuples of length ``n_layer``; floats are float32 values."""

    name: str
    n_ctx_train: int
    n_embd: int
    n_embd_out: int
    n_layer: int
    n_layer_nextn: int
    n_expert: int
    n_expert_used: tuple[int, ...]
    n_expert_groups: int
    n_group_used: int
    n_head: tuple[int, ...]
    n_head_kv: tuple[int, ...]
    n_ff: tuple[int, ...]
    n_rot: int
    n_embd_head_k: int
    n_embd_head_v: int
    n_rot_swa: int
    n_embd_head_k_swa: int
    n_embd_head_v_swa: int
    f_norm_rms_eps: float
    rope_freq_base_train: float
    rope_freq_scale_train: float
    rope_scaling_type_train: int
    rope_attn_factor: float
    rope_scaling_alpha: float
    rope_finetuned: bool
    n_ctx_orig_yarn: int
    causal_attn: bool
    pooling_type: int
    pooling_type_cls: int
    rope_type: int
    use_alibi: bool
    n_cls_out: int
    classifier_labels: tuple[str, ...]
    n_vocab: int
    # llama_hparams defaults that LLM_ARCH_LLAMA never reads from the GGUF (the MoE graph uses
    # them: no weights scale (0.0); its norm_w is a constant true, not expert_weights_norm)
    expert_weights_scale: float = 0.0
    expert_weights_norm: bool = False
    # sliding-window attention and the gemma3 extras (llama_hparams defaults when absent)
    swa_type: int = 0
    n_swa: int = 0
    swa_layers: tuple[bool, ...] = ()
    rope_freq_base_train_swa: float = 10000.0
    rope_freq_scale_train_swa: float = 1.0
    f_final_logit_softcapping: float = 0.0
    f_attention_scale: float = 0.0
    # LLM_ARCH_BERT: the LayerNorm epsilon and the vocab's token-type count (tokenizer key)
    f_norm_eps: float = 0.0
    n_token_types: int = 0

    def is_swa(self, il: int) -> bool:
        """llama_hparams::is_swa: layer il attends over a sliding window."""
        return bool(self.swa_layers) and self.swa_layers[il]

    # llama_model's convenience names
    @property
    def n_embd_k_gqa(self) -> int:
        return self.n_embd_head_k * self.n_head_kv[0]

    @property
    def n_embd_v_gqa(self) -> int:
        return self.n_embd_head_v * self.n_head_kv[0]


def _abort(cond: bool, what: str) -> None:
    if not cond:
        raise LoadAbortError(f"GGML_ASSERT({what}) failed")


def load_llama_hparams(meta: Metadata, name: str) -> LlamaHParams:
    """llama_model_base::load_hparams + load_arch_hparams of llama or bert, in their order.

    Raises LoadError with the reference's message (without the "error loading model
    hyperparameters: " prefix, which the loader adds), LoadAbortError where it asserts."""
    K = KEY
    n_ctx_train = meta.get(K.CONTEXT_LENGTH, VT.UINT32, required=True)
    n_embd = meta.get(K.EMBEDDING_LENGTH, VT.UINT32, required=True)
    n_embd_out = _opt(meta.get(K.EMBEDDING_LENGTH_OUT, VT.UINT32), 0)
    causal_attn = _opt(meta.get(K.ATTENTION_CAUSAL, VT.BOOL), True)
    # the enum specialisation of get_key writes UNSPECIFIED when the key is absent
    pooling_type = _opt(meta.get(K.POOLING_TYPE, VT.UINT32), POOLING_TYPE_UNSPECIFIED)
    pooling_type_cls = _opt(meta.get(K.CLASSIFIER_POOLING_TYPE, VT.UINT32), POOLING_TYPE_UNSPECIFIED)
    n_layer = meta.get(K.BLOCK_COUNT, VT.UINT32, required=True)
    _abort(0 < n_layer <= LLAMA_MAX_LAYERS,
           "hparams.n_layer_all > 0 && hparams.n_layer_all <= LLAMA_MAX_LAYERS")
    n_layer_nextn = _opt(meta.get(K.NEXTN_PREDICT_LAYERS, VT.UINT32), 0)
    _abort(n_layer_nextn <= n_layer, "hparams.n_layer_nextn <= hparams.n_layer_all")
    n_expert = _opt(meta.get(K.EXPERT_COUNT, VT.UINT32), 0)
    n_expert_used = meta.u32_or_arr(K.EXPERT_USED_COUNT, n_layer) or [0] * n_layer
    n_expert_groups = _opt(meta.get(K.EXPERT_GROUP_COUNT, VT.UINT32), 0)
    n_group_used = _opt(meta.get(K.EXPERT_GROUP_USED_COUNT, VT.UINT32), 0)

    used_max = max(n_expert_used)
    _abort(n_expert <= LLAMA_MAX_EXPERTS, "hparams.n_expert <= LLAMA_MAX_EXPERTS")
    _abort(used_max <= n_expert, "n_expert_used_max <= hparams.n_expert")
    if n_expert > 0:
        _abort(used_max > 0, "n_expert_used_max > 0")
        _abort(n_expert_groups < n_expert, "hparams.n_expert_groups < hparams.n_expert")
        if n_expert_groups > 1:
            _abort(n_expert % n_expert_groups == 0, "hparams.n_expert % hparams.n_expert_groups == 0")
            _abort(n_group_used > 0, "hparams.n_group_used > 0")
            _abort(n_group_used < n_expert_groups, "hparams.n_group_used < hparams.n_expert_groups")
    else:
        _abort(used_max == 0, "n_expert_used_max == 0")
        _abort(n_expert_groups == 0, "hparams.n_expert_groups == 0")

    n_ff = meta.u32_or_arr(K.FEED_FORWARD_LENGTH, n_layer) or [0] * n_layer
    n_head = meta.u32_or_arr(K.ATTENTION_HEAD_COUNT, n_layer) or [0] * n_layer
    n_head_kv = meta.u32_or_arr(K.ATTENTION_HEAD_COUNT_KV, n_layer) or list(n_head)

    rope_finetuned = _opt(meta.get(K.ROPE_SCALING_FINETUNED, VT.BOOL), False)
    n_ctx_orig_yarn = _opt(meta.get(K.ROPE_SCALING_ORIG_CTX_LEN, VT.UINT32), n_ctx_train)
    rope_freq_base = _opt(meta.get(K.ROPE_FREQ_BASE, VT.FLOAT32), 10000.0)
    scaling = _opt(meta.get(K.ROPE_SCALING_TYPE, VT.STRING), "linear")
    rope_scaling_type = ROPE_SCALING_TYPES.get(scaling, -1)
    _abort(rope_scaling_type != -1, "hparams.rope_scaling_type_train != LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED")
    ropescale = meta.get(K.ROPE_SCALING_FACTOR, VT.FLOAT32)
    if ropescale is None:  # the old key name
        ropescale = _opt(meta.get(K.ROPE_SCALE_LINEAR, VT.FLOAT32), 0.0)
    freq_scale = 1.0 if ropescale == 0.0 else float(np.float32(1.0) / np.float32(ropescale))
    rope_attn_factor = _opt(meta.get(K.ROPE_SCALING_ATTN_FACTOR, VT.FLOAT32), 1.0)
    rope_scaling_alpha = _opt(meta.get(K.ROPE_SCALING_ALPHA, VT.FLOAT32), 0.0)

    if n_head[0] > 0:
        head_k = _opt(meta.get(K.ATTENTION_KEY_LENGTH, VT.UINT32), n_embd // n_head[0])
        head_v = _opt(meta.get(K.ATTENTION_VALUE_LENGTH, VT.UINT32), n_embd // n_head[0])
        n_rot = _opt(meta.get(K.ROPE_DIMENSION_COUNT, VT.UINT32), head_k)
        if meta.arch == "llama" and n_rot != head_k:  # LLM_ARCH_LLAMA requires a full rotary dimension
            raise LoadError(f"invalid n_rot: {n_rot}, expected {head_k}")
    else:
        head_k = head_v = n_rot = 0
    head_k_swa = _opt(meta.get(K.ATTENTION_KEY_LENGTH_SWA, VT.UINT32), head_k)
    head_v_swa = _opt(meta.get(K.ATTENTION_VALUE_LENGTH_SWA, VT.UINT32), head_v)
    n_rot_swa = _opt(meta.get(K.ROPE_DIMENSION_COUNT_SWA, VT.UINT32), n_rot)

    labels = meta.str_arr(K.CLASSIFIER_OUTPUT_LABELS) or []
    n_cls_out = len(labels) if labels else 1

    n_vocab = meta.get(K.VOCAB_SIZE, VT.UINT32)
    if n_vocab is None:
        n_vocab = _opt(meta.arr_n(K.TOKENIZER_LIST), 0)
    # load_arch_hparams: llama reads the RMS epsilon, bert the LayerNorm one
    arch: dict[str, Any] = {"f_norm_rms_eps": 0.0, "rope_type": ROPE_TYPE_NORM}
    if meta.arch == "bert":
        arch["f_norm_eps"] = _f32(meta.get(K.ATTENTION_LAYERNORM_EPS, VT.FLOAT32, required=True))
        arch["rope_type"] = ROPE_TYPE_NEOX
        # llama_vocab::load; bert's n_vocab is the vocab's token count
        arch["n_token_types"] = _opt(meta.get(K.TOKENIZER_TOKEN_TYPE_COUNT, VT.UINT32), 0)
        n_vocab = _opt(meta.arr_n(K.TOKENIZER_LIST), 0)
    else:
        arch["f_norm_rms_eps"] = _f32(meta.get(K.ATTENTION_LAYERNORM_RMS_EPS, VT.FLOAT32, required=True))

    return LlamaHParams(
        name=name, n_ctx_train=n_ctx_train, n_embd=n_embd, n_embd_out=n_embd_out, n_layer=n_layer,
        n_layer_nextn=n_layer_nextn, n_expert=n_expert, n_expert_used=tuple(n_expert_used),
        n_expert_groups=n_expert_groups, n_group_used=n_group_used, n_head=tuple(n_head),
        n_head_kv=tuple(n_head_kv), n_ff=tuple(n_ff), n_rot=n_rot, n_embd_head_k=head_k,
        n_embd_head_v=head_v, n_rot_swa=n_rot_swa, n_embd_head_k_swa=head_k_swa,
        n_embd_head_v_swa=head_v_swa,
        rope_freq_base_train=_f32(rope_freq_base), rope_freq_scale_train=_f32(freq_scale),
        rope_scaling_type_train=rope_scaling_type, rope_attn_factor=_f32(rope_attn_factor),
        rope_scaling_alpha=_f32(rope_scaling_alpha), rope_finetuned=bool(rope_finetuned),
        n_ctx_orig_yarn=n_ctx_orig_yarn, causal_attn=bool(causal_attn), pooling_type=pooling_type,
        pooling_type_cls=pooling_type_cls, use_alibi=False,
        n_cls_out=n_cls_out, classifier_labels=tuple(labels), n_vocab=n_vocab, **arch,
    )


def _opt(value: Any, default: Any) -> Any:
    return default if value is None else value


def load_gemma3_hparams(meta: Metadata, name: str) -> LlamaHParams:
    """llama_model_base::load_hparams + llama_model_gemma3::load_arch_hparams: the sliding
    window (every layer but each 6th by default), its RoPE base, the final logit soft-capping and
    the attention scale Q is multiplied by."""
    K = KEY
    hp = load_llama_hparams(meta, name)  # the generic keys, then the same required rms eps
    n_layer = hp.n_layer
    n_swa = _opt(meta.get(K.ATTENTION_SLIDING_WINDOW, VT.UINT32), 0)
    swa_type, swa_layers, base_swa = 0, (False,) * n_layer, 10000.0
    if n_swa > 0:
        swa_type = SWA_TYPE_STANDARD
        swa_layers = _swa_pattern(meta, n_layer, 6)
        base_swa = _opt(meta.get(K.ROPE_FREQ_BASE_SWA, VT.FLOAT32), 10000.0)
    softcap = _opt(meta.get(K.FINAL_LOGIT_SOFTCAPPING, VT.FLOAT32), 0.0)
    f32 = np.float32
    # the 27B (62 layers) scales by the model width per head, the others by the head size
    d = hp.n_embd // hp.n_head[0] if n_layer == 62 else hp.n_embd_head_k
    scale = float(f32(1.0) / np.sqrt(f32(d)))
    return replace(hp, rope_type=ROPE_TYPE_NEOX, swa_type=swa_type, n_swa=n_swa, swa_layers=swa_layers,
                   rope_freq_base_train_swa=_f32(base_swa), f_final_logit_softcapping=_f32(softcap),
                   f_attention_scale=scale)


def _swa_pattern(meta: Metadata, n_layer: int, n_pattern: int) -> tuple[bool, ...]:
    """llama_model_base::load_swa_pattern (dense_first=false): a per-layer array, else layer il
    slides unless it is the last of each group of ``n_pattern`` (0: every layer slides)."""
    kv = meta.find(meta.key(KEY.ATTENTION_SLIDING_WINDOW_PATTERN))
    if kv is not None and kv.type == VT.ARRAY:
        flags = [bool(v) for v in kv.value][:n_layer]
        return tuple(flags + [False] * (n_layer - len(flags)))
    n = _opt(meta.get(KEY.ATTENTION_SLIDING_WINDOW_PATTERN, VT.UINT32), n_pattern)
    return tuple(n == 0 or il % n < n - 1 for il in range(n_layer))


@dataclass(frozen=True)
class TokenizerMeta:
    """The ``tokenizer.ggml.*`` keys the vocab reads (llama.cpp: llama_vocab::impl::load).

    Only the raw metadata: defaults per tokenizer type, special-token auto-detection and
    validation belong to the vocab.  ``None`` = key absent."""

    model: str
    pre: str | None
    n_tokens: int
    bos_id: int | None
    eos_id: int | None
    eot_id: int | None
    eom_id: int | None
    unk_id: int | None
    sep_id: int | None
    pad_id: int | None
    mask_id: int | None
    fim_pre_id: int | None
    fim_suf_id: int | None
    fim_mid_id: int | None
    fim_pad_id: int | None
    fim_rep_id: int | None
    fim_sep_id: int | None
    add_bos: bool | None
    add_eos: bool | None
    add_sep: bool | None
    add_space_prefix: bool | None
    remove_extra_whitespaces: bool | None
    chat_template: str | None


# field -> key suffix after "tokenizer.ggml." (LLM_KV_TOKENIZER_* in src/llama-arch.cpp)
_TOKEN_ID_KEYS = {
    "bos_id": "bos_token_id", "eos_id": "eos_token_id", "eot_id": "eot_token_id",
    "eom_id": "eom_token_id", "unk_id": "unknown_token_id", "sep_id": "seperator_token_id",
    "pad_id": "padding_token_id", "mask_id": "mask_token_id", "fim_pre_id": "fim_pre_token_id",
    "fim_suf_id": "fim_suf_token_id", "fim_mid_id": "fim_mid_token_id",
    "fim_pad_id": "fim_pad_token_id", "fim_rep_id": "fim_rep_token_id",
    "fim_sep_id": "fim_sep_token_id",
}
_FLAG_KEYS = {
    "add_bos": "add_bos_token", "add_eos": "add_eos_token", "add_sep": "add_sep_token",
    "add_space_prefix": "add_space_prefix", "remove_extra_whitespaces": "remove_extra_whitespaces",
}

# llama.cpp: include/llama.h enum llama_vocab_type, by tokenizer.ggml.model
VOCAB_TYPES = {"no_vocab": 0, "none": 0, "llama": 1, "gpt2": 2, "hybriddna": 2, "whitespace": 2,
               "gemma4": 2, "bert": 3, "t5": 4, "rwkv": 5, "plamo2": 6}


def load_tokenizer_meta(meta: Metadata) -> TokenizerMeta:
    """The tokenizer keys with get_key's type rules (u32 ids, bool flags)."""
    model = meta.get(KEY.TOKENIZER_MODEL, VT.STRING, required=True)
    fields: dict[str, Any] = {
        "model": model,
        "pre": meta.get(KEY.TOKENIZER_PRE, VT.STRING),
        "n_tokens": _opt(meta.arr_n(KEY.TOKENIZER_LIST), 0),
        # not read by the reference's load (llama_model_chat_template takes a string value only)
        "chat_template": _decode(tpl.value) if (tpl := meta._kv.get("tokenizer.chat_template")) is not None
        and tpl.type == VT.STRING else None,
    }
    for f, k in _TOKEN_ID_KEYS.items():
        fields[f] = meta.get("tokenizer.ggml." + k, VT.UINT32)
    for f, k in _FLAG_KEYS.items():
        fields[f] = meta.get("tokenizer.ggml." + k, VT.BOOL)
    return TokenizerMeta(**fields)


CHAT_TEMPLATE_KEY = b"tokenizer.chat_template"


def templates_from_kv(kv: Iterable[KV]) -> dict[str, str]:
    """``{"": default, "tool_use": ..., ...}`` from parsed key/values (string values only)."""
    out: dict[str, str] = {}
    for entry in kv:
        key = entry.key.split(b"\0", 1)[0]
        named = key == CHAT_TEMPLATE_KEY or key.startswith(CHAT_TEMPLATE_KEY + b".")
        if entry.type != VT.STRING or not named:
            continue
        name = key[len(CHAT_TEMPLATE_KEY) + 1:].decode("utf-8", "replace")
        out.setdefault(name, bytes(entry.value).decode("utf-8", "surrogateescape"))
    return out
