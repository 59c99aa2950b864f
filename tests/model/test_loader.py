"""pyggml.Model.load on seeded tiny models: weights, splits, progress, cancellation, errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from gguf import GGMLQuantizationType as QT

import pyggml
from pyggml.errors import LoadError
from pyggml.parity import tinymodels as tm


def write(tmp_path, spec: tm.TinySpec, mutate=None):
    m = tm.build(spec)
    if mutate:
        mutate(m)
    return tm.write(m, tmp_path, spec.tag), m


@pytest.mark.parametrize("use_mmap", [True, False])
@pytest.mark.parametrize("qtype", [QT.F32, QT.F16, QT.Q8_0, QT.Q4_0])
def test_weights_equal_file_bytes(tmp_path, qtype, use_mmap):
    path, m = write(tmp_path, tm.TinySpec(qtype=qtype, bias=qtype == QT.Q8_0))
    # plain CPU buffers hold the file's bytes (an extra buffer type keeps its own layout)
    model = pyggml.Model.load(path, use_mmap=use_mmap, use_extra_bufts=False)
    try:
        assert {t.name for t in model.tensors} == {t.name for t in m.tensors}
        for t in m.tensors:
            assert model.tensor_data(t.name).tobytes() == t.data
            g = model.tensor(t.name)  # a ggml tensor over the backend buffer
            assert g.ne[: len(t.ne)] == t.ne and int(g.type) == int(t.type)
        assert model.hparams is not None and model.hparams.n_layer == 2
    finally:
        model.close()


def test_tied_output_and_order(tmp_path):
    path, _ = write(tmp_path, tm.TinySpec(tied=True))
    model = pyggml.Model.load(path)
    names = [t.name for t in model.tensors]
    # creation order (tensors_by_name): input, output, then layer by layer; no output.weight
    assert names[:2] == ["token_embd.weight", "output_norm.weight"] and "output.weight" not in names
    assert names[2].startswith("blk.0.")
    model.close()


def test_splits(tmp_path):
    spec = tm.TinySpec(n_split=3, n_layer=3, qtype=QT.F16)
    path, m = write(tmp_path, spec)
    assert path.name.endswith("-00001-of-00003.gguf")
    model = pyggml.Model.load(path, use_mmap=False)
    assert len(model.split_paths) == 3
    assert model.tensor_data("blk.2.ffn_up.weight").tobytes() == m.tensor("blk.2.ffn_up.weight").data
    model.close()
    with pytest.raises(LoadError, match="model must be loaded with the first split"):
        pyggml.Model.load(model.split_paths[1])


def test_progress_semantics(tmp_path):
    path, m = write(tmp_path, tm.TinySpec())
    seen: list[float] = []
    pyggml.Model.load(path, progress=lambda p: seen.append(p) or True).close()
    assert len(seen) == len(m.tensors) + 1           # once per tensor, then 1.0
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


@pytest.mark.parametrize("k", [0, 5, 21])  # 21 tensors: k=21 is the final 1.0 call
def test_cancel(tmp_path, k):
    path, m = write(tmp_path, tm.TinySpec())
    calls = []

    def cb(p):
        calls.append(p)
        return len(calls) <= k

    with pytest.raises(LoadError) as e:
        pyggml.Model.load(path, progress=cb)
    assert e.value.status == LoadError.CANCELLED and len(calls) == k + 1
    assert k < len(m.tensors) + 1


def test_shape_and_missing_errors(tmp_path):
    def reshape(m):
        t = m.tensor("blk.0.ffn_up.weight")
        t.ne = (t.ne[1], t.ne[0])

    path, _ = write(tmp_path, tm.TinySpec(), reshape)
    with pytest.raises(LoadError) as e:
        pyggml.Model.load(path)
    assert str(e.value) == ("check_tensor_dims: tensor 'blk.0.ffn_up.weight' has wrong shape; "
                            "expected     64,     96, got     96,     64,      1,      1")
    path, _ = write(tmp_path / "b", tm.TinySpec(), lambda m: m.drop_tensor("blk.1.attn_v.weight"))
    with pytest.raises(LoadError, match=r"^check_tensor_dims: tensor 'blk.1.attn_v.weight' not found$"):
        pyggml.Model.load(path)


def test_truncated_and_missing_file(tmp_path):
    path, _ = write(tmp_path, tm.TinySpec())
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(LoadError, match="data is not within the file bounds"):
        pyggml.Model.load(path)
    with pytest.raises(LoadError, match="failed to load model from"):
        pyggml.Model.load(tmp_path / "nope.gguf")


def test_check_tensors(tmp_path):
    def poison(m):
        t = m.tensor("blk.0.ffn_norm.weight")
        t.data = np.float32(np.inf).tobytes() + t.data[4:]

    path, _ = write(tmp_path, tm.TinySpec(), poison)
    pyggml.Model.load(path).close()  # not validated by default
    with pytest.raises(LoadError, match="^found tensors with invalid data$"):
        pyggml.Model.load(path, check_tensors=True)


def test_vocab_only(tmp_path):
    path, _ = write(tmp_path, replace(tm.TinySpec(), n_vocab=10))
    model = pyggml.Model.load(path, vocab_only=True)
    assert model.hparams is None and model.tensors == []
    assert model.tokenizer.model == "llama" and model.tokenizer.n_tokens == 10


def test_cli_load(tmp_path, capsys):
    from pyggml.cli import main

    path, _ = write(tmp_path, tm.TinySpec())
    assert main(["load", str(path), "-q"]) == 0
    assert "21 tensors" in capsys.readouterr().out
    assert main(["load", str(tmp_path / "missing.gguf"), "-q"]) == 1


def test_chat_templates_from_metadata(smollm2_path):
    from pyggml.chat import chat_templates
    from pyggml.model import Model

    model = Model.load(smollm2_path, vocab_only=True)
    assert model.chat_template is not None and "<|im_start|>" in model.chat_template
    assert model.chat_templates == chat_templates(smollm2_path)


def test_vocab_is_part_of_the_load(tmp_path):
    """The vocabulary is built by Model.load, as llama_model_load does: a tokenizer the
    reference refuses fails the load, with its message (vocab_only or not)."""
    def bad_model(m):
        m.set_kv("tokenizer.ggml.model", tm.VT.STRING, "cpt2")

    path, _ = write(tmp_path, tm.TinySpec(), bad_model)
    for vocab_only in (True, False):
        with pytest.raises(LoadError, match=r"^error loading model vocabulary: unknown tokenizer: 'cpt2'$"):
            pyggml.Model.load(path, vocab_only=vocab_only)
    good, _ = write(tmp_path / "ok", tm.TinySpec())
    with pyggml.Model.load(good, vocab_only=True) as model:
        assert model._vocab is not None and model.vocab.n_tokens == 40
