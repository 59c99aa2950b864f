"""The batch as the allocator receives it: one entry per token, built step by step.

llama.cpp: src/llama-batch.{h,cpp} llama_batch_ext (the builder: add_token, add_seq,
set_token_id, set_token_embd, set_token_pos, set_output) and llama_batch_compat::init (the
legacy ``llama_batch`` arrays turned into entries, with the defaults of the old API).

Each entry keeps its sequence ids in insertion order; ``seq_ids(i)`` gives them in the order the
reference iterates them (libstdc++ ``unordered_set`` order, see ``pyggml.batch.seqset``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from . import seqset

TOKEN_NULL = -1  # LLAMA_TOKEN_NULL
MROPE_SECTIONS = 4  # GGML_MROPE_SECTIONS


class SeqPosMemory(Protocol):
    """What the batch allocator asks of the memory module (llama_memory_i)."""

    def seq_pos_min(self, seq_id: int) -> int: ...
    def seq_pos_max(self, seq_id: int) -> int: ...


@dataclass
class PosRanges:
    """A memory stand-in holding only ``seq_id -> (pos_min, pos_max)`` (-1 when absent); the
    reference tests use the same kind of mock (tests/test-batch-alloc.cpp mock_memory)."""

    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)

    def seq_pos_min(self, seq_id: int) -> int:
        r = self.ranges.get(seq_id)
        return -1 if r is None else r[0]

    def seq_pos_max(self, seq_id: int) -> int:
        r = self.ranges.get(seq_id)
        return -1 if r is None else r[1]


class BatchExt:
    """llama_batch_ext: entries of (token id and/or embedding row, positions, seq ids, output)."""

    def __init__(self, *, n_tokens_max: int, n_embd_inp: int, n_embd_inp_enc: int | None = None,
                 n_seq_max: int, mem: SeqPosMemory | None = None, n_vocab: int,
                 n_pos_per_embd: int = 1) -> None:
        self.n_tokens_max = n_tokens_max
        self.n_embd_inp = n_embd_inp
        self.n_embd_inp_enc = n_embd_inp if n_embd_inp_enc is None else n_embd_inp_enc
        self.n_seq_max = n_seq_max
        self.mem = mem
        self.n_vocab = n_vocab
        self.n_pos_per_embd = n_pos_per_embd
        self.clear()

    def clear(self) -> None:
        self.n_embd = 0  # the row width fixed by the first set_token_embd
        self.ids: list[int] = []
        self.has_embd: list[bool] = []
        self.embd_off: list[int] = []
        self.output: list[bool] = []
        self._seq_ins: list[list[int]] | None = []  # None: not built yet, see the property
        self._pos: list[list[int]] | None = []
        self._pos_src: np.ndarray | None = None  # first-section positions behind a lazy ``pos``
        self._embd: list[np.ndarray] = []  # rows in the order set_token_embd was called
        self._n_embd_vals = 0
        self._flat: np.ndarray | None = None
        self._cols: tuple[np.ndarray, ...] | None = None
        self._seqc: tuple | None = None  # see seq_column()
        self.log: list[str] = []  # what the reference would log (errors of set_token_embd)

    # ``seq_ins`` and ``pos`` are lists of small lists, slow to build for big batches (the
    # allocator reads the columns instead): from_legacy may leave them to be built on first use
    @property
    def seq_ins(self) -> list[list[int]]:
        """Each entry's sequence ids in insertion order (see seq_ids())."""
        if self._seq_ins is None:
            self._seq_ins = [[v] for v in self._seqc[0]]  # type: ignore[index]
        return self._seq_ins

    @seq_ins.setter
    def seq_ins(self, v: list[list[int]]) -> None:
        self._seq_ins = v

    @property
    def pos(self) -> list[list[int]]:
        """[n_tokens][MROPE_SECTIONS] positions."""
        if self._pos is None:
            self._pos = [[p, 0, 0, 0] for p in self._pos_src.tolist()]  # type: ignore[union-attr]
            self._pos_src = None
        return self._pos

    @pos.setter
    def pos(self, v: list[list[int]]) -> None:
        self._pos = v
        self._pos_src = None

    def __len__(self) -> int:
        return len(self.ids)

    # ------------------------------------------------------------------ builder (llama.h API)
    def add_token(self, seq_id: int) -> int:
        """A new entry in ``seq_id`` with no content and an undefined position: its index, or
        -1 (batch full) / -3 (bad seq_id), like llama_batch_ext_add."""
        if len(self.ids) >= self.n_tokens_max:
            return -1
        if seq_id < 0 or seq_id >= self.n_seq_max:
            return -3
        self.ids.append(TOKEN_NULL)
        self.has_embd.append(False)
        self.embd_off.append(0)
        self.output.append(False)
        self.seq_ins.append([seq_id])
        self._cols = None
        self._seqc = None
        self.pos.append([0] * MROPE_SECTIONS)
        return len(self.ids) - 1

    def _valid(self, idx: int) -> bool:
        return 0 <= idx < len(self.ids)

    def add_seq(self, idx: int, seq_id: int) -> bool:
        if not self._valid(idx) or seq_id < 0 or seq_id >= self.n_seq_max:
            return False
        if seq_id not in self.seq_ins[idx]:
            self.seq_ins[idx].append(seq_id)
            self._cols = None
            self._seqc = None
        return True

    def set_token_id(self, idx: int, token: int) -> bool:
        if not self._valid(idx) or token < 0 or token >= self.n_vocab:
            return False
        self.ids[idx] = token
        self._cols = None
        return True

    def set_token_embd(self, idx: int, data, n_rows: int, n_embd: int) -> bool:
        """``data`` holds ``n_rows * n_embd`` floats (None = the reference's NULL pointer)."""
        if not self._valid(idx) or data is None:
            return False
        n_total = n_rows * n_embd
        if self.n_embd == 0:
            if n_total != self.n_embd_inp and n_total != self.n_embd_inp_enc:
                self.log.append(
                    f"set_token_embd: embedding size mismatch, got {n_rows} rows x {n_embd} = {n_total}, "
                    f"expected {self.n_embd_inp} or {self.n_embd_inp_enc}\n")
                return False
            self.n_embd = n_total
        elif n_total != self.n_embd:
            self.log.append(f"set_token_embd: embedding size mismatch, got {n_rows} rows x {n_embd} = "
                            f"{n_total}, expected {self.n_embd}\n")
            return False
        if self.has_embd[idx]:
            self.log.append(f"set_token_embd: embedding for token {idx} is already set\n")
            return False
        row = np.asarray(data, dtype=np.float32).reshape(-1)[:n_total]
        self.has_embd[idx] = True
        self.embd_off[idx] = self._n_embd_vals
        self._embd.append(row)
        self._n_embd_vals += n_total
        self._flat = None
        self._cols = None  # has_embd changed
        return True

    def set_token_pos(self, idx: int, pos) -> bool:
        """A token entry takes one position; an embedding entry ``n_pos_per_embd`` of them."""
        if not self._valid(idx) or pos is None:
            return False
        n = 1 if self.ids[idx] != TOKEN_NULL else self.n_pos_per_embd
        for k in range(n):
            self.pos[idx][k] = int(pos[k])
            self._cols = None
        return True

    def set_output(self, idx: int, output: bool) -> bool:
        if not self._valid(idx):
            return False
        self.output[idx] = bool(output)
        self._cols = None
        return True

    # ------------------------------------------------------------------ views
    def invalidate(self) -> None:
        """Call after writing the entry lists directly (the reference tests' "pokes")."""
        _ = self.seq_ins, self.pos  # the lists become the only source
        self._cols = None
        self._flat = None
        self._seqc = None

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ids int64 [n], has_embd bool [n], pos int32 [n, 4], output int8 [n]), cached."""
        if self._cols is None:
            n = len(self.ids)
            self._cols = (np.asarray(self.ids, dtype=np.int64), np.asarray(self.has_embd, dtype=bool),
                          np.asarray(self.pos, dtype=np.int32).reshape(n, MROPE_SECTIONS),
                          np.asarray(self.output, dtype=np.int8))
        return self._cols

    def seq_column(self) -> tuple[list[int], np.ndarray] | None:
        """When every entry holds exactly one sequence id: (those ids as a list, the same as an
        int64 array), cached; None otherwise (the allocator then takes the general path)."""
        if self._seqc is None:
            ins = self.seq_ins
            if ins and min(map(len, ins)) == 1 == max(map(len, ins)):
                prim = [r[0] for r in ins]
                self._seqc = (prim, np.asarray(prim, dtype=np.int64))
            else:
                self._seqc = (None,)
        return None if self._seqc[0] is None else self._seqc  # type: ignore[return-value]

    def seq_ids(self, idx: int) -> tuple[int, ...]:
        """Entry ``idx``'s sequence ids in the reference's iteration order."""
        return seqset.order(self.seq_ins[idx])

    @property
    def embd(self) -> np.ndarray:
        """Every embedding value, rows in the order they were set: float32 [total]."""
        if self._flat is None:
            self._flat = (np.concatenate(self._embd) if self._embd else np.zeros(0, np.float32))
        return self._flat

    def set_embd_rows(self, rows: np.ndarray, n_embd: int) -> None:
        """Bulk form of set_token_embd for every entry in order (the legacy path)."""
        n = len(self.ids)
        flat = np.ascontiguousarray(rows, dtype=np.float32).reshape(-1)[: n * n_embd]
        self._embd = [flat]
        self._flat = flat
        self._n_embd_vals = flat.size
        self.has_embd = [True] * n
        self.embd_off = list(range(0, n * n_embd, n_embd))
        self.n_embd = n_embd
        self._cols = None

    def describe(self) -> dict:
        """Canonical dump of the entries (what the probe reports for llama_batch_ext)."""
        return {
            "tokens": [
                {"id": self.ids[i], "has_embd": self.has_embd[i], "embd_off": self.embd_off[i],
                 "output": self.output[i], "seq_ids": list(self.seq_ids(i)), "pos": list(self.pos[i])}
                for i in range(len(self.ids))
            ],
            "n_embd": self.n_embd,
            "embd": self.embd.astype("<f4").tobytes().hex(),
        }


_SMALL = 32  # up to this many entries the plain-Python conversion beats numpy's call overhead


def from_legacy(ext: BatchExt, *, n_tokens: int, token=None, embd=None, pos=None, n_seq_id=None,
                seq_id=None, logits=None, n_embd_row: int = 0, seq_col=None) -> BatchExt:
    """Fill ``ext`` from the arrays of a legacy ``llama_batch`` (None = NULL field), with the
    defaults of the old API: seq 0, positions continuing from the memory per first seq id,
    output on the last token only.  ``seq_col`` (int [n_tokens], each token's only seq id) is
    the same as ``seq_id`` with one id per token, in a form that skips the per-token lists.

    llama.cpp: src/llama-batch.cpp llama_batch_compat::init.  Quirks kept: an auto position is
    taken from the token's *first listed* seq id (before any validation of it); a token id of -1
    means "no token" (so it trips the content-type check, not the token-range check); an embedding
    batch without positions only gets the first M-RoPE section.
    """
    if n_embd_row == 0:
        n_embd_row = ext.n_embd_inp
    has_token = token is not None
    has_embd = embd is not None
    n = int(n_tokens)
    prim_l: list[int] | None = None  # each token's only seq id, when known to be one per token
    prim: np.ndarray | None = None
    if seq_col is not None:
        prim = np.array(seq_col, dtype=np.int64).reshape(-1)[:n]
        prim_l = prim.tolist()
        rows = None
    elif seq_id is not None:
        rows = [list(seq_id[i][: (int(n_seq_id[i]) if n_seq_id is not None else 1)]) for i in range(n)]
    else:
        rows = None
        prim_l = [0] * n
    pos_col: np.ndarray | None = None  # positions (first section) as an array, when at hand
    if pos is None:
        auto = None
        if prim_l is not None and n > _SMALL:
            auto = _auto_pos(ext, prim_l if prim is None else prim)
        if auto is None:
            auto = _auto_pos_loop(ext, rows, prim_l, seq_id, n)
        else:
            pos_col = auto
        positions = None if pos_col is not None else [[p, 0, 0, 0] for p in auto]
    elif has_token:
        p = np.asarray(pos, dtype=np.int32).reshape(-1)[:n]
        if p.size == n and n > _SMALL:
            pos_col = p.copy()  # not a view of the caller's array
            positions = None
        else:
            positions = [[v, 0, 0, 0] for v in p.tolist()]
    else:
        p = np.asarray(pos, dtype=np.int32).reshape(-1)
        k = ext.n_pos_per_embd
        sec = [p[j * n: j * n + n].tolist() for j in range(k)] + [[0] * n] * (MROPE_SECTIONS - k)
        positions = [list(t) for t in zip(*sec, strict=True)] if n else []
    ids = np.asarray(token, dtype=np.int32).reshape(-1)[:n] if has_token else None
    ext.ids = ids.tolist() if ids is not None else [TOKEN_NULL] * n
    ext.has_embd = [False] * n
    ext.embd_off = [0] * n
    out = (np.asarray(logits).reshape(-1)[:n] != 0) if logits is not None else None
    ext.output = out.tolist() if out is not None else [i == n - 1 for i in range(n)]
    ext.seq_ins = [] if rows is None else [list(dict.fromkeys(r)) if len(r) > 1 else list(r) for r in rows]
    ext.pos = positions if positions is not None else []
    ext.invalidate()
    if has_embd and n > 0:
        ext.set_embd_rows(np.asarray(embd, dtype=np.float32), n_embd_row)
    if prim_l is not None and n > _SMALL:
        ext._seqc = (prim_l, prim if prim is not None else np.zeros(n, np.int64))
        if rows is None:
            ext._seq_ins = None  # built from _seqc on first use
    elif rows is None:
        ext._seq_ins = [[v] for v in prim_l]  # type: ignore[union-attr]
    if positions is None:
        ext._pos = None  # built from _pos_src on first use
        ext._pos_src = pos_col
    if pos_col is not None and n > _SMALL and len(ext.ids) == n and len(ext.output) == n:
        # the columns the allocator reads, straight from the arrays (columns() would rebuild them
        # from the lists)
        pos4 = np.zeros((n, MROPE_SECTIONS), np.int32)
        pos4[:, 0] = pos_col
        if out is None:
            out = np.zeros(n, bool)
            out[n - 1] = True
        ext._cols = (ids.astype(np.int64) if ids is not None else np.full(n, TOKEN_NULL, np.int64),
                     np.full(n, has_embd, bool), pos4, out.astype(np.int8))
    return ext


def _auto_pos_loop(ext: BatchExt, rows, prim_l, seq_id, n: int) -> list[int]:
    # each sequence's next position, asked of the memory on first use (the reference fills the
    # table for every sequence up front; the queries have no side effects)
    mem = ext.mem
    pos_next: dict[int, int] = {}
    if rows is None:
        rows = [[v] for v in prim_l]
    auto: list[int] = []
    for r in rows:
        s0 = r[0] if r else (seq_id[len(auto)][0] if seq_id is not None and len(seq_id[len(auto)]) else 0)
        if not 0 <= s0 < ext.n_seq_max:
            # the reference indexes pos_next out of bounds here (undefined behaviour);
            # init() rejects the seq id afterwards, so any placeholder works
            auto.append(0)
            continue
        p = pos_next.get(s0)
        if p is None:
            p = (mem.seq_pos_max(s0) if mem is not None else -1) + 1
        auto.append(p)
        pos_next[s0] = p + 1
    return auto


def _auto_pos(ext: BatchExt, prim) -> np.ndarray | None:
    """``_auto_pos_loop`` for one seq id per token, vectorized: each token's position is its
    sequence's next memory position plus the number of earlier tokens of that sequence.
    None when a position would not fit int32 (the loop's lists then fail as before)."""
    prim = np.asarray(prim, dtype=np.int64)
    n = prim.size
    order = np.argsort(prim, kind="stable")
    sp = prim[order]
    start = np.concatenate(([True], sp[1:] != sp[:-1]))
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - first
    mem = ext.mem
    nxt = [(mem.seq_pos_max(s) if mem is not None else -1) + 1 if 0 <= s < ext.n_seq_max else 0
           for s in sp[start].tolist()]
    base = np.empty(n, np.int64)
    base[order] = np.asarray(nxt, dtype=np.int64)[np.cumsum(start) - 1]
    valid = (prim >= 0) & (prim < ext.n_seq_max)
    auto = np.where(valid, base + rank, 0)
    if n and (auto.max() > 0x7FFFFFFF or auto.min() < -0x80000000):
        return None
    return auto.astype(np.int32)
