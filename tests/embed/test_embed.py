"""BERT encoders and pooling against the running reference (llama_encode through the probe):
unit behaviour, the converter, a slice of the ``embed`` parity component, and a randomized
differential test on tiny BERTs."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyggml
from pyggml.context import ContextError
from pyggml.errors import DecodeError
from pyggml.parity import Options, corpus, first_difference
from pyggml.parity import embed as pe
from pyggml.parity import tinybert as tb
from pyggml.reference.decode import RefContext, RefModel


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


@pytest.fixture(scope="module")
def tiny():
    path = pe.tiny_path(tb.BertSpec())
    m, r = pyggml.Model.load(path), RefModel(str(path))
    yield m, r
    m.close()
    r.close()


@pytest.fixture(scope="module")
def reranker():
    path = pe.tiny_path(tb.BertSpec(qtype=tb.QT.F16, pooling="rank", reranker=True, n_cls_out=3))
    m, r = pyggml.Model.load(path), RefModel(str(path))
    yield m, r
    m.close()
    r.close()


@pytest.fixture(scope="module")
def minilm():
    m = pyggml.Model.load(corpus.minilm_gguf())
    yield m
    m.close()


BATCH = {"tokens": [2, 7, 9, 11, 3, 2, 8, 3], "pos": [0, 1, 2, 3, 4, 0, 1, 2],
         "seq_ids": [[0]] * 5 + [[2]] * 3}


def _encode(ctx, b=BATCH):
    ctx.encode(pyggml.Batch(tokens=b["tokens"], pos=b["pos"], seq_ids=b["seq_ids"]))


# ---- unit -------------------------------------------------------------------------------------

def test_pooling_type_resolution(tiny):
    m, r = tiny
    for pooling in (None, "none", "mean", "cls", "last", 2):
        with pyggml.Context(m, embeddings=True, pooling_type=pooling) as ctx:
            cp = {} if pooling is None else {"pooling_type": pooling if isinstance(pooling, int)
                                             else tb.POOLING[pooling]}
            with RefContext(r, embeddings=True, **cp) as ref:
                assert ctx.cparams.pooling_type == ref.info["pooling_type"]
    with pytest.raises(ContextError):
        pyggml.Context(m, embeddings=True, pooling_type="max")
    # the reference aborts in its graph reserve (512 tokens are not a multiple of 3 sequences)
    with pytest.raises(ContextError, match="the reference aborts"):
        pyggml.Context(m, embeddings=True, n_seq_max=3)
    pyggml.Context(m, embeddings=True, n_seq_max=3, pooling_type="cls").close()


def test_encode_errors(tiny):
    m, _ = tiny
    with pyggml.Context(m, embeddings=True, n_ubatch=4, n_seq_max=4) as ctx:
        with pytest.raises(DecodeError) as e:
            ctx.encode(pyggml.Batch(tokens=[]))
        assert e.value.code == -1
        with pytest.raises(DecodeError) as e:  # the reference asserts: no micro-batching
            _encode(ctx)
        assert e.value.abort


def test_getters_and_decode_entry(tiny):
    m, _ = tiny
    with pyggml.Context(m, embeddings=True, pooling_type="mean", n_seq_max=4) as ctx:
        assert ctx.memory is None and ctx.kv is None
        ctx.decode(pyggml.Batch(tokens=BATCH["tokens"], pos=BATCH["pos"], seq_ids=BATCH["seq_ids"]))
        a = ctx.embeddings_seq(2)
        _encode(ctx)
        assert np.array_equal(_bits(a), _bits(ctx.embeddings_seq(2)))
        assert ctx.embeddings_seq(1) is None
        assert a.dtype == np.float32 and a.shape == (m.hparams.n_embd,)
    with pyggml.Context(m, embeddings=True, pooling_type="none", n_seq_max=4) as ctx:
        _encode(ctx)
        assert ctx.embeddings_seq(0) is None
        assert ctx.embeddings(-1).shape == (m.hparams.n_embd,)
        with pytest.raises(IndexError):
            ctx.embeddings(len(BATCH["tokens"]))


def test_rank_scores(reranker):
    m, r = reranker
    cp = {"embeddings": True, "n_seq_max": 4}
    with pyggml.Context(m, **cp) as ctx, RefContext(r, **cp) as ref:
        _encode(ctx)
        assert ref.encode(BATCH["tokens"], pos=BATCH["pos"], seq_ids=BATCH["seq_ids"]) == 0
        for s in (0, 2):
            ours = ctx.embeddings_seq(s)
            assert ours.shape == (3,)
            assert np.array_equal(_bits(ours), _bits(ref.embeddings_seq(s)))


def test_minilm_similarity(minilm):
    sents = ["The cat sits on the mat.", "A cat is sitting on a rug.", "Stock markets fell sharply."]
    toks = [minilm.vocab.tokenize(s) for s in sents]
    batch = pyggml.Batch(tokens=[t for ts in toks for t in ts],
                         seq_ids=[[k] for k, ts in enumerate(toks) for _ in ts])
    with pyggml.Context(minilm, embeddings=True, n_seq_max=4) as ctx:
        ctx.encode(batch)
        e = np.stack([ctx.embeddings_seq(k) for k in range(3)])
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[1, 2]


def test_convert_cli_matches_the_cached_file(tmp_path):
    from pyggml.cli import main

    out = tmp_path / "m.gguf"
    assert main(["convert", "bert", str(corpus.minilm_dir()), str(out)]) == 0
    assert out.read_bytes() == corpus.minilm_gguf().read_bytes()


# ---- parity slice -----------------------------------------------------------------------------

def test_parity_slice():
    bad = [(c.name, d) for c in pe.cases(Options()) if (d := first_difference(c.ours, c.reference))]
    assert not bad, bad[:5]


# ---- randomized differential ------------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), pooling=st.sampled_from(["none", "mean", "cls", "last"]),
       fa=st.sampled_from(["on", "off"]), entry=st.sampled_from(["encode", "decode"]))
def test_random_batches_match_the_reference(tiny, seed, pooling, fa, entry):
    m, r = tiny
    rng = random.Random(seed)
    b = pe.random_batch(rng, m.hparams.n_vocab, cls_id=tb.CLS_ID, sep_id=tb.SEP_ID, max_seqs=4, max_len=20)
    cp = {"embeddings": True, "pooling_type": pooling, "n_seq_max": 4, "flash_attn": fa, "n_threads": 2,
          "n_threads_batch": 2}
    ours, ref = pe._Ours(m, cp), pe._Ref(r, cp)
    try:
        bad = [c.name for c in pe.run_context(ours, ref, [b], "h", entry=entry) if c.ours != c.reference]
    finally:
        ours.close()
        ref.close()
    assert not bad, bad
