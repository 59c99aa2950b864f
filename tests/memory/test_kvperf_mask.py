"""The vectorized KQ mask builder (pyggml/memory/mask.py) against a cell-by-cell model of
set_input_kq_mask_impl (row reuse, M-RoPE tie rule, SWA, ALiBi, F16, several streams).  The
builder's parity with the running reference is in pyggml/parity/memory.py; this model also
covers the M-RoPE ubatches the probe does not build."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.batch import UBatch
from pyggml.memory.kv_cells import MAX_SEQ, KVCells
from pyggml.memory.mask import kq_mask
from pyggml.memory.swa import SWAType, is_masked


def _model(cells, seq_to_stream, ub, n_kv, n_stream, causal, f16, swa_type, n_swa, alibi):
    """set_input_kq_mask_impl written out cell by cell, in the reference's order."""
    n = ub.n_tokens
    n_tps = n // n_stream
    out = np.zeros((n, n_kv), np.float32)
    seq_min: dict[int, int] = {}
    for i in range(n):
        s = ub.seq_id[i][0]
        seq_min[s] = min(seq_min.get(s, 2**31 - 1), int(ub.pos[i]))
    is_2d = ub.n_pos >= 3
    reach = (n_swa + 32) & 0xFFFFFFFF
    reach = reach - 2**32 if reach >= 2**31 else reach
    for s in range(n_stream):
        srct: dict[int, int] = {}
        idxs: dict[int, list[int]] = {}
        for ii in range(n_tps):
            i = s * n_tps + ii
            sid = ub.seq_id[i][0]
            c = cells[seq_to_stream[sid]]
            p1 = int(ub.pos[i])
            prev = False
            if not alibi:
                if sid in srct:
                    out[i] = out[srct[sid]]
                    prev = True
                else:
                    idxs[sid] = []
                    srct[sid] = i
            for j in (list(idxs[sid]) if prev else range(n_kv)):
                drop = c.pos[j] == -1 or not c.seq_t[sid, j]
                if not drop:
                    p0 = int(c.pos[j])
                    if not alibi and not prev and p0 + reach >= seq_min[sid]:
                        idxs[sid].append(j)
                    if causal and p0 > p1:
                        drop = True
                    elif causal and is_2d and p0 == p1:
                        x, y = int(ub.pos[i + 2 * n]), int(ub.pos[i + n])
                        ey, ex = int(c.ext_y[j]), int(c.ext_x[j])
                        drop = ey > y or (ey == y and ex > x)
                    if not drop and swa_type != SWAType.NONE:
                        drop = bool(is_masked(n_swa, swa_type, p0, p1))
                if drop:
                    out[i, j] = -np.inf
                else:
                    out[i, j] = float(-abs(p0 - p1)) if alibi else 0.0
    res = out.reshape(n_stream, n_tps, n_kv)
    return res.astype(np.float16) if f16 else res


def _random_cells(rng: np.random.Generator, size: int, n_seq: int) -> KVCells:
    c = KVCells(size)
    for i in range(size):
        if rng.random() < 0.25:
            continue
        c.pos[i] = rng.integers(0, 24)
        c.ext_x[i], c.ext_y[i] = rng.integers(0, 3, 2)
        for s in rng.choice(n_seq, rng.integers(1, min(3, n_seq) + 1), replace=False):
            c.seq_t[s, i] = True
    return c


def _random_ubatch(rng: np.random.Generator, n_stream: int, n_tps: int, seq_pool: list[list[int]],
                   n_pos: int) -> UBatch:
    n = n_stream * n_tps
    seq_id: list[tuple[int, ...]] = []
    for s in range(n_stream):
        pool = seq_pool[s]
        for _ in range(n_tps):
            k = int(rng.integers(1, 3))
            seq_id.append(tuple(int(v) for v in rng.choice(pool, min(k, len(pool)), replace=False)))
    pos = rng.integers(0, 28, n * n_pos).astype(np.int32)
    if n_pos >= 3:
        pos[n:] = rng.integers(0, 3, n * (n_pos - 1))
    unq = sorted({t[0] for t in seq_id})
    return UBatch(equal_seqs=False, n_tokens=n, n_seq_tokens=1, n_seqs=n, n_seqs_unq=len(unq), n_pos=n_pos,
                  token=None, embd=None, pos=pos, seq_id=seq_id, seq_id_unq=unq,
                  output=np.zeros(n, np.int8), batch_idxs=np.arange(n, dtype=np.int32))


