"""pyggml.Model.load against the running reference (llama_model_load_from_file via the probe,
in the isolated worker): outcome, message, progress, hparams, tensors and their bytes."""

from __future__ import annotations

from dataclasses import replace

import pytest
from gguf import GGMLQuantizationType as QT
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.parity import first_difference
from pyggml.parity import loader as L
from pyggml.parity import tinymodels as tm


def same(path, **kw):
    ours, ref = L.ours(path, **kw), L.reference(path, **kw)
    assert first_difference(ours, ref) is None, first_difference(ours, ref)
    return ref


def test_smollm2(smollm2_path):
    ref = same(smollm2_path)
    assert ref["outcome"] == "ok" and len(ref["tensors"]) == 272
    assert same(smollm2_path, cancel_after=3)["outcome"] == "cancelled"


@pytest.mark.parametrize("spec", tm.spec_grid()[:5], ids=lambda s: s.tag)
def test_tiny_models(tmp_path, spec):
    path = tm.write(tm.build(spec), tmp_path, spec.tag)
    assert same(path)["outcome"] == "ok"
    assert same(path, use_mmap=False, check_tensors=True)["outcome"] == "ok"


@pytest.mark.parametrize("name", ["missing-rms_eps", "type-context_length-i32", "arr-head_count-length",
                                  "bad-n_rot", "block_count-0", "wrong-shape", "extra-tensor",
                                  "invalid-f32-check"])
def test_broken(tmp_path, name):
    mutate, kw = L.BROKEN[name]
    m = tm.build(tm.TinySpec())
    mutate(m)
    ref = same(tm.write(m, tmp_path, name), **kw)
    assert ref["outcome"] == ("aborted" if name == "block_count-0" else "error")


# mutations the differential test draws from (none that abort: a worker restart costs ~1 s)
_MUTATIONS = ["missing-context_length", "missing-tokenizer_model", "type-freq_base-f64", "type-causal-u8",
              "arr-head_count_kv-length", "arr-head_count-f32", "arr-ff-bool", "key_length-mismatch",
              "rope_scaling-yarn", "rope_scale_linear", "pooling-type", "classifier-labels",
              "missing-tensor", "wrong-shape-1d", "unknown-arch"]


@settings(derandomize=True, max_examples=25, deadline=None)
@given(
    n_embd_heads=st.sampled_from([(32, 1, 1), (32, 2, 1), (64, 4, 2), (64, 2, 2), (96, 3, 1)]),
    n_layer=st.integers(1, 3),
    n_ff=st.sampled_from([32, 64, 96]),
    qtype=st.sampled_from([QT.F32, QT.F16, QT.Q8_0, QT.Q4_0]),
    tied=st.booleans(), bias=st.booleans(), head_arrays=st.booleans(),
    n_split=st.sampled_from([1, 1, 2, 3]),
    mutation=st.one_of(st.none(), st.sampled_from(_MUTATIONS)),
    use_mmap=st.booleans(),
    cancel_after=st.sampled_from([-1, -1, -1, 0, 4]),
)
def test_differential(tmp_path_factory, n_embd_heads, n_layer, n_ff, qtype, tied, bias, head_arrays,
                      n_split, mutation, use_mmap, cancel_after):
    n_embd, n_head, n_head_kv = n_embd_heads
    spec = replace(tm.TinySpec(), n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv, n_layer=n_layer,
                   n_ff=n_ff, qtype=qtype, tied=tied, bias=bias, head_arrays=head_arrays,
                   n_split=min(n_split, n_layer))
    m = tm.build(spec)
    kw: dict = {"use_mmap": use_mmap, "cancel_after": cancel_after}
    if mutation is not None:
        mutate, extra = L.BROKEN[mutation]
        try:
            mutate(m)
        except StopIteration:  # the tensor it targets is not in this shape
            pass
        kw.update(extra)
    path = tm.write(m, tmp_path_factory.mktemp("d"), "m")
    same(path, **kw)


# the examples: the reference fails these loads in its vocab step, and so must pyggml
_TOKENIZER_FAILS = {
    "model/value=cpt2": "error loading model vocabulary: unknown tokenizer: 'cpt2'",
    "tokens/renamed": "error loading model vocabulary: cannot find tokenizer vocab in model file",
    "model/key-bad-utf8": "error loading model vocabulary: key not found in model: tokenizer.ggml.model",
    "pre/value=bogus": None,  # SPM ignores the pre-tokenizer: loads
    "bos_token_id/type-i32": "error loading model vocabulary: key tokenizer.ggml.bos_token_id has wrong "
                             "type i32 but expected type u32",
    "model/value=bert": "aborted",  # a byte token's piece in a WPM vocab: GGML_ABORT at load
    "tokens/nul-makes-duplicate": "aborted",
    "chat_template/type-u32": None,  # not read by the load
}


@pytest.mark.parametrize("name", list(_TOKENIZER_FAILS))
@pytest.mark.parametrize("vocab_only", [True, False])
def test_tokenizer_mutants(tmp_path, name, vocab_only):
    m = dict(L.tokenizer_mutants(tm.TinySpec()))[name]
    ref = same(tm.write(m, tmp_path, "t"), vocab_only=vocab_only)
    want = _TOKENIZER_FAILS[name]
    if want is None:
        assert ref["outcome"] == "ok"
    elif want == "aborted":
        assert ref["outcome"] == "aborted"
    else:
        assert (ref["outcome"], ref["message"]) == ("error", want)
