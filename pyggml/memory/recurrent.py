"""Recurrent memory (Mamba, RWKV, ...): one state cell per sequence instead of one cell per token.

llama.cpp: src/llama-memory-recurrent.{h,cpp} llama_memory_recurrent.  Each cell has the position
of the last token folded into its state, the sequences sharing it, ``src`` (where its state comes
from) and ``src0`` (the staged copy source for the graph inputs); cell ``s`` also stores, as
``tail``, the index of the cell that holds sequence ``s``'s state.

What a state cannot do is forget the end of a sequence: ``seq_rm`` of a partial range returns
False unless a per-token rollback snapshot (``n_rs_seq``) covers it.  Quirks of the reference kept
here (and named where they happen): ``seq_rm`` casts the sequence id to unsigned before its range
check, so ``seq_rm(-1, ...)`` always fails; ``seq_keep`` resets every other cell's tail.
"""

from __future__ import annotations

from ..batch import BatchAllocr, UBatch
from ..errors import PyggmlError
from .status import MemoryStatus

_POS_MAX = 2**31 - 1


class RecurrentError(PyggmlError, ValueError):
    """A call the reference rejects with an assert or would crash on (e.g. dividing by 0)."""


def _cdiv(a: int, d: int) -> int:
    q = abs(a) // abs(d)
    return -q if (a < 0) != (d < 0) else q


