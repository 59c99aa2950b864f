"""Differential tests against the running reference (llama.h sampler API via cffi)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.parity import Options
from pyggml.parity import sampling as P
from pyggml.sampling.candidates import Candidates

NAMES = list(P.SAMPLERS)


@pytest.mark.parametrize("name", NAMES)
def test_sampler_sequences_match_reference(name):
    gen, mk_o, mk_r, cap = P.SAMPLERS[name]
    rng = np.random.default_rng(NAMES.index(name))
    for _ in range(4):
        n = min(int(rng.choice([1, 3, 40, 300, 1500])), cap)
        params = gen(rng, n)
        o, r = mk_o(**params), mk_r(**params)
        so, sr = P.run_sequence(rng, o, r, n, 8)
        assert so == sr, (name, params)


# --- pyggml.Sampler(n_vocab, **params) against the reference tools' own common_sampler ---------

@pytest.fixture(scope="module")
def hosts():
    h = P.CommonHosts()
    yield h.hosts
    h.close()


def test_default_parameters_build_the_references_chain(hosts):
    import pyggml
    from pyggml.reference.common_sampling import CommonSampler

    host, vocab = hosts["smollm2"]
    assert pyggml.Sampler(host.n_vocab, vocab=vocab).names() == CommonSampler(host, {}).names() == [
        "?penalties", "?dry", "?top-n-sigma", "top-k", "?typical", "top-p", "min-p", "?xtc", "temp-ext",
        "dist"]
    rng = np.random.default_rng(5)
    for seed in (1, 1234, 0xFFFFFFFE):
        so, sr = P.common_run(rng, host, vocab, {"seed": seed}, 8)
        assert len(so) == 9 and so == sr


@pytest.mark.parametrize(("label", "params"), [
    ("smollm2", {"samplers": ["min_p", "TOP-K", "temp", "dist", "top_k", "nucleus"], "seed": 3}),
    ("smollm2", {"samplers": ["adaptive_p", "top_k"], "adaptive_target": 0.3, "seed": 4}),
    ("smollm2", {"samplers": [], "mirostat": 2, "logit_bias": [(7, 2.5), (9, float("-inf"))], "seed": 5}),
    ("smollm2", {"dry_multiplier": 0.8, "dry_sequence_breakers": ["\n", " the", ""], "seed": 6}),
    ("tiny300", {"samplers": ["infill", "top_k"], "seed": 7}),
    ("tiny300", {"seed": 8}),  # the vocabulary's suppress tokens become a -inf logit bias
])
def test_chain_order_and_composition_follow_the_params(hosts, label, params):
    host, vocab = hosts[label]
    so, sr = P.common_run(np.random.default_rng(9), host, vocab, params, 8)
    assert so == sr
    if label == "tiny300":
        assert so[0][0] == "logit-bias"


@pytest.mark.parametrize(("key", "value"), [
    ("penalty_repeat", 0.0), ("penalty_repeat", 1e-39), ("penalty_freq", float("inf")),
    ("penalty_present", float("nan"))])
def test_invalid_penalties_are_refused_like_the_reference(hosts, key, value):
    host, vocab = hosts["smollm2"]
    so, sr = P.common_run(np.random.default_rng(0), host, vocab, {key: value}, 4)
    assert so == sr and "error" in so[0], (so, sr)


def test_a_breaker_the_vocabulary_cannot_encode_fails_like_the_reference(hosts):
    # tiny300 is an SPM vocabulary without byte tokens: the tail "\n" of the breaker "\n\n"
    # tokenizes as "\u2581\n" and the reference's byte_to_token throws std::out_of_range
    host, vocab = hosts["tiny300"]
    params = {"dry_multiplier": 0.8, "dry_sequence_breakers": ["\n\n"]}
    so, sr = P.common_run(np.random.default_rng(0), host, vocab, params, 2)
    assert so == sr == [{"error": "out_of_range", "message": None}]


def test_random_parameter_sets_match_common_sampler(hosts):
    rng = np.random.default_rng(21)
    for _ in range(12):
        label = "smollm2" if rng.random() < 0.6 else f"tiny{P.TINY_VOCAB}"
        host, vocab = hosts[label]
        params = P.common_params(rng, host.n_vocab)
        so, sr = P.common_run(rng, host, vocab, params, 6)
        assert so == sr, (label, params)


def test_parity_component_yields_and_agrees():
    cases = P.cases(Options(seed=1, limit=None))
    first = [next(cases) for _ in range(6)]  # the libm diffs come first
    assert all(c.ours == c.reference for c in first)


_logit = st.one_of(
    st.floats(-30, 30, width=32),
    st.sampled_from([-np.inf, 0.0, -0.0, 1.0, 1e30, -1e30, 1e-38, 2.5]),
)


@pytest.mark.parametrize("name", NAMES)
@settings(derandomize=True, max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 2),
       logits=st.lists(_logit, min_size=1, max_size=300), steps=st.integers(1, 5),
       hist=st.lists(st.integers(0, 8), max_size=12), shuffle=st.booleans())
def test_hypothesis_differential(name, seed, logits, steps, hist, shuffle):
    gen, mk_o, mk_r, _cap = P.SAMPLERS[name]
    rng = np.random.default_rng(seed)
    lg = np.asarray(logits, np.float32)
    if np.all(lg == -np.inf):
        lg[0] = 0.0
    n = lg.size
    params = gen(rng, n)
    o, r = mk_o(**params), mk_r(**params)
    assert o.name == r.name
    for t in hist:
        o.accept(t)
        r.accept(t)
    ids = rng.permutation(n).astype(np.int32) if shuffle else np.arange(n, dtype=np.int32)
    for _ in range(steps):
        a = Candidates.from_arrays(ids, lg)
        b = a.copy()
        o.apply(a)
        r.apply(b)
        assert P._canon(a) == P._canon(b), (name, params)
        if 0 <= a.selected < a.size:
            o.accept(int(a.ids[a.selected]))
            r.accept(int(b.ids[b.selected]))
