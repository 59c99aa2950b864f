"""Digest mode of the memory programs (states and masks compared as [length, crc32] of the same
packing on both sides) and the whole-sequence cell ops the KV cache's seq_* use."""

from __future__ import annotations

import itertools
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.memory.kv_cells import KVCells, KVCellsError
from pyggml.parity import Options, first_difference
from pyggml.parity import memory as pm
from pyggml.reference import memory as ref

POINTS = list(itertools.product(*pm.CONFIG_DIMS.values()))


@settings(derandomize=True, max_examples=8, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_digest_programs_match_reference_and_full_mode(seed):
    rng = random.Random(seed)
    kind, cfg = pm.config_for(rng, *rng.choice(POINTS))
    spec, recorded = pm.random_program_digest(rng, cfg, 20, kind)
    assert spec["digest"] is True
    # recorded while generating == a fresh run of the program
    assert recorded == pm.ours(spec)
    assert first_difference(recorded, ref.kv_run(spec)) is None, (kind, cfg)
    full = {k: v for k, v in spec.items() if k != "digest"}
    assert first_difference(pm.ours(full), ref.kv_run(full)) is None


def test_digest_in_a_batch_applies_to_its_programs():
    rng = random.Random(8)
    progs = [pm.random_program(rng, pm.config_for(rng, *p)[1], 6) for p in POINTS[:3]]
    spec = {"kind": "batch", "digest": True, "programs": progs}
    o, r = pm.ours(spec), ref.kv_run(spec)
    assert o == r and isinstance(o[0]["steps"][0]["state"], list) and len(o[0]["steps"][0]["state"]) == 2


def _filled(kind_point):
    rng = random.Random(11)
    while True:
        kind, cfg = pm.config_for(rng, *kind_point)
        spec = pm.random_program(rng, cfg, 30, kind)
        mem = pm.make_memory(spec)
        for op in spec["ops"]:
            pm.apply_op(mem, cfg, op)
        kv = mem.base if kind == "iswa" else mem
        if any(c.get_used() for c in kv.cells):
            return mem, kv


def test_state_digest_sees_every_field():
    for point in [(True, 4, 0, False), (False, 16, 0, False), (True, 4, 1, True)]:
        mem, kv = _filled(point)
        d0 = pm.state_digest(mem)
        c = next(c for c in kv.cells if c.get_used())
        i = int(np.flatnonzero(c.pos != -1)[0])
        s = int(np.flatnonzero(c.seq_t[:, i])[0])
        for arr in (c.pos, c.shift, c.ext_x, c.ext_y, c.ext_tok):
            arr[i] += 1
            assert pm.state_digest(mem) != d0
            arr[i] -= 1
        assert pm.state_digest(mem) == d0
        c.seq_t[s + 1, i] = not c.seq_t[s + 1, i]
        assert pm.state_digest(mem) != d0
        c.seq_t[s + 1, i] = not c.seq_t[s + 1, i]
        c.has_shift = not c.has_shift
        assert pm.state_digest(mem) != d0
        c.has_shift = not c.has_shift
        assert pm.state_digest(mem) == d0


def test_digest_mismatch_is_rerun_with_full_dumps(monkeypatch):
    real = pm.random_program_digest

    def corrupt(*a, **k):
        spec, out = real(*a, **k)
        out["steps"][0]["state"] = [0, 0]
        return spec, out

    monkeypatch.setattr(pm, "random_program_digest", corrupt)
    n0 = pm.DIGEST_FALLBACKS[0]
    case = next(pm.cases(Options(seed=3)))
    # the rerun compares the full dumps (equal here: only the digest was corrupted)
    assert pm.DIGEST_FALLBACKS[0] == n0 + 1
    assert isinstance(case.ours["steps"][0]["state"], dict) and case.ours == case.reference


# ---- whole-sequence cell ops == the per-cell ops they replace

def _random_cells(rng: random.Random) -> KVCells:
    c = KVCells(rng.choice([4, 16, 40]))
    for i in range(c.size):
        if rng.random() < 0.7:
            c.pos[i] = rng.randrange(0, 30)
            c.shift[i] = rng.randrange(-3, 4)
            c.ext_set(i, rng.randrange(5), rng.randrange(5), rng.randrange(100))
            for s in rng.sample(range(5), rng.randint(1, 3)):
                c.seq_t[s, i] = True
    return c


def _same(a: KVCells, b: KVCells) -> None:
    for f in ("pos", "shift", "ext_x", "ext_y", "ext_tok", "seq_t"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert a.has_shift == b.has_shift


def _copy(c: KVCells) -> KVCells:
    d = KVCells(c.size)
    for f in ("pos", "shift", "ext_x", "ext_y", "ext_tok", "seq_t"):
        setattr(d, f, getattr(c, f).copy())
    d.has_shift = c.has_shift
    return d


@settings(derandomize=True, max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_vector_cell_ops_match_per_cell_ops(seed):
    rng = random.Random(seed)
    c = _random_cells(rng)
    s = rng.randrange(5)
    a, b = _copy(c), _copy(c)
    freed = a.seq_keep_all(s)
    assert freed.tolist() == [i for i in range(b.size) if b.seq_keep(i, s)]
    _same(a, b)

    a, b = _copy(c), _copy(c)
    hit = np.flatnonzero((c.pos != -1) & c.seq_t[s])
    d = rng.randint(-8, 8)
    assert a.pos_add_idxs(hit, d).tolist() == [i for i in hit.tolist() if b.pos_add(i, d)]
    _same(a, b)

    a, b = _copy(c), _copy(c)
    d = rng.randint(1, 4)
    a.pos_div_idxs(hit, d)
    for i in hit.tolist():
        b.pos_div(i, d)
    _same(a, b)

    a, b = _copy(c), _copy(c)
    dst = (s + 1) % 5
    cp = np.flatnonzero((c.pos != -1) & c.seq_t[s] & ~c.seq_t[dst])
    a.seq_add_idxs(cp, dst)
    for i in cp.tolist():
        b.seq_add(i, dst)
    _same(a, b)

    a, b = _copy(c), _copy(c)
    used = np.flatnonzero(c.pos != -1)
    a.clear_idxs(used)
    for i in used.tolist():
        b.rm(i)
    _same(a, b)


def test_vector_cell_ops_reject_like_the_per_cell_ops():
    c = KVCells(4)
    c.pos[1] = 3
    c.seq_t[0, 1] = True
    for call in (lambda: c.clear_idxs([0]), lambda: c.pos_add_idxs([2], 1), lambda: c.pos_div_idxs([1], 0),
                 lambda: c.seq_add_idxs([1], 0), lambda: c.seq_add_idxs([7], 1)):
        try:
            call()
        except KVCellsError:
            continue
        raise AssertionError("expected KVCellsError")
    assert c.pos.tolist() == [-1, 3, -1, -1] and not c.has_shift


def test_state_asks_pyggml_accessors(monkeypatch):
    """The compared state reports what pyggml's own seq_pos_min/max and used counters return
    (not values recomputed from the cells), so a wrong accessor shows up as a mismatch."""
    from pyggml.memory import KVCache

    rng = random.Random(3)
    cfg = pm.random_config(rng)
    mem = pm.make_memory({"config": {**cfg, "unified": True}, "ops": []})
    if not isinstance(mem, KVCache):
        return
    monkeypatch.setattr(KVCache, "seq_pos_min", lambda self, s: 12345)
    monkeypatch.setattr(KVCells, "get_used", lambda self: 777)
    st = pm.state(mem)
    assert st["seq_pos"][0][0] == 12345
    assert st["streams"][0]["used"] == 777