class MemoryRecurrent:
    def __init__(self, *, mem_size: int, n_seq_max: int, n_rs_seq: int = 0) -> None:
        if mem_size < 1:
            raise RecurrentError(f"mem_size must be >= 1, got {mem_size}")
        self.size = mem_size
        self.n_seq_max = n_seq_max
        self.n_rs_seq = n_rs_seq
        self.log: list[str] = []
        self.src0 = [-1] * mem_size  # clear keeps it, as the reference
        self.n = 0  # cells of the last placed ubatch (from head); clear keeps it, as the reference
        self.rs_z = -1  # the zeroed-state cell of the last placed ubatch
        self.clear()

    def clear(self) -> None:
        n = self.size
        self.pos = [-1] * n
        self.src = [-1] * n
        self.tail = [-1] * n
        self.seqs: list[set[int]] = [set() for _ in range(n)]
        self.head = 0
        self.used = 0
        self.rs_idx = [0] * self.n_seq_max

    def _empty_cell(self, i: int) -> None:
        self.pos[i] = -1
        self.src[i] = -1

    def _set_rs_idx(self, seq_id: int, idx: int) -> None:
        if seq_id < 0:
            self.rs_idx = [0] * self.n_seq_max
            return
        if not (seq_id < self.n_seq_max and idx <= self.n_rs_seq):
            raise RecurrentError(f"set_rs_idx({seq_id}, {idx}) out of range")
        self.rs_idx[seq_id] = idx

    # ------------------------------------------------------------------ sequence operations
    def seq_rm(self, seq_id: int, p0: int, p1: int) -> bool:
        """Forget ``seq_id`` in [p0, p1).  False (nothing changed) for an id out of range (any
        negative id too: the reference compares it as unsigned), for a partial range at the end of
        the sequence beyond what the rollback snapshots allow."""
        p0 = max(p0, 0)
        p1 = _POS_MAX if p1 < 0 else p1
        if seq_id < 0 or seq_id >= self.n_seq_max:
            self.log.append(f"seq_rm: invalid seq_id ({seq_id}) - larger than n_seq_max ({self.n_seq_max})\n")
            return False
        if p0 == 0 and p1 == _POS_MAX:
            self._set_rs_idx(seq_id, 0)
        if seq_id >= self.size:
            return False
        t = self.tail[seq_id]
        if t >= 0:
            cpos = self.pos[t]
            if 0 < p0 <= cpos < p1:
                # partial rollback through the per-token snapshots; a pending one is single-use
                rollback = cpos - (p0 - 1)
                if self.rs_idx[seq_id] == 0 and 1 <= rollback <= self.n_rs_seq:
                    self._set_rs_idx(seq_id, rollback)
                    self.pos[t] = p0 - 1
                    return True
                return False
            if p0 <= cpos < p1:
                self.tail[seq_id] = -1
        new_head = self.size
        for i in range(self.size):
            if not (p0 <= self.pos[i] < p1) or seq_id not in self.seqs[i]:
                continue
            self.seqs[i].discard(seq_id)
            if not self.seqs[i]:
                if self.pos[i] >= 0:
                    self.used -= 1
                self._empty_cell(i)
                if new_head == self.size:
                    new_head = i
        if new_head != self.size and new_head < self.head:
            self.head = new_head
        return True

    def seq_cp(self, src: int, dst: int, p0: int, p1: int) -> None:
        """``dst`` shares ``src``'s state cell (the range is ignored: a state is all or nothing)."""
        if src == dst:
            return
        if not (0 <= dst < self.size and 0 <= src < self.size):
            return
        td = self.tail[dst]
        if td >= 0:
            self.seqs[td].discard(dst)
            self.tail[dst] = -1
            if not self.seqs[td]:
                self._empty_cell(td)
                self.used -= 1
        ts = self.tail[src]
        if ts >= 0:
            self.seqs[ts].add(dst)
            self.tail[dst] = ts

    def seq_keep(self, seq_id: int) -> None:
        new_head = self.size
        for i in range(self.size):
            if i != seq_id:
                # quirk: every other sequence's tail is dropped, even of cells that survive
                self.tail[i] = -1
            if seq_id not in self.seqs[i]:
                if self.pos[i] >= 0:
                    self.used -= 1
                self._empty_cell(i)
                self.seqs[i] = set()
                if new_head == self.size:
                    new_head = i
            else:
                self.seqs[i] = {seq_id}
        if new_head != self.size and new_head < self.head:
            self.head = new_head

    def _tail_cell(self, seq_id: int, p0: int, p1: int) -> int:
        """The state cell of ``seq_id`` if its position is in [p0, p1) (negative p0: 0,
        negative p1: no upper bound), else -1."""
        p0 = max(p0, 0)
        p1 = _POS_MAX if p1 < 0 else p1
        if p0 < p1 and 0 <= seq_id < self.size:
            t = self.tail[seq_id]
            if t >= 0 and seq_id in self.seqs[t] and p0 <= self.pos[t] < p1:
                return t
        return -1

    def seq_add(self, seq_id: int, p0: int, p1: int, shift: int) -> None:
        if shift == 0:
            return
        t = self._tail_cell(seq_id, p0, p1)
        if t >= 0:
            self.pos[t] += shift

    def seq_div(self, seq_id: int, p0: int, p1: int, d: int) -> None:
        if d == 1:
            return
        t = self._tail_cell(seq_id, p0, p1)
        if t >= 0:
            if d == 0:
                raise RecurrentError("seq_div by 0 (the reference divides by zero)")
            self.pos[t] = _cdiv(self.pos[t], d)

    def seq_pos_min(self, seq_id: int) -> int:
        ps = [p for p, s in zip(self.pos, self.seqs, strict=True) if seq_id in s]
        return min(ps) if ps else -1

    def seq_pos_max(self, seq_id: int) -> int:
        # quirk: the reference starts its maximum at -1, so a state shifted below 0 reads -1
        return max([-1] + [p for p, s in zip(self.pos, self.seqs, strict=True) if seq_id in s])

    @property
    def can_shift(self) -> bool:
        return True  # shifting a state's position is free

    # ------------------------------------------------------------------ placement
    def _snapshot(self):
        return (list(self.pos), list(self.src), list(self.src0), list(self.tail), [set(s) for s in self.seqs],
                self.used, self.head)

    def _restore(self, snap) -> None:
        # llama_memory_recurrent::prepare restores cells, used and head (not n, rs_z)
        self.pos, self.src, self.src0, self.tail, self.seqs, self.used, self.head = snap

    def find_slot(self, ub: UBatch) -> bool:
        """Give every sequence of ``ub`` its own state cell, the cells of the ubatch contiguous
        from ``head`` (moving states around as needed), and set their positions.
        llama.cpp: llama_memory_recurrent::find_slot."""
        nst, n_seqs = ub.n_seq_tokens, ub.n_seqs
        if not ub.equal_seqs:
            raise RecurrentError("recurrent memory needs equal-length sequence splits")
        size = self.size
        if self.head > self.used + 2 * n_seqs:
            self.head = 0
        lo, hi = size - 1, 0
        for s in range(n_seqs):
            ids = ub.seq_id[s * nst]
            for j, sid in enumerate(ids):
                if sid < 0 or sid >= size:
                    self.log.append(f"find_slot: seq_id={sid} >= n_seq_max={self.n_seq_max} "
                                    "Try using a bigger --parallel value\n")
                    return False
                if j > 0 and self.tail[sid] >= 0:
                    # a sequence that becomes shared loses its own state
                    t = self.tail[sid]
                    self.seqs[t].discard(sid)
                    self.tail[sid] = -1
                    if not self.seqs[t]:
                        self._empty_cell(t)
                        self.used -= 1
        nxt = self.head
        for _ in range(size):
            if nxt >= size:
                nxt -= size
            if not self.seqs[nxt]:
                break
            nxt += 1
        for s in range(n_seqs):
            sid = ub.seq_id[s * nst][0]
            t = self.tail[sid]
            has_cell = t >= 0 and len(self.seqs[t]) == 1
            if not has_cell:
                if nxt >= size or self.seqs[nxt]:
                    raise RecurrentError("no empty state cell (the reference reads out of bounds)")
                if t >= 0:
                    # copy the shared state into the empty cell
                    self.pos[nxt] = self.pos[t]
                    self.src[nxt] = self.src[t]
                    self.seqs[t].discard(sid)
                    self.seqs[nxt].add(sid)
                self.tail[sid] = nxt
                if s + 1 < n_seqs:
                    for _ in range(size):
                        nxt += 1
                        if nxt >= size:
                            nxt -= size
                        if not self.seqs[nxt]:
                            break
            lo = min(lo, self.tail[sid])
            hi = max(hi, self.tail[sid])
        for s in range(n_seqs):
            dst = s + lo
            src = self.tail[ub.seq_id[s * nst][0]]
            if dst != src:
                self.pos[dst], self.pos[src] = self.pos[src], self.pos[dst]
                self.src[dst], self.src[src] = self.src[src], self.src[dst]
                self.seqs[dst], self.seqs[src] = self.seqs[src], self.seqs[dst]
                self.tail = [dst if t == src else src if t == dst else t for t in self.tail]
        for s in range(n_seqs):
            i = s * nst
            last = int(ub.pos[i + nst - 1])
            cid = s + lo
            if self.pos[cid] >= 0 and last != self.pos[cid] + nst:
                self.log.append(f"find_slot: non-consecutive token position {last} after {self.pos[cid]} for "
                                f"sequence {ub.seq_id[i][0]} with {nst} new tokens\n")
            self.pos[cid] = last
            self.seqs[cid] = set(ub.seq_id[i])
            for sid in ub.seq_id[i]:
                self.tail[sid] = cid
        refs = [0] * size
        for v in self.src:
            if v >= 0:
                refs[v] += 1
        self.rs_z = next((i for i in range(lo, hi + 1) if refs[i] == 0), -1)
        for i in range(lo, hi + 1):
            if self.src[i] < 0:
                if self.rs_z < 0:
                    raise RecurrentError("no zero state cell (the reference asserts)")
                self.src0[i] = self.rs_z
            else:
                self.src0[i] = self.src[i]
            self.src[i] = i
        self.head = lo
        self.n = hi - lo + 1
        self.used = sum(1 for s in self.seqs if s)
        return self.n >= n_seqs

    def prepare(self, ubatches: list[UBatch]) -> bool:
        snap = self._snapshot()
        ok = all(self.find_slot(ub) for ub in ubatches)
        self._restore(snap)
        return ok

    def init_batch(self, allocr: BatchAllocr, n_ubatch: int,
                   embd_all: bool = False) -> tuple[MemoryStatus, list[UBatch]]:
        """Sequence splits when every token is an output, else sequential equal splits that keep
        the last ``1 + n_rs_seq`` tokens of each sequence together (rollback snapshots).
        llama.cpp: llama_memory_recurrent::init_batch."""
        allocr.split_reset()
        ubs: list[UBatch] = []
        keep = self.n_rs_seq + 1 if self.n_rs_seq > 0 else 0
        while True:
            ub = allocr.split_seq(n_ubatch) if embd_all else allocr.split_equal(n_ubatch, True, keep)
            if ub is None:
                break
            ubs.append(ub)
        if allocr.n_used < allocr.n_tokens or not self.prepare(ubs):
            return MemoryStatus.FAILED_PREPARE, ubs
        return MemoryStatus.SUCCESS, ubs

    def init_update(self) -> MemoryStatus:
        return MemoryStatus.NO_UPDATE  # a recurrent memory never has an update to run

    # ------------------------------------------------------------------ canonical dump
    def describe(self) -> dict:
        cells = [[self.pos[i], self.src[i], self.src0[i], self.tail[i], sorted(self.seqs[i])]
                 for i in range(self.size)]
        return {"head": self.head, "size": self.size, "used": self.used, "n": self.n, "rs_z": self.rs_z,
                "rs_idx": list(self.rs_idx), "cells": cells,
                "seq_pos": [[self.seq_pos_min(s), self.seq_pos_max(s)] for s in range(self.n_seq_max)]}
