"""The KV cache's bookkeeping: streams, slot search, ubatch placement, sequence operations,
``n_kv`` and the KQ mask.

llama.cpp: src/llama-kv-cache.cpp llama_kv_cache (find_slot, apply_ubatch, prepare, init_batch,
seq_rm/seq_cp/seq_keep/seq_add/seq_div, get_n_kv, set_input_kq_mask).  The K/V tensors themselves
and the RoPE shift graph belong to the decoder; this module owns which cell holds what.

Streams: with ``unified`` one stream serves every sequence (``seq_to_stream`` has 256 entries,
all 0); otherwise sequence s lives in stream s (``n_stream = n_seq_max`` entries).  Each stream has
its own cells and search head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..batch import BatchAllocr, UBatch
from ..errors import PyggmlError
from .kv_cells import MAX_SEQ, KVCells
from .status import MemoryStatus
from .swa import SWAType, is_masked

_POS_MAX = 2**31 - 1
_DROP_KEEP = np.array([-np.inf, 0.0], np.float32)  # indexed by "visible": the mask values


class KVCacheError(PyggmlError, ValueError):
    """A call the reference rejects with GGML_ASSERT (a bad seq id for the stream layout, a
    partial cross-stream seq_cp, ...)."""


@dataclass
class SlotInfo:
    """Where a ubatch goes: for each stream it touches, the cell indices (one per token)."""

    s0: int
    s1: int
    strm: list[int]
    idxs: list[list[int]]

    def describe(self) -> dict:
        return {"strm": list(self.strm), "idxs": [list(v) for v in self.idxs]}


class KVCache:
    def __init__(self, *, kv_size: int, n_seq_max: int, unified: bool = True, n_pad: int = 1,
                 n_swa: int = 0, swa_type: SWAType | int = SWAType.NONE, alibi: bool = False) -> None:
        if kv_size % n_pad:
            raise KVCacheError(f"kv_size {kv_size} is not a multiple of n_pad {n_pad}")
        self.n_seq_max = n_seq_max
        self.n_stream = 1 if unified else n_seq_max
        self.n_pad = n_pad
        self.n_swa = n_swa
        self.swa_type = SWAType(swa_type)
        self.alibi = alibi
        self.cells = [KVCells(kv_size) for _ in range(self.n_stream)]
        self.heads = [0] * self.n_stream
        self.seq_to_stream = [0] * MAX_SEQ if self.n_stream == 1 else list(range(self.n_stream))
        self.pending_copies: list[tuple[int, int]] = []  # (src stream, dst stream) buffer copies
        self.log: list[str] = []

    # ------------------------------------------------------------------ basics
    @property
    def size(self) -> int:
        return self.cells[0].size

    def _stream(self, seq_id: int) -> int:
        if not 0 <= seq_id < len(self.seq_to_stream):
            raise KVCacheError(f"seq_id {seq_id} out of range [0, {len(self.seq_to_stream)})")
        return self.seq_to_stream[seq_id]

    def clear(self) -> None:
        for c in self.cells:
            c.reset()
        self.heads = [0] * self.n_stream

    def seq_pos_min(self, seq_id: int) -> int:
        return self.cells[self._stream(seq_id)].seq_pos_min(seq_id)

    def seq_pos_max(self, seq_id: int) -> int:
        return self.cells[self._stream(seq_id)].seq_pos_max(seq_id)

    @property
    def has_shift(self) -> bool:
        return any(c.has_shift for c in self.cells)

    # ------------------------------------------------------------------ sequence operations
    @staticmethod
    def _range(p0: int, p1: int) -> tuple[int, int]:
        return max(p0, 0), (_POS_MAX if p1 < 0 else p1)

    def seq_rm(self, seq_id: int, p0: int, p1: int) -> bool:
        """Drop ``seq_id`` (-1: every sequence) from the cells with a position in [p0, p1)
        (negative bounds are open); the head moves back to the first freed cell."""
        if seq_id != -1:
            self._stream(seq_id)
        p0, p1 = self._range(p0, p1)
        streams = [self.seq_to_stream[seq_id]] if seq_id >= 0 else range(self.n_stream)
        for st in streams:
            c = self.cells[st]
            inr = (c.pos >= p0) & (c.pos < p1)
            if seq_id >= 0:
                hit = np.flatnonzero(inr & c.seq_t[seq_id])
                freed = [int(i) for i in hit if c.seq_rm(int(i), seq_id)]
            else:
                # every cell whose position is in range, including empty ones when p0 <= -1
                hit = np.flatnonzero(inr)
                freed = []
                for i in hit.tolist():
                    if c.pos[i] != -1:
                        c.rm(i)
                    freed.append(i)
            if freed and freed[0] < self.heads[st]:
                self.heads[st] = freed[0]
        return True

    def seq_cp(self, src: int, dst: int, p0: int, p1: int) -> None:
        """Add ``dst`` to the cells of ``src`` in [p0, p1).  Across streams only whole-cache
        copies exist: the destination stream becomes a copy of the source's cells of ``src``
        (the buffer copy itself is queued for the decoder's update)."""
        s0, s1 = self._stream(src), self._stream(dst)
        if s0 == s1:
            if src == dst:
                return
            p0, p1 = self._range(p0, p1)
            c = self.cells[s0]
            for i in np.flatnonzero((c.pos >= p0) & (c.pos < p1) & c.seq_t[src]).tolist():
                if not c.seq[i, dst]:
                    c.seq_add(i, dst)
            return
        full = not (0 < p0 and p0 + 1 < self.size) and not (0 < p1 and p1 + 1 < self.size)
        if not full:
            raise KVCacheError("seq_cp() is only supported for full KV buffers")
        a, b = self.cells[s0], self.cells[s1]
        b.reset()
        # the reference replays each cell as pos_set(pos - shift), seq_add, pos_add(shift); the
        # intermediate position can be negative after a seq_div (its assert is compiled out), the
        # end result is the source cell's pos and shift
        for i in np.flatnonzero(a.seq_t[src]).tolist():
            shift = int(a.shift[i])
            b.pos[i] = a.pos[i]
            b.seq[i, dst] = True
            if shift:
                b.shift[i] = shift
                b.has_shift = True
            b.ext_set(i, int(a.ext_x[i]), int(a.ext_y[i]), int(a.ext_tok[i]))
        self.heads[s1] = self.heads[s0]
        self.pending_copies.append((s0, s1))

    def seq_keep(self, seq_id: int) -> None:
        st = self._stream(seq_id)
        c = self.cells[st]
        freed = [i for i in range(c.size) if c.seq_keep(i, seq_id)]
        if freed and freed[0] < self.heads[st]:
            self.heads[st] = freed[0]

    def seq_add(self, seq_id: int, p0: int, p1: int, shift: int) -> None:
        """Shift the positions of ``seq_id`` in [p0, p1) by ``shift``; cells pushed below 0 are
        freed.  The head goes to the first freed cell, else back to 0."""
        st = self._stream(seq_id)
        if shift == 0:
            return
        p0, p1 = self._range(p0, p1)
        if p0 == p1:
            return
        c = self.cells[st]
        hit = np.flatnonzero((c.pos >= p0) & (c.pos < p1) & c.seq_t[seq_id]).tolist()
        freed = [i for i in hit if c.pos_add(i, shift)]
        self.heads[st] = freed[0] if freed else 0

    def seq_div(self, seq_id: int, p0: int, p1: int, d: int) -> None:
        st = self._stream(seq_id)
        if d == 1:
            return
        p0, p1 = self._range(p0, p1)
        if p0 == p1:
            return
        c = self.cells[st]
        for i in np.flatnonzero((c.pos >= p0) & (c.pos < p1) & c.seq_t[seq_id]).tolist():
            c.pos_div(i, d)

    # ------------------------------------------------------------------ placement
    def find_slot(self, ub: UBatch, cont: bool = False) -> SlotInfo | None:
        """Cells for every token of ``ub`` (searching each stream from its head, wrapping
        around), or None.  A cell is usable when empty, or when its only sequence has moved
        past it by more than the SWA window."""
        n_tokens, n_seqs = ub.n_tokens, 1
        if self.n_stream > 1:
            n_seqs = ub.n_seqs_unq
            n_tokens //= n_seqs
        res = SlotInfo(MAX_SEQ, 0, [0] * n_seqs, [[] for _ in range(n_seqs)])
        for s in range(n_seqs):
            seq_id = ub.seq_id_unq[s]
            st = self.seq_to_stream[seq_id]
            res.s0, res.s1 = min(res.s0, st), max(res.s1, st)
            res.strm[s] = st
            c = self.cells[st]
            head = self.heads[st]
            if head > c.get_used() + 2 * n_tokens:
                head = 0
            if n_tokens > c.size:
                self.log.append(f"find_slot: n_tokens = {n_tokens} > size = {c.size}\n")
                return None
            usable = self._usable(c)
            if cont:
                found = self._find_cont(usable, head, n_tokens)
            else:
                # cyclic order from the head: [head, size) then [0, head)
                found = (np.flatnonzero(usable[head:])[:n_tokens] + head).tolist()
                if len(found) < n_tokens:
                    found += np.flatnonzero(usable[:head])[: n_tokens - len(found)].tolist()
            if found is None or len(found) < n_tokens:
                return None
            res.idxs[s] = found
        return res

    def _usable(self, c: KVCells) -> np.ndarray:
        empty = c.pos == -1
        usable = empty.copy()
        if self.swa_type == SWAType.NONE:
            return usable
        one = ~empty & (c.seq_t.sum(axis=0) == 1)
        idx = np.flatnonzero(one)
        if idx.size:
            seq_of = c.seq_t[:, idx].argmax(axis=0)
            pmax = {int(s): c.seq_pos_max(int(s)) for s in np.unique(seq_of)}
            p1 = np.array([pmax[int(s)] + 1 for s in seq_of])
            usable[idx] = is_masked(self.n_swa, self.swa_type, c.pos[idx], p1)
        return usable

    @staticmethod
    def _find_cont(usable: np.ndarray, head: int, n: int) -> list[int] | None:
        # llama.cpp find_slot with cont=true: windows of n cells from the head, wrapping to 0
        size = usable.size
        tested = 0
        while True:
            if head + n > size:
                tested += size - head
                head = 0
                continue
            ok = True
            start = head
            for i in range(n):
                tested += 1
                head += 1
                if not usable[start + i]:
                    ok = False
                    break
            if ok:
                return list(range(start, start + n))
            if tested >= size:
                return None

    def apply_ubatch(self, sinfo: SlotInfo, ub: UBatch) -> None:
        """Write the ubatch's positions and sequences into its cells; a sequence whose cells were
        overwritten (SWA reuse) loses every position up to the highest one overwritten, so its
        positions stay contiguous."""
        max_rm: dict[int, int] = {}
        n = len(sinfo.idxs[0])
        for s, st in enumerate(sinfo.strm):
            c = self.cells[st]
            for ii, idx in enumerate(sinfo.idxs[s]):
                i = s * n + ii
                if c.pos[idx] != -1:
                    sid = c.seq_get(idx)
                    max_rm[sid] = max(max_rm.get(sid, -1), int(c.pos[idx]))
                    c.rm(idx)
                c.pos_set(idx, int(ub.pos[i]))
                if ub.token is not None:
                    c.ext_set(idx, 0, 0, int(ub.token[i]))
                for sid in ub.seq_id[i]:
                    c.seq_add(idx, sid)
        for sid in sorted(max_rm):
            if max_rm[sid] == -1:
                continue
            c = self.cells[self.seq_to_stream[sid]]
            lo = c.seq_pos_min(sid)
            if lo <= max_rm[sid]:
                self.log.append(f"apply_ubatch: purging positions [{lo}, {max_rm[sid]}] of sequence {sid} "
                                "from KV cache\n")
                self.seq_rm(sid, lo, max_rm[sid] + 1)
        for s, st in enumerate(sinfo.strm):
            self.heads[st] = sinfo.idxs[s][-1] + 1

    def prepare(self, ubatches: list[UBatch]) -> list[SlotInfo] | None:
        """Find slots for all ubatches as if each were applied in turn, then restore the cells
        and heads.  Quirks kept: a head is restored from the old head at the *position* of the
        stream in the slot info (right for a single stream), and cells purged outside the slots
        stay purged."""
        res: list[SlotInfo] = []
        states = []
        ok = True
        for ub in ubatches:
            si = self.find_slot(ub, False)
            if si is None:
                ok = False
                break
            res.append(si)
            saved = [self.cells[st].cp_idxs(si.idxs[k]) for k, st in enumerate(si.strm)]
            states.append((si, list(self.heads), saved))
            self.apply_ubatch(si, ub)
        for si, heads_old, saved in reversed(states):
            for k, st in enumerate(si.strm):
                self.cells[st].set_idxs(si.idxs[k], saved[k])
                self.heads[st] = heads_old[k]
        return res if ok else None

    def init_batch(self, allocr: BatchAllocr,
                   n_ubatch: int) -> tuple[MemoryStatus, list[SlotInfo], list[UBatch]]:
        """Split the validated batch (simple for one stream, sequential equal splits otherwise)
        and find slots for every ubatch: SUCCESS or FAILED_PREPARE."""
        allocr.split_reset()
        ubs: list[UBatch] = []
        while True:
            if self.n_stream == 1:
                ub = allocr.split_simple(n_ubatch)
            else:
                ub = allocr.split_equal(n_ubatch, True, 0)
            if ub is None:
                break
            ubs.append(ub)
        if allocr.n_used < allocr.n_tokens:
            return MemoryStatus.FAILED_PREPARE, [], ubs
        if any(int(ub.pos.min()) < 0 for ub in ubs):
            # the allocator lets a fresh sequence start at -1, which a cell cannot hold (-1 marks
            # an empty cell; the reference ends up with corrupt cells)
            raise KVCacheError("negative positions cannot be stored in the KV cache")
        sinfos = self.prepare(ubs)
        if sinfos is None:
            return MemoryStatus.FAILED_PREPARE, [], ubs
        return MemoryStatus.SUCCESS, sinfos, ubs

    def get_n_kv(self, sinfo: SlotInfo) -> int:
        """Cells the attention looks at: the used prefix padded to 256 (or n_pad), capped at the size."""
        pad = max(self.n_pad, 256)
        res = 0
        for st in sinfo.strm:
            c = self.cells[st]
            used = c.used_max_p1()
            res = max(res, min(c.size, max(pad, (used + pad - 1) // pad * pad)))
        return res

    # ------------------------------------------------------------------ KQ mask
    def kq_mask(self, ub: UBatch, n_kv: int, n_stream: int, *, causal: bool = True,
                f16: bool = False) -> np.ndarray:
        """The KQ mask of ``ub``: [n_stream, n_tokens / n_stream, n_kv] (ggml ne = [n_kv, n_tps, 1,
        n_stream]); 0 where token i may attend cell j, -inf elsewhere (or -|p0 - p1| with ALiBi).

        Mirrors set_input_kq_mask_impl including its row reuse: a later token of a sequence starts
        from the row of the sequence's first token in the stream and recomputes only the cells that
        were visible to it with a position within n_swa + 32 of the sequence's smallest ubatch
        position.  M-RoPE (2-D) ubatches are not handled here."""
        n_tokens = ub.n_tokens
        n_tps = n_tokens // n_stream
        out = np.empty((n_tokens, n_kv), np.float32)
        prim = np.fromiter((s[0] for s in ub.seq_id), dtype=np.int64, count=n_tokens)
        pos = ub.pos[:n_tokens].astype(np.int64)
        seq_min = {int(s): int(pos[prim == s].min()) for s in np.unique(prim)}
        swa = self.swa_type != SWAType.NONE
        for s in range(n_stream):
            lo, hi = s * n_tps, (s + 1) * n_tps
            sids = prim[lo:hi]
            streams = {self.seq_to_stream[int(v)] for v in np.unique(sids)}
            if len(streams) != 1:  # never produced by the splits: a block is one stream
                raise KVCacheError("a KQ mask block spans several streams")
            c = self.cells[streams.pop()]
            p0 = c.pos[:n_kv].astype(np.int64)  # [n_kv]
            block = out[lo:hi]  # [n_tps, n_kv]
            for sid in np.unique(sids).tolist():
                rows = np.flatnonzero(sids == sid)
                valid = c.seq_t[sid, :n_kv] & (p0 != -1)  # [n_kv]
                if self.alibi:
                    # no row reuse with ALiBi; integer negation first: a distance of 0 is +0.0
                    p1 = pos[lo + rows, None]
                    keep = self._keep(valid[None, :], p0[None, :], p1, causal, swa)
                    block[rows] = np.where(keep, (-np.abs(p0[None, :] - p1)).astype(np.float32), -np.inf)
                    continue
                f = rows[0]
                block[f] = _DROP_KEEP[self._keep(valid, p0, int(pos[lo + f]), causal, swa).view(np.uint8)]
                if rows.size > 1:
                    # later tokens: the first token's row, recomputed on the cells near the ubatch
                    later = rows[1:]
                    near = np.flatnonzero(valid & (p0 + np.int64(np.int32(self.n_swa + 32)) >= seq_min[sid]))
                    block[later] = block[f]
                    if near.size:
                        keep = self._keep(valid[near][None, :], p0[near][None, :], pos[lo + later, None],
                                          causal, swa)
                        block[np.ix_(later, near)] = _DROP_KEEP[keep.view(np.uint8)]
        mask = out.reshape(n_stream, n_tps, n_kv)
        return mask.astype(np.float16) if f16 else mask

    def _keep(self, valid, p0, p1, causal: bool, swa: bool):
        if causal:
            keep = valid & (p0 <= p1)
        else:
            keep = np.broadcast_to(valid, np.broadcast_shapes(np.shape(valid), np.shape(p1))).copy()
        if swa:
            keep &= ~is_masked(self.n_swa, self.swa_type, np.where(valid, p0, 0), p1)
        return keep

    # ------------------------------------------------------------------ canonical dump
    def describe(self) -> dict:
        return {
            "streams": [c.describe() for c in self.cells],
            "seq_pos": [[self.seq_pos_min(s), self.seq_pos_max(s)] for s in range(self.n_seq_max)],
            "has_shift": self.has_shift,
        }
