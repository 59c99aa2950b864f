"""Unit behaviour of each sampler (what llama.h documents), independent of the reference."""

from __future__ import annotations

import numpy as np
import pytest

from pyggml import sampling as S
from pyggml.sampling.candidates import Candidates


def _cands(logits) -> Candidates:
    return Candidates.from_logits(np.asarray(logits, np.float32))


def test_disabled_configurations_are_named_empty_samplers():
    empties = {
        S.init_top_k(0): "?top-k", S.init_top_p(1.0): "?top-p", S.init_min_p(0.0): "?min-p",
        S.init_typical(1.0): "?typical", S.init_temp(1.0): "?temp",
        S.init_temp_ext(1.0, 0.0, 1.0): "?temp-ext", S.init_xtc(0.0, 0.1, 1, 1): "?xtc",
        S.init_xtc(0.5, 0.6, 1, 1): "?xtc", S.init_top_n_sigma(-1): "?top-n-sigma",
        S.init_penalties(10, 0, 1.3, 0, 0): "?penalties",
        S.init_penalties(10, 64, 1.0, 0, 0): "?penalties",
        S.init_dry_tokens(0.0, 1.75, 2, 64, [[1]]): "?dry",
        S.init_logit_bias(10, []): "?logit-bias",
    }
    for smpl, name in empties.items():
        assert smpl.name == name
        c = _cands([1, 3, 2])
        smpl.apply(c)
        assert c.logits.tolist() == [1, 3, 2] and c.size == 3


def test_greedy_first_max():
    c = _cands([1, 5, 5, 2])
    S.init_greedy().apply(c)
    assert c.selected == 1


def test_top_k_sorts_and_cuts():
    c = _cands([1, 5, 3, 2])
    S.init_top_k(2).apply(c)
    assert c.ids.tolist() == [1, 2] and c.sorted


def test_top_p_keeps_mass():
    c = _cands([0, 10, 9, -5])
    S.init_top_p(0.9, 1).apply(c)
    assert c.ids.tolist() == [1, 2]
    assert c.sorted


def test_min_p_unsorted_keeps_original_order():
    c = _cands([0, 10, 9.5, -5])
    S.init_min_p(0.5, 1).apply(c)
    assert c.ids.tolist() == [1, 2] and not c.sorted


def test_temp_zero_keeps_first_max_only():
    c = _cands([1, 4, 4])
    S.init_temp(0.0).apply(c)
    assert c.logits.tolist() == [-np.inf, 4, -np.inf]


def test_temp_scales():
    c = _cands([1, 2])
    S.init_temp(0.5).apply(c)
    assert c.logits.tolist() == [2, 4]


def test_penalties_window():
    p = S.init_penalties(10, 2, 2.0, 0.5, 0.25)
    for t in (3, 3, 4):  # window keeps the last two: 3 once, 4 once
        p.accept(t)
    c = _cands([1, 1, 1, 4, -2])
    p.apply(c)
    # 3: 4 / 2 - (1 * 0.5 + 0.25); 4: -2 * 2 - 0.75
    assert c.logits.tolist() == [1, 1, 1, 1.25, -4.75]


def test_dry_penalizes_extension_of_a_repeat():
    d = S.init_dry_tokens(1.0, 2.0, 2, 64, [[9]])
    for t in (1, 2, 3, 1, 2):  # "1 2 3 1 2": emitting 3 would repeat "1 2 3"
        d.accept(t)
    c = _cands(np.zeros(5))
    d.apply(c)
    assert c.logits[3] == -1.0 and np.count_nonzero(c.logits) == 1


def test_logit_bias_direct_and_searched():
    lb = S.init_logit_bias(10, [(1, 2.0), (1, 1.0), (7, -1.0)])
    c = Candidates.from_arrays([1, 7, 2], [0, 0, 0])
    lb.apply(c)  # id 1 is not at index 1 -> searched, first entry wins; id 7 searched
    assert c.logits.tolist() == [2.0, -1.0, 0.0]


def test_chain_and_sampler_facade():
    s = S.Sampler(100, seed=1)
    assert s.names() == ["?penalties", "?dry", "?top-n-sigma", "top-k", "?typical", "top-p",
                         "min-p", "?xtc", "temp-ext", "dist"]
    lg = np.random.default_rng(0).normal(size=100).astype(np.float32)
    a = [s.sample(lg) for _ in range(20)]
    s2 = S.Sampler(100, seed=1)
    assert [s2.sample(lg) for _ in range(20)] == a
    s2.reset()
    assert [s2.sample(lg) for _ in range(20)] == a
    c = s.clone()
    assert [c.sample(lg) for _ in range(5)] == [s.sample(lg) for _ in range(5)]


def test_sampler_chain_builder_and_errors():
    s = S.Sampler.chain([S.init_top_k(3), S.init_greedy()])
    assert s.sample(np.array([0, 3, 1, 2], np.float32)) == 1
    with pytest.raises(ValueError, match="selected no token"):
        S.Sampler.chain([S.init_top_k(3)]).sample(np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="unknown sampling parameter"):
        S.Sampler(10, top_kk=3)
    with pytest.raises(ValueError, match="empty candidate array"):
        S.init_top_p(0.5, 1).apply(_cands([]))


def test_mirostat_mu_starts_at_two_tau_and_moves():
    m = S.init_mirostat_v2(1, 3.0, 0.1)
    assert m.mu == np.float32(6.0)
    c = _cands(np.linspace(0, 5, 50))
    m.apply(c)
    assert 0 <= c.selected < c.size and m.mu != np.float32(6.0)
    m.reset()
    assert m.mu == np.float32(6.0)


def test_xtc_drops_top_choices():
    x = S.init_xtc(1.0, 0.1, 1, 5)
    c = _cands([5, 4.9, 4.8, -10])
    x.apply(c)
    assert c.ids.tolist() == [2, 3]


def test_dry_breakers_from_a_vocabulary():
    class Vocab:
        pieces = [b"a", b"b:", b"\n", b"x", b"::"]

        def n_tokens(self):
            return len(self.pieces)

        def token_text(self, t):
            return self.pieces[t]

        def tokenize(self, text):
            return [self.pieces.index(bytes([ch])) for ch in text if bytes([ch]) in self.pieces]

    d = S.init_dry(Vocab(), 1.0, 1.75, 2, 64, [":", "\n"])
    heads = sorted(d.breakers)
    assert heads == [1, 2, 4]
