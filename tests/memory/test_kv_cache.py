"""KV cache bookkeeping: unit behaviour and model-based differential programs against the
reference llama_kv_cache (built without a model by the probe)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.batch import Batch, BatchAllocr
from pyggml.memory.kv_cache import KVCache, KVCacheError
from pyggml.memory.status import MemoryStatus
from pyggml.memory.swa import SWAType
from pyggml.parity import first_difference
from pyggml.parity import memory as pm
from pyggml.reference import memory as ref


def _decode(kv: KVCache, batch: Batch, n_ubatch: int = 512):
    a = BatchAllocr()
    a.init(batch.to_ext(n_seq_max=kv.n_seq_max, n_vocab=100, mem=kv))
    status, sinfos, ubs = kv.init_batch(a, n_ubatch)
    assert status == MemoryStatus.SUCCESS
    for si, ub in zip(sinfos, ubs, strict=True):
        kv.apply_ubatch(si, ub)
    return sinfos, ubs


def test_placement_and_positions_continue():
    kv = KVCache(kv_size=16, n_seq_max=2)
    _decode(kv, Batch(tokens=[1, 2, 3]))
    assert kv.cells[0].pos[:3].tolist() == [0, 1, 2] and kv.heads == [3]
    sinfos, _ = _decode(kv, Batch(tokens=[4], seq_ids=0))
    assert sinfos[0].idxs == [[3]] and kv.seq_pos_max(0) == 3


def test_seq_ops():
    kv = KVCache(kv_size=16, n_seq_max=2)
    _decode(kv, Batch(tokens=[1, 2, 3, 4]))
    kv.seq_cp(0, 1, 1, 3)
    assert (kv.seq_pos_min(1), kv.seq_pos_max(1)) == (1, 2)
    kv.seq_rm(0, 2, -1)
    assert kv.seq_pos_max(0) == 1 and kv.heads == [3]  # cell 2 still held by seq 1
    kv.seq_add(1, -1, -1, 5)
    assert (kv.seq_pos_min(1), kv.has_shift) == (6, True)
    kv.seq_keep(1)
    assert kv.seq_pos_max(0) == -1 and kv.cells[0].get_used() == 2


def test_full_cache_fails_prepare():
    kv = KVCache(kv_size=4, n_seq_max=1)
    _decode(kv, Batch(tokens=[1, 2, 3]))
    a = BatchAllocr()
    a.init(Batch(tokens=[4, 5]).to_ext(n_seq_max=1, n_vocab=100, mem=kv))
    assert kv.init_batch(a, 512)[0] == MemoryStatus.FAILED_PREPARE
    assert kv.cells[0].pos.tolist() == [0, 1, 2, -1]  # prepare restored the cells


def test_swa_reuses_cells():
    kv = KVCache(kv_size=4, n_seq_max=1, n_swa=2, swa_type=SWAType.STANDARD)
    _decode(kv, Batch(tokens=[1, 2, 3, 4]))
    _decode(kv, Batch(tokens=[5]))
    # pos 0 fell out of the window of 4: its cell is reused
    assert kv.cells[0].pos.tolist() == [4, 1, 2, 3]


def test_mask_causal_and_n_kv():
    kv = KVCache(kv_size=300, n_seq_max=1)
    sinfos, ubs = _decode(kv, Batch(tokens=[1, 2, 3]))
    n_kv = kv.get_n_kv(sinfos[0])
    assert n_kv == 256
    m = kv.kq_mask(ubs[0], n_kv, 1)
    assert m.shape == (1, 3, 256)
    assert np.isneginf(m[0, 0, 1]) and m[0, 2, :3].tolist() == [0, 0, 0] and np.isneginf(m[0, 2, 3])


@pytest.mark.parametrize("call", [
    lambda kv: kv.seq_rm(7, -1, -1),
    lambda kv: kv.seq_rm(-2, -1, -1),
    lambda kv: kv.seq_cp(0, 1, 2, 3),
    lambda kv: kv.seq_keep(4),
])
def test_bad_calls_raise(call):
    kv = KVCache(kv_size=8, n_seq_max=4, unified=False)
    with pytest.raises(KVCacheError):
        call(kv)


def test_random_programs_match_reference():
    rng = random.Random(5)
    for k in range(12):
        cfg = pm.random_config(rng)
        spec = pm.random_program(rng, cfg, 20)
        diff = first_difference(pm.ours(spec), ref.kv_run(spec))
        assert diff is None, (k, cfg, diff)


@settings(derandomize=True, max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_hypothesis_programs(seed):
    rng = random.Random(seed)
    spec = pm.random_program(rng, pm.random_config(rng), 15)
    diff = first_difference(pm.ours(spec), ref.kv_run(spec))
    assert diff is None, diff
