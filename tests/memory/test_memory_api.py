"""The user-facing memory object (argument checks, failed calls leave state unchanged) and the
context sizing rules, against the reference."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pyggml.batch import Batch, BatchAllocr
from pyggml.memory import (
    KVCache,
    KVCacheISWA,
    Memory,
    MemoryError_,
    MemoryRecurrent,
    MemoryStatus,
    SWAType,
    context_sizes,
)
from pyggml.parity import memory as pm
from pyggml.reference import memory as ref


def _filled(unified: bool = False) -> Memory:
    kv = KVCache(kv_size=32, n_seq_max=4, unified=unified)
    a = BatchAllocr()
    a.init(Batch(tokens=[1, 2, 3, 4, 5], seq_ids=1).to_ext(n_seq_max=4, n_vocab=100, mem=kv))
    status, sinfos, ubs = kv.init_batch(a, 512)
    assert status == MemoryStatus.SUCCESS
    for si, ub in zip(sinfos, ubs, strict=True):
        kv.apply_ubatch(si, ub)
    return Memory(kv)


def _snapshot(mem: Memory):
    kv = mem.impl
    return ([c.pos.copy() for c in kv.cells], [c.seq_t.copy() for c in kv.cells], list(kv.heads),
            list(kv.pending_copies), kv.has_shift)


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True)) and \
        all(np.array_equal(x, y) for x, y in zip(a[1], b[1], strict=True)) and a[2:] == b[2:]


@pytest.mark.parametrize("call", [
    lambda m: m.seq_rm(4, -1, -1),
    lambda m: m.seq_rm(-2, -1, -1),
    lambda m: m.seq_rm("0", -1, -1),
    lambda m: m.seq_rm(True, -1, -1),
    lambda m: m.seq_rm(1, 2**31, -1),
    lambda m: m.seq_cp(1, 2, 1, 3),
    lambda m: m.seq_cp(1, 9, -1, -1),
    lambda m: m.seq_keep(-1),
    lambda m: m.seq_add(1, 0, -1, 1.5),
    lambda m: m.seq_div(1, -1, -1, 0),
    lambda m: m.seq_div(1, -1, -1, -2),
    lambda m: m.seq_pos_max(4),
])
def test_bad_arguments_raise_and_change_nothing(call):
    mem = _filled()
    before = _snapshot(mem)
    with pytest.raises(MemoryError_):
        call(mem)
    assert _same(before, _snapshot(mem))


def test_operations():
    mem = _filled()
    assert mem.seq_pos_max(1) == 4 and mem.can_shift
    mem.seq_cp(1, 2)  # across streams: a whole-sequence copy, queued for the update
    assert mem.seq_pos_max(2) == 4
    mem.seq_add(2, 2, -1, -2)
    assert mem.update() == MemoryStatus.SUCCESS and mem.update() == MemoryStatus.NO_UPDATE
    assert mem.seq_rm(1, 3) and mem.seq_pos_max(1) == 2
    mem.seq_keep(1)
    mem.clear()
    assert mem.seq_pos_max(1) == -1


def test_shift_unsupported_raises_before_anything_changes():
    kv = KVCache(kv_size=16, n_seq_max=1, arch_can_shift=False)
    mem = Memory(kv)
    a = BatchAllocr()
    a.init(Batch(tokens=[1, 2]).to_ext(n_seq_max=1, n_vocab=100, mem=kv))
    _, sinfos, ubs = kv.init_batch(a, 512)
    kv.apply_ubatch(sinfos[0], ubs[0])
    mem.seq_add(0, -1, -1, 1)
    with pytest.raises(MemoryError_):
        mem.update()
    assert kv.has_shift
    with pytest.raises(MemoryError_):
        Memory(KVCache(kv_size=16, n_seq_max=1, n_pos_per_embd=4)).seq_add(0, -1, -1, 1)


def test_other_memories():
    r = Memory(MemoryRecurrent(mem_size=2, n_seq_max=2))
    assert r.seq_rm(-1) is False and r.update() == MemoryStatus.NO_UPDATE
    i = Memory(KVCacheISWA(kv_size=256, n_seq_max=2, n_ubatch=8, n_swa=4, swa_type=SWAType.CHUNKED,
                           unified=False))
    with pytest.raises(MemoryError_):
        i.seq_cp(0, 1, 3, 5)
    i.seq_cp(0, 1)
    assert i.update() == MemoryStatus.SUCCESS


def test_context_sizes_match_reference():
    cases = pm.layout_cases(random.Random(2), 25) + [
        {"n_ctx": 1000, "n_ctx_train": 4096, "n_seq_max": 3, "kv_unified": False, "n_batch": 2048,
         "n_ubatch": 512},
        {"n_ctx": 0, "n_ctx_train": 512, "n_seq_max": 1, "kv_unified": True, "n_batch": 32, "n_ubatch": 0}]
    spec = {"kind": "layout", "cases": cases}
    assert pm.ours(spec) == ref.kv_run(spec)
    s = context_sizes(n_ctx=1000, n_ctx_train=4096, n_seq_max=3)
    assert (s.n_ctx, s.n_ctx_seq, s.n_batch, s.kv_size, s.n_stream) == (1536, 512, 1000, 512, 3)


@pytest.mark.parametrize("kw", [
    {"n_ctx": 0, "n_ctx_train": 0},
    {"n_ctx": 256, "n_ctx_train": 256, "n_batch": 0, "n_ubatch": 0},
    {"n_ctx": 256, "n_ctx_train": 256, "n_seq_max": 257},
    {"n_ctx": 256, "n_ctx_train": 256, "n_seq_max": 8, "n_batch": 4},
])
def test_context_sizes_rejects(kw):
    with pytest.raises(MemoryError_):
        context_sizes(**kw)
