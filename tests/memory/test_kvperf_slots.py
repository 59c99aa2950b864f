"""The decode hot path of the KV cache: find_slot's fast paths, the vectorized apply_ubatch and
the KVCells queries behind them, each against a cell-by-cell model of the reference's loops
(llama_kv_cache::find_slot / apply_ubatch, llama_kv_cells).  Parity with the running reference is
in pyggml/parity/memory.py and kv_cells.py; the per-token budget of the issue is checked here."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.batch import UBatch
from pyggml.memory.kv_cache import KVCache, KVCacheError, SlotInfo
from pyggml.memory.kv_cells import KVCells, KVCellsError
from pyggml.memory.swa import SWAType, is_masked


def _model_find_slot(kv: KVCache, ub: UBatch, cont: bool) -> list[list[int]] | None:
    """find_slot's sequential scan, cell by cell."""
    n_tokens, n_seqs = ub.n_tokens, 1
    if kv.n_stream > 1:
        n_seqs = ub.n_seqs_unq
        n_tokens //= n_seqs
    res = []
    for s in range(n_seqs):
        c = kv.cells[kv.seq_to_stream[ub.seq_id_unq[s]]]
        size = c.size
        head = kv.heads[kv.seq_to_stream[ub.seq_id_unq[s]]]
        if head > int(np.count_nonzero(c.pos != -1)) + 2 * n_tokens:
            head = 0
        if n_tokens > size:
            return None
        n_test = n_tokens if cont else 1
        n_tested = 0
        idxs: list[int] = []
        while True:
            if head + n_test > size:
                n_tested += size - head
                head = 0
                continue
            for _ in range(n_test):
                idx = head
                head += 1
                n_tested += 1
                can = c.pos[idx] == -1
                held = np.flatnonzero(c.seq_t[:, idx])
                if not can and held.size == 1:
                    pmax = max(int(p) for p in c.pos[c.seq_t[held[0]]])
                    can = bool(is_masked(kv.n_swa, kv.swa_type, int(c.pos[idx]), pmax + 1))
                if can:
                    idxs.append(idx)
                elif cont:
                    break
            if len(idxs) == n_tokens:
                break
            if cont:
                idxs = []
            if n_tested >= size:
                return None
        res.append(idxs)
    return res


def _model_apply(kv: KVCache, sinfo: SlotInfo, ub: UBatch) -> None:
    """apply_ubatch token by token through the KVCells operations."""
    max_rm: dict[int, int] = {}
    n = len(sinfo.idxs[0])
    for s, st_ in enumerate(sinfo.strm):
        c = kv.cells[st_]
        for ii, idx in enumerate(sinfo.idxs[s]):
            i = s * n + ii
            if c.pos[idx] != -1:
                sid = c.seq_get(idx)
                max_rm[sid] = max(max_rm.get(sid, -1), int(c.pos[idx]))
                c.rm(idx)
            c.pos_set(idx, int(ub.pos[i]))
            if ub.token is not None or ub.n_pos >= 3:
                c.ext_set(idx, int(ub.pos[i + 2 * ub.n_tokens]) if ub.n_pos >= 3 else 0,
                          int(ub.pos[i + ub.n_tokens]) if ub.n_pos >= 3 else 0,
                          int(ub.token[i]) if ub.token is not None else -1)
            for sid in ub.seq_id[i]:
                c.seq_add(idx, sid)
    for sid in sorted(max_rm):
        c = kv.cells[kv.seq_to_stream[sid]]
        lo = c.seq_pos_min(sid)
        if lo <= max_rm[sid]:
            kv.log.append(f"apply_ubatch: purging positions [{lo}, {max_rm[sid]}] of sequence {sid} "
                          "from KV cache\n")
            kv.seq_rm(sid, lo, max_rm[sid] + 1)
    for s, st_ in enumerate(sinfo.strm):
        kv.heads[st_] = sinfo.idxs[s][-1] + 1


def _random_cache(rng: np.random.Generator) -> KVCache:
    unified = bool(rng.random() < 0.6)
    n_seq = int(rng.integers(1, 5))
    swa_type = SWAType(int(rng.integers(0, 4)))
    kv = KVCache(kv_size=int(rng.choice([1, 5, 16, 37])), n_seq_max=n_seq, unified=unified,
                 swa_type=swa_type, n_swa=int(rng.integers(1, 6)) if swa_type else 0)
    fill = rng.random()
    for st_, c in enumerate(kv.cells):
        for i in range(c.size):
            if rng.random() > fill:
                continue
            c.pos[i] = rng.integers(0, 30)
            c.ext_tok[i] = rng.integers(0, 9)
            if unified:
                for s in rng.choice(n_seq, int(rng.integers(1, n_seq + 1)), replace=False):
                    c.seq_t[s, i] = True
            else:
                c.seq_t[st_, i] = True
        kv.heads[st_] = int(rng.integers(0, c.size + 1))
    return kv


def _random_ubatch(rng: np.random.Generator, kv: KVCache) -> UBatch:
    n_seq = kv.n_seq_max
    if kv.n_stream > 1:
        unq = sorted(int(s) for s in rng.choice(n_seq, int(rng.integers(1, n_seq + 1)), replace=False))
        per = int(rng.choice([1, 1, 2, 3]))
        seq_id = [(s,) for s in unq for _ in range(per)]
    else:
        n = int(rng.choice([1, 1, 1, 2, 4, 7]))
        seq_id = [tuple(int(v) for v in rng.choice(n_seq, int(rng.integers(1, n_seq + 1)), replace=False))
                  for _ in range(n)]
        unq = sorted({s for t in seq_id for s in t})
    n = len(seq_id)
    n_pos = int(rng.choice([1, 1, 3]))
    pos = rng.integers(0, 40, n * n_pos).astype(np.int32)
    token = rng.integers(0, 100, n).astype(np.int32) if rng.random() < 0.8 else None
    return UBatch(equal_seqs=True, n_tokens=n, n_seq_tokens=n // len(unq) if kv.n_stream > 1 else 1,
                  n_seqs=len(unq) if kv.n_stream > 1 else n, n_seqs_unq=len(unq), n_pos=n_pos, token=token,
                  embd=None, pos=pos, seq_id=seq_id, seq_id_unq=unq, output=np.zeros(n, np.int8),
                  batch_idxs=np.arange(n, dtype=np.int32))


