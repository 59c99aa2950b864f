"""KV cell metadata: unit behaviour, and model-based differential runs against llama_kv_cells."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.memory import KVCells, KVCellsError
from pyggml.parity import first_difference
from pyggml.parity import kv_cells as pk
from pyggml.reference import memory as ref


def test_basic_lifecycle():
    c = KVCells(4)
    c.pos_set(1, 5)
    c.seq_add(1, 0)
    c.seq_add(1, 3)
    assert (c.get_used(), c.used_min(), c.used_max_p1()) == (1, 1, 2)
    assert (c.seq_pos_min(3), c.seq_pos_max(0), c.seq_pos_min(2)) == (5, 5, -1)
    assert c.seq_rm(1, 0) is False and c.seq_rm(1, 3) is True
    assert c.get_used() == 0 and c.used_max_p1() == 0


def test_pos_add_below_zero_clears_but_keeps_ext():
    c = KVCells(2)
    c.pos_set(0, 1)
    c.seq_add(0, 0)
    c.ext_set(0, 3, 4, 42)
    assert c.pos_add(0, -2) is True and c.is_empty(0) and c.has_shift
    c.pos_set(0, 7)
    assert c.ext_get(0) == (3, 4, 42)  # the reference does not reset ext here


def test_pos_div_truncates_and_records_shift():
    c = KVCells(1)
    c.pos_set(0, 7)
    c.seq_add(0, 1)
    c.pos_div(0, 2)
    assert (c.pos_get(0), c.get_shift(0)) == (3, 4)
    c.pos_div(0, 3)
    assert (c.pos_get(0), c.get_shift(0)) == (1, 6)


def test_tok_le_prefers_highest_cell_on_ties():
    c = KVCells(3)
    for i, tok in ((0, 10), (2, 12)):
        c.pos_set(i, 4)
        c.seq_add(i, 0)
        c.ext_set(i, 0, 0, tok)
    assert c.seq_pos_tok_le(0, 4) == 12 and c.seq_pos_tok_le(0, 3) == -1


@pytest.mark.parametrize("call", [
    lambda c: c.rm(0),
    lambda c: c.seq_add(0, 0),
    lambda c: c.pos_add(0, 1),
    lambda c: c.seq_rm(1, 2),
    lambda c: c.pos_set(1, 0),
    lambda c: c.pos_div(1, 0),
    lambda c: c.set_idxs([0], KVCells(2)),
])
def test_precondition_violations_raise(call):
    c = KVCells(2)
    c.pos_set(1, 3)
    c.seq_add(1, 1)
    with pytest.raises(KVCellsError):
        call(c)


def test_random_programs_match_reference():
    rng = random.Random(99)
    for k in range(25):
        program = pk.random_program(rng, 40)
        diff = first_difference(pk.ours(program), ref.cells_run(program))
        assert diff is None, (k, diff)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(5, 60))
def test_hypothesis_programs(seed, n_steps):
    program = pk.random_program(random.Random(seed), n_steps)
    diff = first_difference(pk.ours(program), ref.cells_run(program))
    assert diff is None, diff
