"""Unit tests of the metadata rules (llama_model_loader get_key/get_arr/get_key_or_arr) and the
llama hparams defaults.  Expected texts are the reference's format strings, filled in."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFValueType as VT

from pyggml.errors import LoadAbortError, LoadError
from pyggml.model.gguf_types import KV
from pyggml.model.hparams import Metadata, load_llama_hparams, load_tokenizer_meta


def kv(key: str, vtype: VT, value, arr_type: VT | None = None) -> KV:
    return KV(key.encode(), vtype, value, arr_type)


BASE = {
    "llama.context_length": (VT.UINT32, 256),
    "llama.embedding_length": (VT.UINT32, 64),
    "llama.block_count": (VT.UINT32, 2),
    "llama.attention.head_count": (VT.UINT32, 4),
    "llama.attention.layer_norm_rms_epsilon": (VT.FLOAT32, np.float32(1e-6)),
}


def meta(**changes) -> Metadata:
    d = {k: (*v, None) for k, v in BASE.items()}
    for k, v in changes.items():
        key = k.replace("__", ".")
        if v is None:
            d.pop(key, None)
        else:
            d[key] = v if len(v) == 3 else (*v, None)
    return Metadata([kv(k, *v) for k, v in d.items()], arch="llama")


def hp(**changes):
    return load_llama_hparams(meta(**changes), "m")


def test_defaults():
    h = hp()
    assert h.n_head == (4, 4) and h.n_head_kv == (4, 4)  # head_count_kv defaults to head_count
    assert h.n_ff == (0, 0) and h.n_expert_used == (0, 0)
    assert h.n_embd_head_k == h.n_embd_head_v == h.n_rot == 16
    assert h.rope_freq_base_train == 10000.0 and h.rope_freq_scale_train == 1.0
    assert h.rope_scaling_type_train == 1  # "linear"
    assert h.pooling_type == -1           # the enum get_key writes UNSPECIFIED when absent
    assert h.n_ctx_orig_yarn == 256 and h.causal_attn and h.n_cls_out == 1
    assert h.f_norm_rms_eps == float(np.float32(1e-6))


def test_missing_required_key():
    with pytest.raises(LoadError, match=r"^key not found in model: llama.context_length$"):
        hp(llama__context_length=None)
    with pytest.raises(LoadError, match=r"^key not found in model: llama.attention.layer_norm_rms_epsilon$"):
        hp(llama__attention__layer_norm_rms_epsilon=None)


def test_wrong_type_text():
    with pytest.raises(LoadError) as e:
        hp(llama__context_length=(VT.INT32, 5))
    assert str(e.value) == "key llama.context_length has wrong type i32 but expected type u32"
    with pytest.raises(LoadError, match="key llama.rope.freq_base has wrong type f64 but expected type f32"):
        hp(llama__rope__freq_base=(VT.FLOAT64, 1.0))


def test_key_or_arr_rules():
    h = hp(llama__attention__head_count=(VT.ARRAY, np.array([4, 2], np.int32), VT.INT32))
    assert h.n_head == (4, 2)
    h = hp(llama__feed_forward_length=(VT.ARRAY, np.array([-1, 3], np.int32), VT.INT32))
    assert h.n_ff == (0xFFFFFFFF, 3)  # i32 elements are reinterpreted as uint32
    h = hp(llama__feed_forward_length=(VT.ARRAY, np.array([True, False]), VT.BOOL))
    assert h.n_ff == (1, 0)
    with pytest.raises(LoadError, match=r"has wrong array length; expected 2, got 3"):
        hp(llama__attention__head_count=(VT.ARRAY, [4, 4, 4], VT.UINT32))
    with pytest.raises(LoadError, match=r"^llama.attention.head_count has wrong array element type f32$"):
        hp(llama__attention__head_count=(VT.ARRAY, [4.0, 4.0], VT.FLOAT32))
    with pytest.raises(LoadError, match=r"is not a string/float32/uint32/int32/uint64 array"):
        hp(llama__attention__head_count=(VT.ARRAY, [4, 4], VT.INT8))


def test_n_rot_check():
    with pytest.raises(LoadError, match=r"^invalid n_rot: 8, expected 16$"):
        hp(llama__rope__dimension_count=(VT.UINT32, 8))


@pytest.mark.parametrize("changes", [
    {"llama__block_count": (VT.UINT32, 0)},
    {"llama__block_count": (VT.UINT32, 513)},
    {"llama__rope__scaling__type": (VT.STRING, b"bogus")},
    {"llama__expert_used_count": (VT.UINT32, 1)},
    {"llama__nextn_predict_layers": (VT.UINT32, 3)},
])
def test_reference_asserts_raise(changes):
    with pytest.raises(LoadAbortError):
        hp(**changes)


def test_rope_scaling_factor_and_old_key():
    assert hp(llama__rope__scaling__factor=(VT.FLOAT32, 4.0)).rope_freq_scale_train == 0.25
    assert hp(llama__rope__scale_linear=(VT.FLOAT32, 2.0)).rope_freq_scale_train == 0.5
    assert hp(llama__rope__scaling__type=(VT.STRING, b"yarn")).rope_scaling_type_train == 2


def test_tokenizer_meta():
    m = Metadata([kv("tokenizer.ggml.model", VT.STRING, b"llama"),
                  kv("tokenizer.ggml.tokens", VT.ARRAY, [b"a", b"b"], VT.STRING),
                  kv("tokenizer.ggml.bos_token_id", VT.UINT32, 1),
                  kv("tokenizer.ggml.add_bos_token", VT.BOOL, True)])
    t = load_tokenizer_meta(m)
    assert (t.model, t.n_tokens, t.bos_id, t.eos_id, t.add_bos) == ("llama", 2, 1, None, True)
    with pytest.raises(LoadError, match="key not found in model: tokenizer.ggml.model"):
        load_tokenizer_meta(Metadata([]))
