"""The KQ mask: which cache cells each token of a ubatch may attend to.

llama.cpp: src/llama-kv-cache.cpp set_input_kq_mask / set_input_kq_mask_impl.  The result has the
ggml shape ne = [n_kv, n_tps, 1, n_stream], i.e. numpy [n_stream, n_tps, n_kv]; an entry is 0 where
token i may see cell j and -inf elsewhere (with ALiBi: -|p0 - p1| instead of 0).  A cell is dropped
when it is empty, does not hold the token's primary sequence (``seq_id[i][0]``), is in the future
(causal), lies on the same position but a later 2-D spot (M-RoPE), or is outside the SWA window.

Row reuse (the reference's shortcut, kept because it is observable): a later token of a sequence
starts from the row of that sequence's first token in the stream block and recomputes only the
cells holding the sequence with ``p0 + (int32)(n_swa + 32) >=`` the sequence's smallest ubatch
position; other cells keep the first row's value.  With a sane window this equals computing every
row, but an ``n_swa`` near 2^31 wraps the reach negative and a later row then keeps the first
row's verdicts (future cells included).  ALiBi rows are all computed.

Values are written as bit patterns (0 -> +0.0, drop -> -inf) straight into the output dtype, so the
F32 and F16 layouts need no conversion pass: a bool "drop" array times the -inf pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .swa import SWAType, is_masked

if TYPE_CHECKING:
    from ..batch import UBatch
    from .kv_cells import KVCells

_F32, _F16 = np.dtype(np.float32), np.dtype(np.float16)
_NEG_INF_BITS = {_F32: (np.uint32, np.uint32(0xFF800000)), _F16: (np.uint16, np.uint16(0xFC00))}


def _i32(v: int) -> int:
    """A uint32 value seen as int32 (the reference's ``(int32_t) (n_swa + 32)``)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _write_drop(dst: np.ndarray, drop: np.ndarray) -> None:
    # dst (float32/float16, any shape) = -inf where drop else +0.0, via the bit patterns
    utype, bits = _NEG_INF_BITS[dst.dtype]
    np.multiply(drop, bits, out=dst.view(utype))


class _Ctx:
    """Per-call constants of set_input_kq_mask_impl's template parameters."""

    __slots__ = ("causal", "swa", "swa_type", "n_swa", "alibi", "is_2d", "pos", "n_tokens")

    def __init__(self, ub: UBatch, causal: bool, swa_type: SWAType, n_swa: int, alibi: bool) -> None:
        self.causal = causal
        self.swa_type = swa_type
        self.swa = swa_type != SWAType.NONE
        self.n_swa = n_swa
        self.alibi = alibi
        self.is_2d = ub.n_pos >= 3
        self.pos = ub.pos
        self.n_tokens = ub.n_tokens

    def drop(self, c: KVCells, sid: int, cols, p1: np.ndarray, toks: np.ndarray) -> np.ndarray:
        """bool [len(p1), n_cols]: which of the cells ``cols`` (a slice or index array) tokens
        ``toks`` (ubatch indices, positions ``p1`` int32 [r, 1]) may not see."""
        p0 = c.pos[cols]
        # bools: seq <= empty  <=>  not seq or empty
        base = np.less_equal(c.seq_t[sid, cols], p0 == -1)
        shape = (p1.shape[0], base.shape[0])
        if not (self.causal or self.swa):
            return np.broadcast_to(base, shape)
        drop = np.empty(shape, bool)
        if self.causal:
            np.greater(p0, p1, out=drop)  # int32 against int32: exact
            if self.is_2d:
                # M-RoPE tie rule: on the same position, a cell at a later 2-D spot (y, then x)
                # is in the future (llama_kv_cell_ext::is_2d_gt)
                n = self.n_tokens
                p1x = self.pos[toks + 2 * n][:, None]
                p1y = self.pos[toks + n][:, None]
                ex = c.ext_x[cols]
                ey = c.ext_y[cols]
                drop |= (p0 == p1) & ((ey > p1y) | ((ey == p1y) & (ex > p1x)))
            drop |= base
        else:
            drop[...] = base
        if self.swa:
            drop |= is_masked(self.n_swa, self.swa_type, p0, p1)
        return drop

    def alibi_rows(self, c: KVCells, sid: int, n_kv: int, p1: np.ndarray, toks: np.ndarray,
                   dtype) -> np.ndarray:
        drop = self.drop(c, sid, slice(0, n_kv), p1, toks)
        # integer negation first, then int -> float: a distance of 0 gives +0.0 as in the reference
        val = (-np.abs(c.pos[:n_kv].astype(np.int64) - p1.astype(np.int64))).astype(np.float32)
        val[drop] = -np.inf
        return val.astype(dtype)


def _as_slice(rows: np.ndarray) -> slice | np.ndarray:
    """A run of consecutive indices as a slice (plain views, no fancy-index copies)."""
    if rows.size and int(rows[-1]) - int(rows[0]) + 1 == rows.size:
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def kq_mask(cells: Sequence[KVCells], seq_to_stream: Sequence[int], ub: UBatch, n_kv: int, n_stream: int,
            *, causal: bool = True, f16: bool = False, swa_type: SWAType | int = SWAType.NONE, n_swa: int = 0,
            alibi: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """The KQ mask of ``ub`` as float32 (or float16) [n_stream, n_tokens / n_stream, n_kv]; each
    token reads the cells of its primary sequence's stream.  ``out``: an array of that shape and
    dtype to fill (a graph input buffer; saves allocating and faulting in a fresh one per call)."""
    n_tokens = ub.n_tokens
    if n_stream <= 0 or n_tokens % n_stream:
        raise ValueError(f"n_tokens {n_tokens} is not a multiple of n_stream {n_stream}")
    n_kv = int(n_kv)
    n_tps = n_tokens // n_stream
    dtype = _F16 if f16 else _F32
    if out is not None and (out.shape != (n_stream, n_tps, n_kv) or out.dtype != dtype):
        raise ValueError(f"out must be {dtype} {(n_stream, n_tps, n_kv)}, got {out.dtype} {out.shape}")
    pos = ub.pos
    seq_id = ub.seq_id

    if n_tokens == 1 and not alibi and ub.n_pos < 3:
        # decode: one row, nothing to reuse; a handful of whole-row numpy calls
        sid = seq_id[0][0]
        c = cells[seq_to_stream[sid]]
        if not 0 <= n_kv <= c.size:
            raise ValueError(f"n_kv {n_kv} out of range for a cache of {c.size} cells")
        p0 = c.pos[:n_kv]
        p1 = int(pos[0])
        # bools: seq <= empty  <=>  not seq or empty
        drop = np.less_equal(c.seq_t[sid, :n_kv], p0 == -1)
        if causal:
            drop |= p0 > p1
        if swa_type:
            drop |= is_masked(n_swa, swa_type, p0, p1)
        if out is None:
            out = np.empty((1, 1, n_kv), dtype)
        _write_drop(out, drop)
        return out

    if not 0 <= n_kv <= min((c.size for c in cells), default=0):
        raise ValueError(f"n_kv {n_kv} out of range for a cache of {cells[0].size if cells else 0} cells")
    if out is None:
        out = np.empty((n_stream, n_tps, n_kv), dtype)
    ctx = _Ctx(ub, causal, SWAType(swa_type), n_swa, alibi)
    full = slice(0, n_kv)

    if n_tokens == 1:
        sid = seq_id[0][0]
        c = cells[seq_to_stream[sid]]
        p1 = pos[:1, None]
        toks = np.zeros(1, np.int64)
        if alibi:
            out[0] = ctx.alibi_rows(c, sid, n_kv, p1, toks, dtype)
        else:
            _write_drop(out[0], ctx.drop(c, sid, full, p1, toks))
        return out

    prim = np.fromiter((s[0] for s in seq_id), np.int64, n_tokens)
    p1_all = pos[:n_tokens]
    # the smallest ubatch position of each sequence (over all streams)
    uniq, inv = np.unique(prim, return_inverse=True)
    seq_min = np.full(uniq.size, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(seq_min, inv, p1_all)
    seq_min_of = dict(zip(uniq.tolist(), seq_min.tolist(), strict=True))
    reach = _i32(n_swa + 32)

    for s in range(n_stream):
        lo = s * n_tps
        block = out[s]
        sids = prim[lo:lo + n_tps]
        for sid in np.unique(sids).tolist():
            c = cells[seq_to_stream[sid]]
            rows = np.flatnonzero(sids == sid)
            toks = rows + lo
            p1 = p1_all[toks][:, None]
            if alibi:
                block[_as_slice(rows)] = ctx.alibi_rows(c, sid, n_kv, p1, toks, dtype)
                continue
            f = int(rows[0])
            first = ctx.drop(c, sid, full, p1[:1], toks[:1])
            _write_drop(block[f:f + 1], first)
            if rows.size == 1:
                continue
            later = _as_slice(rows[1:])
            block[later] = block[f]
            # the cells of the sequence (whatever the first token's causal/SWA verdict) that lie
            # near the sequence's smallest ubatch position
            p0 = c.pos[:n_kv]
            valid = c.seq_t[sid, :n_kv] & (p0 != -1)
            # (summed in int64: the reference's int32 sum wraps only for positions within
            # n_swa + 32 of INT32_MAX)
            near = np.flatnonzero(valid & (p0.astype(np.int64) + reach >= seq_min_of[sid]))
            if not near.size:
                continue
            cols = _as_slice(near)
            d = ctx.drop(c, sid, cols, p1[1:], toks[1:])
            if isinstance(later, slice) and isinstance(cols, slice):
                _write_drop(block[later, cols], d)
            else:
                sub = np.empty(d.shape, dtype)
                _write_drop(sub, d)
                block[np.ix_(rows[1:], near)] = sub
    return out
