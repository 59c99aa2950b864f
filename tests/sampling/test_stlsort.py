"""The libstdc++ sort replays: valid sorts, and equal to the numpy fast path without ties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml import _stlsort as ss


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=0, max_size=300), st.integers(0, 310))
def test_replays_sort_and_select(vals, k):
    key = [float(v) for v in vals]
    order = ss.std_sort(key, list(range(len(key))))
    assert sorted(order) == list(range(len(key)))
    assert [key[i] for i in order] == sorted(key, reverse=True)
    k = min(k, len(key))
    part = ss.std_partial_sort(key, list(range(len(key))), k)[:k]
    assert [key[i] for i in part] == sorted(key, reverse=True)[:k]


def test_fast_path_equals_replay_on_distinct_keys():
    rng = np.random.default_rng(0)
    for n in (1, 2, 17, 100, 1000):
        x = rng.permutation(n).astype(np.float32)
        assert ss.sort_desc(x).tolist() == ss.std_sort(x.tolist(), list(range(n)))
        for k in (1, 5, n):
            k = min(k, n)
            assert (ss.partial_sort_desc(x, k).tolist()
                    == ss.std_partial_sort(x.tolist(), list(range(n)), k)[:k])


def test_bucket_index_int_overflow_quirk():
    b = ss.bucket_index(np.array([-np.inf, np.inf, 1e10, -1e10, 9.99, -10.0, 0.0], np.float32))
    assert b.tolist() == [0, 0, 0, 0, 127, 0, 64]


# ---- libpyggml_stl (the compiled sorts) against the Python replays --------------------------
@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(st.integers(-6, 6), min_size=0, max_size=400), st.integers(0, 410))
def test_compiled_sorts_equal_the_replays(vals, k):
    key = np.array(vals, dtype=np.float32)
    n = key.size
    assert ss.compiled_sort(key).tolist() == ss.std_sort(key.tolist(), list(range(n)))
    k = min(k, n)
    assert (ss.compiled_sort(key, k)[:k].tolist()
            == ss.std_partial_sort(key.tolist(), list(range(n)), k)[:k])


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.integers(-1400, 1400), min_size=1, max_size=3000), st.integers(1, 3000),
       st.sampled_from([1, 8, 64]))
def test_compiled_bucket_sort_equals_the_replay(vals, npartial, scale):
    # many ties, values across every bucket and outside [-10, 10) (clamped buckets)
    logits = (np.array(vals, dtype=np.float32) / np.float32(scale)).astype(np.float32)
    npartial = min(npartial, logits.size)
    assert (ss.bucket_partial_sort(logits, npartial).tolist()
            == ss.replay_bucket_sort(logits, npartial).tolist())


def test_compiled_bucket_sort_on_vocab_sized_logits():
    rng = np.random.default_rng(3)
    logits = np.round(rng.standard_normal(49152) * 4, 2).astype(np.float32)  # heavy ties
    for npartial in (129, 1000, 49152):
        assert (ss.bucket_partial_sort(logits, npartial).tolist()
                == ss.replay_bucket_sort(logits, npartial).tolist())
