"""iSWA cache sizing and combined operations, against the reference's llama_kv_cache_iswa."""

from __future__ import annotations

import itertools

import pytest

from pyggml.batch import Batch, BatchAllocr
from pyggml.memory import KVCacheError, KVCacheISWA, MemoryStatus, SWAType, swa_size
from pyggml.parity import first_difference
from pyggml.parity import memory as pm
from pyggml.reference import memory as ref


@pytest.mark.parametrize(("kv_size", "n_swa", "n_seq", "n_ub", "unified", "full"), list(itertools.product(
    [16, 300, 4096], [1, 128, 4096], [1, 4], [1, 512], [True, False], [False, True]))[::5])
def test_sizes_match_reference(kv_size, n_swa, n_seq, n_ub, unified, full):
    spec = {"kind": "iswa", "config": {"kv_size": kv_size, "n_swa": n_swa, "swa_type": 1, "n_seq_max": n_seq,
                                       "n_ubatch": n_ub, "unified": unified, "swa_full": full}, "ops": []}
    ours = [kv_size, swa_size(kv_size, n_swa, n_seq_max=n_seq, n_ubatch=n_ub, unified=unified, swa_full=full)]
    assert ours == ref.kv_run(spec)["sizes"]


def test_small_base_gets_a_bigger_swa_cache():
    # the SWA cache is padded to 256 cells even when the base cache is smaller
    m = KVCacheISWA(kv_size=16, n_seq_max=1, n_ubatch=8, n_swa=4, swa_type=SWAType.STANDARD)
    assert (m.base.size, m.swa.size) == (16, 256) and not m.can_shift


def test_decode_and_ops():
    m = KVCacheISWA(kv_size=512, n_seq_max=2, n_ubatch=8, n_swa=4, swa_type=SWAType.STANDARD, swa_full=True)
    a = BatchAllocr()
    a.init(Batch(tokens=list(range(1, 11))).to_ext(n_seq_max=2, n_vocab=100, mem=m))
    b = m.init_batch(a, 8)
    assert b.status == MemoryStatus.SUCCESS and len(b.ubatches) == 2
    while True:
        m.apply(b)
        if not m.next(b):
            break
    assert m.seq_pos_min(0) == 0 and m.seq_pos_max(0) == 9 and m.can_shift
    m.seq_cp(0, 1, 2, 5)
    assert (m.seq_pos_min(1), m.seq_pos_max(1)) == (2, 4)
    assert m.seq_rm(0, -1, -1)
    m.seq_add(1, -1, -1, 2)
    up = m.init_update()
    assert up.status == MemoryStatus.SUCCESS and m.has_shift
    up.apply()
    assert not m.has_shift


def test_needs_swa_type():
    with pytest.raises(KVCacheError):
        KVCacheISWA(kv_size=256, n_seq_max=1, n_ubatch=8, n_swa=4, swa_type=SWAType.NONE)


def test_random_iswa_programs_match_reference():
    import random

    rng = random.Random(11)
    for k in range(6):
        point = (rng.random() < 0.5, rng.choice([1, 4, 16]), rng.choice([1, 2, 3]), k % 2 == 0)
        kind, cfg = "kv", {}
        while kind != "iswa":
            kind, cfg = pm.config_for(rng, *point)
        spec = pm.random_program(rng, cfg, 20, kind)
        diff = first_difference(pm.ours(spec), ref.kv_run(spec))
        assert diff is None, (k, cfg, diff)
