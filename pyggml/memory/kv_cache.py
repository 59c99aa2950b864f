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
from .kv_cells import MAX_SEQ, TOKEN_NULL, KVCells
from .mask import kq_mask as build_kq_mask
from .status import MemoryStatus
from .swa import SWAType, is_masked

_POS_MAX = 2**31 - 1


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
                 n_swa: int = 0, swa_type: SWAType | int = SWAType.NONE, alibi: bool = False,
                 n_pos_per_embd: int = 1, arch_can_shift: bool = True) -> None:
        if kv_size % n_pad:
            raise KVCacheError(f"kv_size {kv_size} is not a multiple of n_pad {n_pad}")
        if not 1 <= n_seq_max <= MAX_SEQ:
            raise KVCacheError(f"n_seq_max {n_seq_max} out of range [1, {MAX_SEQ}]")
        # the K-shift needs one position per embedding and one RoPE width for every layer
        # (llama_kv_cache::get_can_shift: false for M-RoPE models and for STEP35)
        self.n_pos_per_embd = n_pos_per_embd
        self.arch_can_shift = arch_can_shift
        self.n_seq_max = n_seq_max
        self.n_stream = 1 if unified else n_seq_max
        self.n_pad = n_pad
        self.n_swa = n_swa
        self.swa_type = SWAType(swa_type)
        self.alibi = alibi
        self.cells = [KVCells(kv_size) for _ in range(self.n_stream)]
        self.heads = [0] * self.n_stream
        self.seq_to_stream = [0] * MAX_SEQ if self.n_stream == 1 else list(range(self.n_stream))
        # (src stream, dst stream) buffer copies queued by cross-stream seq_cp (llama_kv_cache
        # sc_info); taken out by init_update
        self.pending_copies: list[tuple[int, int]] = []
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
        for c in self.cells:
            if c.has_shift:
                return True
        return False

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
                freed = c.seq_rm_idxs(hit, seq_id).tolist()
            else:
                # every cell whose position is in range (p0 >= 0 here, so never an empty one)
                hit = np.flatnonzero(inr)
                c.clear_idxs(hit[c.pos[hit] != -1])
                freed = hit.tolist()
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
            c.seq_add_idxs(np.flatnonzero((c.pos >= p0) & (c.pos < p1) & c.seq_t[src] & ~c.seq_t[dst]), dst)
            return
        full = not (0 < p0 and p0 + 1 < self.size) and not (0 < p1 and p1 + 1 < self.size)
        if not full:
            raise KVCacheError("seq_cp() is only supported for full KV buffers")
        a, b = self.cells[s0], self.cells[s1]
        b.reset()
        # the reference replays each cell as pos_set(pos - shift), seq_add, pos_add(shift); the
        # intermediate position can be negative after a seq_div (its assert is compiled out), the
        # end result is the source cell's pos and shift
        ix = np.flatnonzero(a.seq_t[src])
        b.pos[ix] = a.pos[ix]
        b.seq_t[dst, ix] = True
        b.shift[ix] = a.shift[ix]
        b.has_shift = bool(a.shift[ix].any())
        b.ext_x[ix] = a.ext_x[ix]
        b.ext_y[ix] = a.ext_y[ix]
        b.ext_tok[ix] = a.ext_tok[ix]
        self.heads[s1] = self.heads[s0]
        self.pending_copies.append((s0, s1))

    def seq_keep(self, seq_id: int) -> None:
        st = self._stream(seq_id)
        c = self.cells[st]
        freed = c.seq_keep_all(seq_id)
        if freed.size and freed[0] < self.heads[st]:
            self.heads[st] = int(freed[0])

    def seq_add(self, seq_id: int, p0: int, p1: int, shift: int) -> None:
        """Shift the positions of ``seq_id`` in [p0, p1) by ``shift``; cells pushed below 0 are
        freed.  The head goes to the first freed cell, else back to 0."""
        st = self._stream(seq_id)
        if self.n_pos_per_embd != 1:
            raise KVCacheError("seq_add() is only supported for n_pos_per_embd() == 1")
        if shift == 0:
            return
        p0, p1 = self._range(p0, p1)
        if p0 == p1:
            return
        c = self.cells[st]
        freed = c.pos_add_idxs(np.flatnonzero((c.pos >= p0) & (c.pos < p1) & c.seq_t[seq_id]), shift)
        self.heads[st] = int(freed[0]) if freed.size else 0

    def seq_div(self, seq_id: int, p0: int, p1: int, d: int) -> None:
        st = self._stream(seq_id)
        if self.n_pos_per_embd != 1:
            raise KVCacheError("seq_div() is only supported for n_pos_per_embd() == 1")
        if d == 1:
            return
        p0, p1 = self._range(p0, p1)
        if p0 == p1:
            return
        c = self.cells[st]
        c.pos_div_idxs(np.flatnonzero((c.pos >= p0) & (c.pos < p1) & c.seq_t[seq_id]), d)

    # ------------------------------------------------------------------ placement
    def find_slot(self, ub: UBatch, cont: bool = False) -> SlotInfo | None:
        """Cells for every token of ``ub`` (searching each stream from its head, wrapping
        around), or None.  A cell is usable when empty, or when its only sequence has moved
        past it by more than the SWA window."""
        n_tokens, n_seqs = ub.n_tokens, 1
        if self.n_stream > 1:
            n_seqs = ub.n_seqs_unq
            n_tokens //= n_seqs
        # (each entry of idxs is replaced below, never appended to: one shared empty list is fine)
        res = SlotInfo(MAX_SEQ, 0, [0] * n_seqs, [[]] * n_seqs)
        for s in range(n_seqs):
            seq_id = ub.seq_id_unq[s]
            st = self.seq_to_stream[seq_id]
            res.s0, res.s1 = min(res.s0, st), max(res.s1, st)
            res.strm[s] = st
            c = self.cells[st]
            head = self.heads[st]
            # the used count only matters once the head is past 2 * n_tokens
            if head > 2 * n_tokens and head > c.get_used() + 2 * n_tokens:
                head = 0
            if n_tokens > c.size:
                self.log.append(f"find_slot: n_tokens = {n_tokens} > size = {c.size}\n")
                return None
            found: list[int] | None = None
            if n_tokens == 1:
                # decode: the reference tests cells one by one from the head (cont or not, a
                # window of one cell is the same test); the head cell usually answers
                i = head if head < c.size else 0
                if c.pos[i] == -1 or (self.swa_type != SWAType.NONE and self._usable_one(c, i)):
                    found = [i]
            if found is None:
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

    def _usable_one(self, c: KVCells, i: int) -> bool:
        """``_usable`` for one used cell: it holds one sequence, whose newest position has left
        the cell's position outside the SWA window."""
        held = np.flatnonzero(c.seq_t[:, i])
        if held.size != 1:
            return False
        pmax = c.seq_pos_max(int(held[0]))
        return bool(is_masked(self.n_swa, self.swa_type, int(c.pos[i]), pmax + 1))

    def _usable(self, c: KVCells) -> np.ndarray:
        usable = c.pos == -1
        if self.swa_type == SWAType.NONE:
            return usable
        # only the sequences present can own a cell: count and locate on those rows
        present = c.seqs_present()
        if not present.size:
            return usable
        rows = c.seq_t[present]  # [n_present, n_cells]
        one = ~usable & (np.count_nonzero(rows, axis=0) == 1)
        idx = np.flatnonzero(one)
        if idx.size:
            seq_of = present[rows[:, idx].argmax(axis=0)]
            pmax = np.array([c.seq_pos_max(int(s)) for s in present], np.int64)
            p1 = pmax[np.searchsorted(present, seq_of)] + 1
            usable[idx] = is_masked(self.n_swa, self.swa_type, c.pos[idx], p1)
        return usable

    @staticmethod
    def _find_cont(usable: np.ndarray, head: int, n: int) -> list[int] | None:
        # llama.cpp find_slot with cont=true: windows of n cells from the head, wrapping to 0; a
        # window is tested up to its first unusable cell and the next window starts right after
        # that cell (the cells tested count toward the give-up limit of size)
        size = usable.size
        bad = np.flatnonzero(~usable)
        tested = 0
        while True:
            if head + n > size:
                tested += size - head
                head = 0
                continue
            k = int(np.searchsorted(bad, head))
            if k == bad.size or bad[k] >= head + n:
                return list(range(head, head + n))
            tested += int(bad[k]) - head + 1
            head = int(bad[k]) + 1
            if tested >= size:
                return None

    def apply_ubatch(self, sinfo: SlotInfo, ub: UBatch) -> None:
        """Write the ubatch's positions and sequences into its cells; a sequence whose cells were
        overwritten (SWA reuse) loses every position up to the highest one overwritten, so its
        positions stay contiguous."""
        max_rm: dict[int, int] = {}
        n = len(sinfo.idxs[0])
        nt = ub.n_tokens
        if (ub.pos[0] == -1) if nt == 1 else bool((ub.pos[:nt] == -1).any()):
            # -1 marks an empty cell: stored, it corrupts the cell's bookkeeping (checked before
            # anything is written, so a rejected ubatch leaves the cache as it was)
            raise KVCacheError("position -1 cannot be stored in the KV cache")
        is_2d = ub.n_pos >= 3
        set_ext = is_2d or ub.token is not None
        for s, st in enumerate(sinfo.strm):
            c = self.cells[st]
            lo = s * n
            if n == 1:
                # decode: scalar writes (a numpy call per field costs more than the write)
                cell = sinfo.idxs[s][0]
                if c.pos[cell] != -1:
                    sid = c.seq_get(cell)
                    max_rm[sid] = max(max_rm.get(sid, -1), int(c.pos[cell]))
                    c.rm(cell)
                c.pos[cell] = ub.pos[lo]
                if set_ext:
                    c.ext_x[cell] = ub.pos[2 * nt + lo] if is_2d else 0
                    c.ext_y[cell] = ub.pos[nt + lo] if is_2d else 0
                    c.ext_tok[cell] = ub.token[lo] if ub.token is not None else TOKEN_NULL
                for sid in ub.seq_id[lo]:
                    c.seq_t[sid, cell] = True
                continue
            ix = np.asarray(sinfo.idxs[s], np.int64)
            # the slot's cells are distinct, so clearing every overwritten cell first and then
            # writing the whole slot equals the reference's cell-by-cell order
            for idx in np.flatnonzero(c.pos[ix] != -1).tolist():
                cell = int(ix[idx])
                sid = c.seq_get(cell)
                max_rm[sid] = max(max_rm.get(sid, -1), int(c.pos[cell]))
                c.rm(cell)
            c.pos[ix] = ub.pos[lo:lo + n]
            if set_ext:
                # a fresh llama_kv_cell_ext: (0, 0, TOKEN_NULL) plus what the ubatch carries
                c.ext_x[ix] = ub.pos[2 * nt + lo:2 * nt + lo + n] if is_2d else 0
                c.ext_y[ix] = ub.pos[nt + lo:nt + lo + n] if is_2d else 0
                c.ext_tok[ix] = ub.token[lo:lo + n] if ub.token is not None else TOKEN_NULL
            sids = ub.seq_id[lo:lo + n]
            if all(len(t) == 1 for t in sids):
                c.seq_t[[t[0] for t in sids], ix] = True
            else:
                for cell, t in zip(ix.tolist(), sids, strict=True):
                    c.seq_t[list(t), cell] = True
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
        last = len(ubatches) - 1
        for k_ub, ub in enumerate(ubatches):
            si = self.find_slot(ub, False)
            if si is None:
                ok = False
                break
            res.append(si)
            if k_ub == last and self._restore_is_noop(si, ub):
                # the last ubatch's apply only matters to later find_slot calls (there are none)
                # and is undone right away: skipping the pair is the same (the decode step)
                break
            saved = [self.cells[st].cp_idxs(si.idxs[k]) for k, st in enumerate(si.strm)]
            states.append((si, list(self.heads), saved))
            self.apply_ubatch(si, ub)
        for si, heads_old, saved in reversed(states):
            for k, st in enumerate(si.strm):
                self.cells[st].set_idxs(si.idxs[k], saved[k])
                self.heads[st] = heads_old[k]
        return res if ok else None

    def _restore_is_noop(self, si: SlotInfo, ub: UBatch) -> bool:
        """Whether applying ``ub`` at ``si`` and restoring it in ``prepare`` leaves the cache as
        it was: apply_ubatch does not refuse it (no position -1), every slot cell is empty (no
        cell is overwritten, so it purges nothing, logs nothing and the restore writes back what
        was there), and each head put back equals the stream's own (the head quirk above)."""
        nt = ub.n_tokens
        if (ub.pos[0] == -1) if nt == 1 else bool((ub.pos[:nt] == -1).any()):
            return False
        heads = self.heads
        for k, st in enumerate(si.strm):
            if heads[k] != heads[st]:
                return False
            pos = self.cells[st].pos
            idxs = si.idxs[k]
            if len(idxs) == 1:
                if pos[idxs[0]] != -1:
                    return False
            elif not (pos[idxs] == -1).all():
                return False
        return True

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
        for ub in ubs:
            if (ub.pos[0] < 0) if ub.pos.size == 1 else (ub.pos.min() < 0):
                # the allocator lets a fresh sequence start at -1, which a cell cannot hold (-1
                # marks an empty cell; the reference ends up with corrupt cells)
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
                f16: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """The KQ mask of ``ub``: [n_stream, n_tokens / n_stream, n_kv] (ggml ne = [n_kv, n_tps, 1,
        n_stream]); 0 where token i may attend cell j, -inf elsewhere (or -|p0 - p1| with ALiBi).
        Built by ``pyggml.memory.mask.kq_mask`` (set_input_kq_mask_impl, row reuse included), into
        ``out`` when given (float32 or, with ``f16``, float16 of that shape)."""
        return build_kq_mask(self.cells, self.seq_to_stream, ub, n_kv, n_stream, causal=causal, f16=f16,
                             swa_type=self.swa_type, n_swa=self.n_swa, alibi=self.alibi, out=out)

    # ------------------------------------------------------------------ shift / update
    @property
    def can_shift(self) -> bool:
        """llama_kv_cache::get_can_shift."""
        return self.arch_can_shift and self.n_pos_per_embd == 1

    def reset_shift(self) -> None:
        for c in self.cells:
            c.reset_shift()

    def k_shift(self) -> np.ndarray:
        """The K-shift graph input: int32 [n_stream * size], each cell's pending shift (0 for an
        empty cell).  llama.cpp: llama_kv_cache::set_input_k_shift."""
        return np.concatenate([np.where(c.pos != -1, c.shift, 0).astype(np.int32) for c in self.cells])

    def init_update(self) -> KVUpdate:
        """What an update would do: the K-shift if any stream has a pending shift, and the stream
        copies queued so far, which this call takes out of the cache whether or not the update
        is applied (the reference moves ``sc_info`` into the update context).
        llama.cpp: llama_kv_cache::init_update, llama_kv_cache_context (update constructor)."""
        copies, self.pending_copies = self.pending_copies, []
        return KVUpdate(self, self.has_shift, copies)

    def update(self, do_shift: bool, copies: list[tuple[int, int]], shift_fn=None) -> bool:
        """Apply an update: the stream copies (the K/V buffers are the decoder's; the cells were
        already copied by seq_cp), then the K-shift.  ``shift_fn(cache) -> bool`` runs the RoPE
        shift graph when the model has RoPE (None: no RoPE, nothing to compute); when it fails
        the shifts stay pending, as in the reference.  Returns whether a shift graph ran.
        llama.cpp: llama_kv_cache::update."""
        if copies and self.n_stream == 1:
            raise KVCacheError("stream copies with a single stream")
        if not do_shift:
            return False
        if not self.can_shift:
            # the reference aborts (GGML_ABORT) here
            raise KVCacheError("the current KV cache / model configuration does not support K-shift")
        updated = False
        if shift_fn is not None:
            if not shift_fn(self):
                return False
            updated = True
        self.reset_shift()
        return updated

    # ------------------------------------------------------------------ canonical dump
    def describe(self) -> dict:
        return {
            "streams": [c.describe() for c in self.cells],
            "seq_pos": [[self.seq_pos_min(s), self.seq_pos_max(s)] for s in range(self.n_seq_max)],
            "has_shift": self.has_shift,
        }


class KVUpdate:
    """A pending KV cache update (llama_kv_cache_context built by init_update): ``status`` is
    NO_UPDATE when there is neither a shift nor a stream copy, else SUCCESS; ``apply`` runs it."""

    def __init__(self, kv: KVCache, do_shift: bool, copies: list[tuple[int, int]]) -> None:
        self.kv = kv
        self.do_shift = do_shift
        self.copies = copies
        self.status = MemoryStatus.SUCCESS if do_shift or copies else MemoryStatus.NO_UPDATE

    def apply(self, shift_fn=None) -> bool:
        if self.status.is_fail:
            raise KVCacheError(f"cannot apply a memory context with status {self.status.name}")
        self.kv.update(self.do_shift, self.copies, shift_fn)
        return True
