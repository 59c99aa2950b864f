"""The infill sampler against the reference's (llama_sampler_init_infill), over real vocabs."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.parity import corpus
from pyggml.reference import sampling as ref
from pyggml.reference.vocab import RefVocab
from pyggml.sampling import Candidates, init_infill
from pyggml.vocab import Vocab


@functools.cache
def vocabs(name: str):
    models = corpus.reference_tree() / "models"
    path = corpus.smollm2() if name == "smollm2" else models / f"ggml-vocab-{name}.gguf"
    return Vocab.from_gguf(path), RefVocab(path)


def both(name: str, ids: np.ndarray, logits: np.ndarray):
    ours_v, ref_v = vocabs(name)
    cur = Candidates.from_arrays(ids, logits)
    init_infill(ours_v).apply(cur)
    rec, _, _ = ref.infill(ref_v).apply_raw(ids, logits, np.zeros(ids.size, np.float32))
    ours = (cur.ids.tolist(), cur.logits.view(np.uint32).tolist(), cur.p.view(np.uint32).tolist())
    reference = (rec["id"].tolist(), rec["logit"].astype(np.float32).view(np.uint32).tolist(),
                 rec["p"].astype(np.float32).view(np.uint32).tolist())
    return ours, reference


def candidates(rng: np.random.Generator, vocab: Vocab, n: int, eog_boost: float, prefix_bias: bool):
    n_vocab = vocab.n_tokens
    ids = rng.choice(n_vocab, size=n, replace=False).astype(np.int32)
    if prefix_bias:  # tokens that share pieces make the prefix merge fire
        ids[: n // 2] = np.arange(n // 2, dtype=np.int32) + rng.integers(0, n_vocab - n)
    logits = rng.normal(0, 2, n).astype(np.float32)
    eog = sorted(vocab.eog)
    if eog and eog_boost:
        k = min(len(eog), 2, n)
        ids[:k] = eog[:k]
        logits[:k] += np.float32(eog_boost)
    ids = np.unique(ids)[:n]
    return ids, logits[: ids.size]


@pytest.mark.parametrize("name", ["smollm2", "llama-spm", "gpt-2"])
@pytest.mark.parametrize("seed", range(6))
def test_infill_matches_reference(name, seed):
    rng = np.random.default_rng(seed)
    ours_v, _ = vocabs(name)
    n, boost = [3, 12, 40, 100, 7, 64][seed], [0, 0, 4, 12, 0, 2][seed]
    ids, logits = candidates(rng, ours_v, n, boost, seed % 2 == 0)
    ours, reference = both(name, ids, logits)
    assert ours == reference


@settings(derandomize=True, max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 80), boost=st.sampled_from([0.0, 1.0, 5.0, 30.0]),
       prefix=st.booleans())
def test_infill_differential(seed, n, boost, prefix):
    rng = np.random.default_rng(seed)
    ours_v, _ = vocabs("smollm2")
    ids, logits = candidates(rng, ours_v, n, boost, prefix)
    ours, reference = both("smollm2", ids, logits)
    assert ours == reference


def test_nan_probabilities_of_an_overflowed_softmax_are_kept():
    # huge logits over 300 candidates: the reference's bucket sort misorders them, its softmax
    # overflows (p = inf/inf = NaN) and "p < thold && !is_eog" keeps every NaN entry
    rng = np.random.default_rng(0)
    ids = rng.choice(49152, size=300, replace=False).astype(np.int32)
    logits = (rng.normal(0, 1, 300) * 3e9).astype(np.float32)
    ours, reference = both("smollm2", ids, logits)
    assert 0xFFC00000 in reference[2] or 0x7FC00000 in reference[2]
    assert ours == reference
