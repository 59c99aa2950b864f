"""Recurrent memory sequence-op semantics, against the reference's llama_memory_recurrent."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.batch import Batch, BatchAllocr
from pyggml.memory import MemoryRecurrent, MemoryStatus
from pyggml.parity import first_difference
from pyggml.parity import memory as pm
from pyggml.reference import memory as ref


def _decode(m: MemoryRecurrent, tokens, seq):
    a = BatchAllocr()
    a.init(Batch(tokens=tokens, seq_ids=seq).to_ext(n_seq_max=m.n_seq_max, n_vocab=100, mem=m))
    status, ubs = m.init_batch(a, 512)
    assert status == MemoryStatus.SUCCESS
    for ub in ubs:
        m.find_slot(ub)


def test_seq_rm_semantics():
    m = MemoryRecurrent(mem_size=4, n_seq_max=4, n_rs_seq=2)
    _decode(m, [1, 2, 3, 4], 0)
    assert m.seq_pos_max(0) == 3
    assert not m.seq_rm(-1, -1, -1)  # quirk: a negative id is out of range as unsigned
    assert not m.seq_rm(7, -1, -1)
    assert not m.seq_rm(0, 1, -1)  # rollback of 3 tokens > n_rs_seq
    assert m.seq_rm(0, 2, -1) and m.seq_pos_max(0) == 1 and m.rs_idx[0] == 2
    assert not m.seq_rm(0, 1, -1)  # a pending rollback is single-use
    assert m.seq_rm(0, -1, -1) and m.seq_pos_max(0) == -1 and m.used == 0


def test_seq_cp_shares_the_state_cell():
    m = MemoryRecurrent(mem_size=2, n_seq_max=2)
    _decode(m, [1, 2], 0)
    m.seq_cp(0, 1, -1, -1)
    assert m.seqs[0] == {0, 1} and m.tail[:2] == [0, 0] and m.used == 1
    _decode(m, [3], 1)  # seq 1 gets its own copy of the state
    assert m.used == 2 and m.seq_pos_max(1) == 2 and m.seq_pos_max(0) == 1
    m.seq_keep(1)
    assert m.used == 1 and m.seq_pos_max(0) == -1
    assert m.init_update() == MemoryStatus.NO_UPDATE and m.can_shift


def test_programs_match_reference():
    rng = random.Random(3)
    for k in range(10):
        spec = pm.random_recurrent_program(rng, 25)
        diff = first_difference(pm.ours(spec), ref.kv_run(spec))
        assert diff is None, (k, spec["config"], diff)


@settings(derandomize=True, max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_hypothesis_recurrent_programs(seed):
    spec = pm.random_recurrent_program(random.Random(seed), 20)
    diff = first_difference(pm.ours(spec), ref.kv_run(spec))
    assert diff is None, diff
