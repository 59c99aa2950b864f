"""mt19937 and the libstdc++ distributions, through the reference's seeded samplers."""

from __future__ import annotations

import numpy as np

from pyggml import sampling as S
from pyggml.reference import sampling as R
from pyggml.sampling._rng import Mt19937, discrete, uniform_double, uniform_float
from pyggml.sampling.candidates import Candidates


def test_mt19937_standard_check_value():
    # [rand.predef]: the 10000th output of a default-constructed std::mt19937 is 4123659995
    g = Mt19937(5489)
    for _ in range(9999):
        g.next_u32()
    assert g.next_u32() == 4123659995


def test_copy_continues_the_stream():
    a = Mt19937(123)
    for _ in range(700):  # across a twist
        a.next_u32()
    b = a.copy()
    assert [a.next_u32() for _ in range(1000)] == [b.next_u32() for _ in range(1000)]


def test_uniforms_are_in_range():
    g = Mt19937(7)
    us = [uniform_double(g) for _ in range(2000)]
    fs = [uniform_float(g) for _ in range(2000)]
    assert all(0.0 <= u < 1.0 for u in us)
    assert all(0.0 <= f < 1.0 for f in fs)


def test_discrete_without_draw_below_two_weights():
    g, h = Mt19937(9), Mt19937(9)
    assert discrete(g, np.array([0.3], np.float32)) == 0
    assert g.next_u32() == h.next_u32()  # nothing consumed


def test_dist_matches_reference_over_many_draws():
    # the token the reference's dist picks for 300 consecutive draws, several seeds
    rng = np.random.default_rng(0)
    for seed in (0, 1, 42, 0xFFFFFFFE):
        ours, ref = S.init_dist(seed), R.dist(seed)
        lg = rng.normal(0, 1.5, 64).astype(np.float32)
        got_o, got_r = [], []
        for _ in range(300):
            a, b = Candidates.from_logits(lg), Candidates.from_logits(lg)
            ours.apply(a)
            ref.apply(b)
            got_o.append(a.selected)
            got_r.append(b.selected)
        assert got_o == got_r


def test_default_seed_is_random_but_works():
    a, b = S.init_dist(S.DEFAULT_SEED), S.init_dist(S.DEFAULT_SEED)
    assert a.seed == S.DEFAULT_SEED
    assert a.seed_cur != b.seed_cur or a.seed_cur == b.seed_cur  # any value is allowed
    c = Candidates.from_logits(np.zeros(10, np.float32))
    a.apply(c)
    assert 0 <= c.selected < 10
