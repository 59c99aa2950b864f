"""Public API points: py.typed, Model as a context manager with a short repr, and the errors
Sampler and batch.split raise (pyggml errors that stay ValueError/TypeError)."""

from __future__ import annotations

import importlib.resources
import os

import numpy as np
import pytest

import pyggml
from pyggml.batch import Batch, BatchAllocr, split
from pyggml.errors import BatchError, PyggmlError, SamplerError, SamplerParamError
from pyggml.sampling import init_top_k


def test_package_is_typed():
    assert importlib.resources.files("pyggml").joinpath("py.typed").is_file()


def test_model_closes_as_a_context_manager(smollm2_path):
    with pyggml.Model.load(smollm2_path) as m:
        assert m.tensor("token_embd.weight") is not None
    with pytest.raises(KeyError):
        m.tensor("token_embd.weight")
    with pytest.raises(RuntimeError, match="inside"):
        with pyggml.Model.load(smollm2_path) as m2:
            raise RuntimeError("inside")
    with pytest.raises(KeyError):  # closed on the way out of an exception too
        m2.tensor("token_embd.weight")


def test_model_repr_is_short(smollm2_path):
    with pyggml.Model.load(smollm2_path) as m:
        r = repr(m)
    assert len(r) < 120, r
    assert os.path.basename(smollm2_path) in r and "arch=llama" in r and f"{len(m.tensors)} tensors" in r
    v = pyggml.Model.load(smollm2_path, vocab_only=True)
    assert "vocab only" in repr(v) and len(repr(v)) < 120


def test_sampler_errors_are_pyggml_errors():
    with pytest.raises(SamplerParamError) as e:
        pyggml.Sampler(16, tempreature=0.5)
    assert isinstance(e.value, PyggmlError) and isinstance(e.value, TypeError)
    with pytest.raises(SamplerError) as e:
        pyggml.Sampler(16, mirostat=3)
    assert isinstance(e.value, ValueError)
    logits = np.linspace(0, 1, 16, dtype=np.float32)
    with pytest.raises(SamplerError, match="selected no token"):
        pyggml.Sampler.chain([init_top_k(4)]).sample(logits)
    with pytest.raises(SamplerError, match="empty candidate array"):
        pyggml.Sampler(16).sample(np.zeros(0, np.float32))
    assert pyggml.SamplerError is SamplerError


def test_split_errors_are_batch_errors():
    a = BatchAllocr()
    a.init(Batch(tokens=[1, 2, 3], seq_ids=0).to_ext(n_seq_max=1, n_vocab=16))
    for mode in ("bogus", ["equal"], None):
        with pytest.raises(BatchError) as e:
            split(a, mode, 2)
        assert e.value.reason == "split-mode" and isinstance(e.value, ValueError)
    for n_ubatch in ("2", 2.0, None):
        with pytest.raises(BatchError) as e:
            split(a, "simple", n_ubatch)
        assert e.value.reason == "split-args"
    assert [u.n_tokens for u in split(a, "simple", np.int64(2))] == [2, 1]
