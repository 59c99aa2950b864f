"""The allocator's fast paths against its general paths and the running reference.

``pyggml.batch`` takes plain-Python paths for small batches (a decode step) and numpy paths for
big ones (one sequence per token: vectorized stats and order checks, array-backed ubatches;
``Batch.to_ext``: a seq-id column, vectorized auto positions, columns handed to the allocator
without per-token lists).  The size cut-off is the module constant ``_SMALL``: forcing it to 0
(numpy everywhere) or to a huge value (Python everywhere) must not change any outcome.
Big batches (> 32 tokens) are also diffed against the reference: the paritychecker's random
slice stays at <= 32 tokens.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.batch import Batch, BatchAllocr, BatchExt, PosRanges, allocr, ext, from_legacy
from pyggml.errors import BatchError
from pyggml.parity import batch as pb
from pyggml.parity import first_difference
from pyggml.reference import batch as ref


def big_spec(rng: random.Random) -> dict[str, Any]:
    """A random legacy batch of 33..300 tokens (mostly one sequence per token, some coupled
    tokens and defects), with split plans of every mode."""
    n_seq_max = rng.choice([1, 2, 4, 8, 16, 64, 256])
    seqs = rng.sample(range(n_seq_max), min(n_seq_max, rng.choice([1, 2, 3, 8, 70])))
    n = rng.choice([33, 40, 64, 100, 129, 300])
    mem = None
    if rng.random() < 0.5:
        mem = [[s, 0, rng.randrange(0, 20)] for s in seqs if rng.random() < 0.5]
    nxt = {s: 0 for s in seqs}
    for s, _, hi in mem or []:
        nxt[s] = hi + 1
    coupled = rng.random() < 0.15
    groups, positions = [], []
    for _ in range(n):
        g = rng.sample(seqs, 2) if coupled and len(seqs) > 1 and rng.random() < 0.3 else [rng.choice(seqs)]
        p = max(nxt[s] for s in g) + (rng.choice([0, 1]) if rng.random() < 0.05 else 0)
        for s in g:
            nxt[s] = p + 1
        groups.append(g)
        positions.append(p)
    d = rng.random()
    if d < 0.05:
        positions[rng.randrange(n)] -= rng.choice([1, 3])
    elif d < 0.08:
        groups[rng.randrange(n)] = [rng.choice([-1, n_seq_max])]
    elif d < 0.1 and mem:
        mem[0][2] += 1
    if rng.random() < 0.3:
        order = sorted(range(n), key=lambda i: (rng.random() < 0.5, i)) if rng.random() < 0.7 \
            else rng.sample(range(n), n)
        groups = [groups[i] for i in order]
        positions = [positions[i] for i in order]
    tokens = [rng.randrange(100) for _ in range(n)]
    if rng.random() < 0.04:
        tokens[rng.randrange(n)] = rng.choice([100, -5])
    embd = rng.random() < 0.2
    n_pos = rng.choice([1, 1, 4]) if embd else rng.choice([1, 1, 1, 4])
    auto = rng.random() < 0.25 and all(0 <= g[0] < n_seq_max for g in groups)
    lg = {"n_tokens": n, "token": None if embd else tokens,
          "embd": [float(i % 7) for i in range(2 * n)] if embd else None,
          "pos": None if auto else ([positions[i] if j == 0 else rng.randrange(4) for j in range(n_pos)
                                     for i in range(n)] if embd else positions),
          "n_seq_id": [len(g) for g in groups], "seq_id": groups,
          "logits": None if rng.random() < 0.3 else [int(rng.random() < 0.2) for _ in range(n)]}
    plans = []
    for _ in range(rng.randint(1, 4)):
        mode = rng.choice(["simple", "equal", "equal", "seq"])
        plan: dict[str, Any] = {"mode": mode, "n_ubatch": rng.choice([1, 3, 7, 16, 64, 128, 512])}
        if mode == "equal":
            plan["sequential"] = rng.random() < 0.4
            if rng.random() < 0.2 and plan["n_ubatch"] > 2:
                plan["keep_tail"] = rng.randint(1, 2)
        plans.append(plan)
    return {"n_tokens_max": n, "n_embd_inp": 2, "n_seq_max": n_seq_max, "n_vocab": 100,
            "n_pos_per_embd": n_pos, "mem": mem, "output_all": rng.random() < 0.1, "legacy": lg,
            "splits": plans}


@pytest.fixture
def small_cut(monkeypatch):
    """Set the Python/numpy cut-off of the allocator and the batch conversion."""
    def set_cut(v: int) -> None:
        monkeypatch.setattr(allocr, "_SMALL", v)
        monkeypatch.setattr(ext, "_SMALL", v)
    return set_cut


@settings(derandomize=True, max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_big_batches_match_reference(seed):
    spec = big_spec(random.Random(seed))
    diff = first_difference(pb.ours(spec), ref.run(spec))
    assert diff is None, (diff, spec)


@pytest.mark.parametrize("seed", range(4))
def test_cutoff_does_not_change_outcomes(small_cut, seed):
    # numpy everywhere, the default, Python everywhere: one outcome, small and big batches
    rng = random.Random(seed)
    specs = [pb.random_spec(rng) for _ in range(60)] + [big_spec(rng) for _ in range(25)]
    for spec in specs:
        outs = []
        for cut in (0, 32, 10**9):
            small_cut(cut)
            outs.append(pb.ours(spec))
        assert outs[0] == outs[1] == outs[2], spec


def _outcome(e: BatchExt, n_pos: int, plans: list[dict[str, Any]], output_all: bool) -> dict[str, Any]:
    a = BatchAllocr(n_pos)
    try:
        a.init(e, output_all=output_all)
    except BatchError as err:
        return {"error": err.message, "reason": err.reason}
    out: dict[str, Any] = {"log": list(a.log), "n_outputs": a.n_outputs, "seq_id": a.seq_id,
                           "output": a.output.tolist(), "pos": a.pos.tolist(),
                           "stats": [(s, a.seq_pos_min(s), a.seq_pos_max(s)) for s in a.seqs],
                           "seq_idx": a.seq_idx.tolist()}
    for plan in plans:
        a.split_reset()
        ubs = []
        while True:
            if plan["mode"] == "simple":
                ub = a.split_simple(plan["n_ubatch"])
            elif plan["mode"] == "equal":
                ub = a.split_equal(plan["n_ubatch"], plan["sequential"])
            else:
                ub = a.split_seq(plan["n_ubatch"])
            if ub is None:
                break
            ubs.append(ub.describe())
        out[str(plan)] = (ubs, a.n_used, list(a.out_ids))
    return out


def _random_batch(rng: random.Random) -> tuple[Batch, dict[str, Any]]:
    n = rng.choice([1, 2, 5, 32, 33, 64, 200])
    n_seq_max = rng.choice([1, 3, 8])
    kind = rng.choice(["none", "int", "array", "array", "list"])
    hi = n_seq_max + (1 if rng.random() < 0.05 else 0)  # now and then an out-of-range id
    seq_ids: Any = None
    if kind == "int":
        seq_ids = rng.randrange(hi)
    elif kind == "array":
        seq_ids = np.array([rng.randrange(hi) for _ in range(n)], dtype=rng.choice([np.int32, np.int64]))
    elif kind == "list":
        seq_ids = [rng.randrange(hi) for _ in range(n)]
    pos = None
    if rng.random() < 0.4:
        pos = np.arange(n) + rng.randrange(5)
        if rng.random() < 0.1:
            pos[rng.randrange(n)] += 2
    output: Any = rng.choice([None, True, False, "mask"])
    if output == "mask":
        output = np.array([rng.random() < 0.3 for _ in range(n)])
    b = Batch(tokens=[rng.randrange(50) for _ in range(n)], pos=pos, seq_ids=seq_ids, output=output)
    mem = PosRanges({s: (0, rng.randrange(10)) for s in range(n_seq_max) if rng.random() < 0.5})
    return b, {"n_seq_max": n_seq_max, "n_vocab": 50, "mem": mem if rng.random() < 0.7 else None}


def _general_ext(b: Batch, kw: dict[str, Any]) -> BatchExt:
    # the same batch through the per-token lists of the legacy path
    n = b.n_tokens
    e = BatchExt(n_tokens_max=max(n, 1), n_embd_inp=0, n_seq_max=kw["n_seq_max"], mem=kw["mem"],
                 n_vocab=kw["n_vocab"])
    rows = None
    if b.seq_ids is not None:
        rows = [[int(b.seq_ids)]] * n if isinstance(b.seq_ids, int) else [[int(v)] for v in b.seq_ids]
    logits = None if b.output is None else (
        [int(b.output)] * n if isinstance(b.output, bool) else b.output.astype(int).tolist())
    return from_legacy(e, n_tokens=n, token=b.tokens.tolist(), pos=None if b.pos is None else b.pos.tolist(),
                       n_seq_id=None if rows is None else [1] * n, seq_id=rows, logits=logits)


@pytest.mark.parametrize("seed", range(3))
def test_to_ext_fast_path_matches_lists(seed):
    rng = random.Random(seed)
    plans = [{"mode": "simple", "n_ubatch": 16}, {"mode": "equal", "n_ubatch": 16, "sequential": False},
             {"mode": "equal", "n_ubatch": 7, "sequential": True}, {"mode": "seq", "n_ubatch": 16}]
    for _ in range(80):
        b, kw = _random_batch(rng)
        fast = b.to_ext(**kw)
        slow = _general_ext(b, kw)
        cols = fast.columns()  # as handed over by the conversion (or built from the lists)
        assert fast.describe() == slow.describe()
        slow_cols = slow.columns()
        for x, y in zip(cols, slow_cols, strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y)
        assert _outcome(b.to_ext(**kw), 1, plans, False) == _outcome(slow, 1, plans, False)
        assert _outcome(b.to_ext(**kw), 1, plans, True) == _outcome(_general_ext(b, kw), 1, plans, True)


def test_lazy_lists_follow_builder_edits():
    # a converted batch edited afterwards (builder calls, pokes) reads back the edits
    n = 40
    e = Batch(tokens=np.arange(n), seq_ids=np.zeros(n, np.int64)).to_ext(n_seq_max=2, n_vocab=100)
    assert e.add_seq(3, 1)
    e.pos[5][0] = 99
    e.invalidate()
    assert e.seq_ins[3] == [0, 1]
    assert e.columns()[2][5, 0] == 99
    with pytest.raises(BatchError) as err:
        BatchAllocr().init(e)
    assert err.value.reason in ("non-continuous", "decreasing")


def test_decode_step_ubatch():
    # the 1-token decode: Python path end to end, same ubatch as the numpy path would give
    mem = PosRanges({0: (0, 9)})
    a = BatchAllocr()
    a.init(Batch(tokens=[7]).to_ext(n_seq_max=1, n_vocab=10, mem=mem))
    a.split_reset()
    ub = a.split_simple(512)
    assert ub.describe() == {
        "equal_seqs": False, "n_tokens": 1, "n_seq_tokens": 1, "n_seqs": 1, "n_seqs_unq": 1, "n_pos": 1,
        "token": [7], "embd": None, "pos": [10], "seq_id": [[0]], "seq_id_unq": [0], "seq_idx": [[0, 0]],
        "output": [1], "batch_idxs": [0]}
    assert a.out_ids == [0] and a.split_simple(512) is None


def _layout_spec(seqs: list[int], pos: list[int], mem=None) -> dict[str, Any]:
    n = len(seqs)
    return {"n_tokens_max": n, "n_embd_inp": 2, "n_seq_max": 256, "n_vocab": 10, "n_pos_per_embd": 1,
            "mem": mem, "output_all": False,
            "legacy": {"n_tokens": n, "token": [1] * n, "embd": None, "pos": pos, "n_seq_id": [1] * n,
                       "seq_id": [[s] for s in seqs], "logits": None},
            "splits": [{"mode": "equal", "n_ubatch": 16}, {"mode": "seq", "n_ubatch": 8},
                       {"mode": "simple", "n_ubatch": 5}]}


def _layouts():
    # grouped-by-seq runs (the vectorized stats' shortcut) and the defects that leave it
    big = 2**31 - 1
    yield [0] * 40, list(range(40))
    yield [0] * 20 + [1] * 20, list(range(20)) * 2
    yield [1] * 20 + [0] * 20, list(range(20)) * 2  # seqs not increasing
    yield [0] * 20 + [1] * 20, list(range(-3, 17)) * 2  # below -1
    yield [0] * 20 + [1] * 20, list(range(-1, 19)) * 2
    yield [0] * 40, list(range(20)) + list(range(19, 39))  # a repeated position
    yield [0] * 40, list(range(20)) + list(range(21, 41))  # a gap
    yield [0] * 40, list(range(20)) + list(range(18, 38))  # decreasing
    yield [0] * 20 + [1] * 20, [big - 19 + i for i in range(20)] + [-(2**31) + i for i in range(20)]
    yield [0] * 20 + [1] * 20, [-(2**31) + i for i in range(20)] + [big - 19 + i for i in range(20)]
    yield [s for s in range(40)], [0] * 40
    yield [s % 3 for s in range(40)], [s // 3 for s in range(40)]
    yield [0] * 33, [5] * 33


@pytest.mark.parametrize("k", range(13))
def test_stats_layouts(small_cut, k):
    seqs, pos = list(_layouts())[k]
    for mem in (None, [[0, 0, 4], [1, 0, 0]]):
        spec = _layout_spec(seqs, pos, mem)
        outs = []
        for cut in (0, 10**9):
            small_cut(cut)
            outs.append(pb.ours(spec))
        assert outs[0] == outs[1]
        assert first_difference(outs[0], ref.run(spec)) is None