@settings(derandomize=True, max_examples=250, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_mask_matches_cell_model(seed):
    rng = np.random.default_rng(seed)
    n_stream = int(rng.choice([1, 1, 2, 3]))
    n_seq = int(rng.integers(1, 5))
    size = int(rng.integers(4, 40))
    unified = n_stream == 1 and rng.random() < 0.7
    if unified:
        cells = [_random_cells(rng, size, n_seq)]
        seq_to_stream = [0] * MAX_SEQ
        seq_pool = [list(range(n_seq))]
    else:
        # one stream per sequence; each stream block of the ubatch holds one sequence
        n_seq = max(n_seq, n_stream)
        cells = [_random_cells(rng, size, n_seq) for _ in range(n_seq)]
        seq_to_stream = list(range(n_seq))
        order = rng.permutation(n_seq)[:n_stream]
        seq_pool = [[int(s)] for s in order]
    n_tps = int(rng.choice([1, 1, 2, 5, 9]))
    ub = _random_ubatch(rng, n_stream, n_tps, seq_pool, int(rng.choice([1, 1, 3, 4])))
    n_kv = int(rng.integers(0, size + 1))
    swa_type = SWAType(int(rng.integers(0, 4)))
    windows = [0, 1, 2, 4, 7, 2**31 - 20, 2**32 - 40] if swa_type else [0, 2**31]
    n_swa = int(rng.choice(windows))
    if swa_type == SWAType.CHUNKED and n_swa == 0:
        n_swa = 3
    if swa_type == SWAType.CHUNKED:
        n_swa = min(n_swa, 64)
    kw = dict(causal=bool(rng.random() < 0.75), f16=bool(rng.random() < 0.3), swa_type=swa_type,
              n_swa=n_swa, alibi=bool(rng.random() < 0.15))
    got = kq_mask(cells, seq_to_stream, ub, n_kv, n_stream, **kw)
    want = _model(cells, seq_to_stream, ub, n_kv, n_stream, **kw)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    out = np.full(want.shape, 7, want.dtype)
    assert kq_mask(cells, seq_to_stream, ub, n_kv, n_stream, out=out, **kw) is out
    assert out.tobytes() == want.tobytes()


def test_row_reuse_is_observable():
    # n_swa near 2^31: (int32)(n_swa + 32) wraps negative, so no cell counts as "near" and a later
    # token keeps the first token's row, future cells included (the reference's shortcut)
    c = KVCells(4)
    for i in range(4):
        c.pos[i] = i
        c.seq_t[0, i] = True
    ub = UBatch(equal_seqs=False, n_tokens=2, n_seq_tokens=1, n_seqs=2, n_seqs_unq=1, n_pos=1, token=None,
                embd=None, pos=np.array([3, 1], np.int32), seq_id=[(0,), (0,)], seq_id_unq=[0],
                output=np.zeros(2, np.int8), batch_idxs=np.arange(2, dtype=np.int32))
    m = kq_mask([c], [0] * MAX_SEQ, ub, 4, 1, swa_type=SWAType.STANDARD, n_swa=2**31 - 1)
    assert m[0, 1].tolist() == m[0, 0].tolist() == [0.0, 0.0, 0.0, 0.0]
    m = kq_mask([c], [0] * MAX_SEQ, ub, 4, 1)
    assert m[0, 1].tolist() == [0.0, 0.0, -np.inf, -np.inf]


def test_bad_arguments():
    c = KVCells(8)
    ub = UBatch(equal_seqs=False, n_tokens=3, n_seq_tokens=1, n_seqs=3, n_seqs_unq=1, n_pos=1, token=None,
                embd=None, pos=np.arange(3, dtype=np.int32), seq_id=[(0,)] * 3, seq_id_unq=[0],
                output=np.zeros(3, np.int8), batch_idxs=np.arange(3, dtype=np.int32))
    with pytest.raises(ValueError, match="multiple of n_stream"):
        kq_mask([c], [0] * MAX_SEQ, ub, 8, 2)
    with pytest.raises(ValueError, match="n_kv"):
        kq_mask([c], [0] * MAX_SEQ, ub, 9, 1)
    with pytest.raises(ValueError, match="out must be"):
        kq_mask([c], [0] * MAX_SEQ, ub, 8, 1, out=np.empty((1, 3, 8), np.float16))
