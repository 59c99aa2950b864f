"""Shift bookkeeping, updates (stream copies, K-shift decision, statuses) and can_shift, against
the reference through the probe."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.batch import Batch, BatchAllocr
from pyggml.memory import KVCache, MemoryStatus
from pyggml.parity import first_difference
from pyggml.parity import memory as pm
from pyggml.reference import memory as ref


def _fill(kv: KVCache, seq: int, n: int) -> None:
    a = BatchAllocr()
    b = Batch(tokens=list(range(1, n + 1)), seq_ids=seq)
    a.init(b.to_ext(n_seq_max=kv.n_seq_max, n_vocab=100, mem=kv))
    status, sinfos, ubs = kv.init_batch(a, 512)
    assert status == MemoryStatus.SUCCESS
    for si, ub in zip(sinfos, ubs, strict=True):
        kv.apply_ubatch(si, ub)


def test_shift_then_update_resets_shift():
    kv = KVCache(kv_size=16, n_seq_max=1)
    _fill(kv, 0, 4)
    assert kv.init_update().status == MemoryStatus.NO_UPDATE
    kv.seq_add(0, 2, -1, 3)
    assert kv.has_shift and kv.cells[0].pos[:4].tolist() == [0, 1, 5, 6]
    assert kv.k_shift()[:4].tolist() == [0, 0, 3, 3]
    up = kv.init_update()
    assert up.status == MemoryStatus.SUCCESS
    calls = []
    up.apply(lambda cache: calls.append(cache.k_shift().tolist()) or True)
    assert calls and not kv.has_shift and kv.k_shift().sum() == 0
    assert kv.cells[0].pos[:4].tolist() == [0, 1, 5, 6]  # positions stay shifted


def test_failed_shift_graph_keeps_shift_pending():
    kv = KVCache(kv_size=16, n_seq_max=1)
    _fill(kv, 0, 3)
    kv.seq_div(0, -1, -1, 2)
    kv.init_update().apply(lambda cache: False)
    assert kv.has_shift


def test_init_update_takes_stream_copies():
    kv = KVCache(kv_size=16, n_seq_max=2, unified=False)
    _fill(kv, 0, 3)
    kv.seq_cp(0, 1, -1, -1)
    assert kv.pending_copies == [(0, 1)]
    up = kv.init_update()
    assert up.status == MemoryStatus.SUCCESS and up.copies == [(0, 1)] and kv.pending_copies == []
    # taken even though never applied: the next update has nothing to do
    assert kv.init_update().status == MemoryStatus.NO_UPDATE


def test_update_programs_match_reference():
    cfg = {"kv_size": 16, "n_seq_max": 2, "unified": False, "n_vocab": 1000}
    spec = {"kind": "kv", "config": cfg, "ops": [
        ["decode", {"token": [1, 2, 3], "pos": None, "seq_id": None, "logits": None}, 512],
        ["update"], ["seq_add", 0, 1, -1, 4], ["seq_cp", 0, 1, -1, -1], ["update"], ["update"],
        ["seq_div", 1, -1, -1, 2], ["can_shift"], ["update"], ["clear"], ["update"]]}
    diff = first_difference(pm.ours(spec), ref.kv_run(spec))
    assert diff is None, diff


@settings(derandomize=True, max_examples=12, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_hypothesis_programs_all_kinds(seed):
    rng = random.Random(seed)
    point = rng.choice(list(__import__("itertools").product(*pm.CONFIG_DIMS.values())))
    kind, cfg = pm.config_for(rng, *point)
    spec = pm.random_program(rng, cfg, 15, kind)
    diff = first_difference(pm.ours(spec), ref.kv_run(spec))
    assert diff is None, (kind, cfg, diff)


def test_full_schedule_gives_every_configuration_10000_steps():
    import itertools
    from collections import Counter

    from pyggml.parity import Options

    steps: Counter = Counter()
    sched = pm._schedule(Options(full=True), random.Random(0))
    assert {p for p, _ in sched} == set(itertools.product(*pm.CONFIG_DIMS.values()))
    for point, n in sched:
        steps[point] += n
    assert min(steps.values()) >= 10_000, steps


def test_batched_programs_in_one_probe_call():
    rng = random.Random(4)
    progs = [pm.random_program(rng, pm.random_config(rng), 8) for _ in range(3)]
    spec = {"kind": "batch", "programs": progs}
    diff = first_difference(pm.ours(spec), ref.kv_run(spec))
    assert diff is None, diff