def _state(kv: KVCache):
    return [c.describe() for c in kv.cells], list(kv.heads), list(kv.log)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_find_slot_and_apply_match_cell_model(seed):
    rng = np.random.default_rng(seed)
    kv = _random_cache(rng)
    ub = _random_ubatch(rng, kv)
    cont = bool(rng.random() < 0.3)
    before = _state(kv)
    si = kv.find_slot(ub, cont)
    assert _state(kv)[:2] == before[:2]  # find_slot only logs
    want = _model_find_slot(kv, ub, cont)
    assert (None if si is None else si.idxs) == want
    if si is None:
        return
    other = copy.deepcopy(kv)
    try:
        _model_apply(other, si, ub)
    except Exception as e:  # the model raises where a precondition fails; the fast path must too
        try:
            kv.apply_ubatch(si, ub)
        except type(e):
            return
        raise AssertionError(f"apply_ubatch accepted what the model rejects: {e}") from e
    kv.apply_ubatch(si, ub)
    assert _state(kv) == _state(other)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_cells_queries_match_scans(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.choice([0, 1, 7, 255, 256, 257, 700, 1100]))
    c = KVCells(size)
    used = rng.random(size) < rng.choice([0.0, 0.01, 0.5, 1.0])
    c.pos[used] = rng.integers(-5, 50, int(used.sum()))
    c.pos[used & (c.pos == -1)] = 0
    for i in np.flatnonzero(used):
        c.seq_t[rng.integers(0, 4), i] = True
    idx = np.flatnonzero(c.pos != -1)
    assert c.get_used() == idx.size
    assert c.used_max_p1() == (int(idx[-1]) + 1 if idx.size else 0)
    assert c.used_min() == (int(idx[0]) if idx.size else 0)
    for s in range(5):
        ps = [int(c.pos[i]) for i in range(size) if c.seq_t[s, i]]
        assert c.seq_pos_min(s) == (min(ps) if ps else -1)
        assert c.seq_pos_max(s) == (max(ps) if ps else -1)
    assert c.seqs_present().tolist() == [s for s in range(256) if c.seq_t[s].any()]
    if size:
        ix = rng.choice(size, int(rng.integers(1, size + 1)), replace=False)
        saved = c.cp_idxs(ix)
        assert saved.pos.tolist() == c.pos[ix].tolist() and (saved.seq_t == c.seq_t[:, ix]).all()
        snapshot = c.describe()
        c.pos[ix] = 99
        c.seq_t[:, ix] = True
        c.set_idxs(ix, saved)
        assert c.describe() == snapshot


@settings(derandomize=True, max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_bulk_cell_copies_and_seq_rm(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    c = KVCells(n)
    used = rng.random(n) < 0.6
    c.pos[used] = rng.integers(0, 50, int(used.sum()))
    for i in np.flatnonzero(used):
        for s in rng.choice(6, int(rng.integers(1, 4)), replace=False):
            c.seq_t[s, i] = True
    k = int(rng.integers(1, n + 1))
    ix = rng.choice(n, k, replace=False)
    if rng.random() < 0.3:
        ix = np.sort(ix)
    elif rng.random() < 0.4:
        a = int(rng.integers(0, n))
        ix = np.arange(a, min(n, a + k))
    saved = c.cp_idxs(ix)
    assert (saved.seq_t == c.seq_t[:, ix]).all() and (saved.pos == c.pos[ix]).all()
    snapshot, seqs = c.describe(), c.seq_t.copy()
    c.seq_t[:, ix] = rng.random((256, ix.size)) < 0.01
    c.pos[ix] = 7
    c.set_idxs(ix, saved)
    assert (c.seq_t == seqs).all() and c.describe() == snapshot
    # many cells at once == one by one
    s = int(rng.integers(0, 6))
    cand = ix[(c.pos[ix] != -1) & c.seq_t[s, ix]]
    one = copy.deepcopy(c)
    freed = [int(i) for i in cand if one.seq_rm(int(i), s)]
    assert c.seq_rm_idxs(cand, s).tolist() == freed
    assert c.describe() == one.describe()
    if cand.size:
        with pytest.raises(KVCellsError):
            c.seq_rm_idxs(cand[:1], s)  # no longer held


def test_apply_rejects_empty_marker_position():
    kv = KVCache(kv_size=8, n_seq_max=1)
    for n in (1, 3):
        ub = UBatch(equal_seqs=False, n_tokens=n, n_seq_tokens=1, n_seqs=n, n_seqs_unq=1, n_pos=1,
                    token=None, embd=None, pos=np.array([4, 5, -1][-n:], np.int32), seq_id=[(0,)] * n,
                    seq_id_unq=[0], output=np.zeros(n, np.int8), batch_idxs=np.arange(n, dtype=np.int32))
        si = kv.find_slot(ub)
        before = _state(kv)
        with pytest.raises(KVCacheError, match="position -1"):
            kv.apply_ubatch(si, ub)
        assert _state(kv) == before

