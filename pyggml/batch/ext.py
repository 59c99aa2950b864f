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
        self.seq_ins: list[list[int]] = []  # insertion order; see seq_ids()
        self.pos: list[list[int]] = []  # [n_tokens][MROPE_SECTIONS]
        self._embd: list[np.ndarray] = []  # rows in the order set_token_embd was called
        self._n_embd_vals = 0
        self._flat: np.ndarray | None = None
        self._cols: tuple[np.ndarray, ...] | None = None
        self.log: list[str] = []  # what the reference would log (errors of set_token_embd)

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
        return True
        self._cols = None

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
        self._cols = None
        self._flat = None

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ids int64 [n], has_embd bool [n], pos int32 [n, 4], output int8 [n]), cached."""
        if self._cols is None:
            n = len(self.ids)
            self._cols = (np.asarray(self.ids, dtype=np.int64), np.asarray(self.has_embd, dtype=bool),
                          np.asarray(self.pos, dtype=np.int32).reshape(n, MROPE_SECTIONS),
                          np.asarray(self.output, dtype=np.int8))
        return self._cols

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


def from_legacy(ext: BatchExt, *, n_tokens: int, token=None, embd=None, pos=None, n_seq_id=None,
                seq_id=None, logits=None, n_embd_row: int = 0) -> BatchExt:
    """Fill ``ext`` from the arrays of a legacy ``llama_batch`` (None = NULL field), with the
    defaults of the old API: seq 0, positions continuing from the memory per first seq id,
    output on the last token only.

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
    if seq_id is not None:
        rows = [list(seq_id[i][: (int(n_seq_id[i]) if n_seq_id is not None else 1)]) for i in range(n)]
    else:
        rows = [[0]] * n
    if pos is None:
        pos_next = [(ext.mem.seq_pos_max(s) if ext.mem is not None else -1) + 1 for s in range(ext.n_seq_max)]
        auto = []
        for r in rows:
            s0 = r[0] if r else (seq_id[len(auto)][0] if seq_id is not None and len(seq_id[len(auto)]) else 0)
            if not 0 <= s0 < ext.n_seq_max:
                # the reference indexes pos_next out of bounds here (undefined behaviour);
                # init() rejects the seq id afterwards, so any placeholder works
                auto.append(0)
                continue
            auto.append(pos_next[s0])
            pos_next[s0] += 1
        positions = [[p, 0, 0, 0] for p in auto]
    elif has_token:
        p = np.asarray(pos, dtype=np.int32).reshape(-1)
        positions = [[v, 0, 0, 0] for v in p[:n].tolist()]
    else:
        p = np.asarray(pos, dtype=np.int32).reshape(-1)
        k = ext.n_pos_per_embd
        sec = [p[j * n: j * n + n].tolist() for j in range(k)] + [[0] * n] * (MROPE_SECTIONS - k)
        positions = [list(t) for t in zip(*sec, strict=True)] if n else []
    ext.ids = np.asarray(token, dtype=np.int32).reshape(-1)[:n].tolist() if has_token else [TOKEN_NULL] * n
    ext.has_embd = [False] * n
    ext.embd_off = [0] * n
    if logits is not None:
        ext.output = (np.asarray(logits).reshape(-1)[:n] != 0).tolist()
    else:
        ext.output = [i == n - 1 for i in range(n)]
    ext.seq_ins = [list(dict.fromkeys(r)) if len(r) > 1 else list(r) for r in rows]
    ext.pos = positions
    ext.invalidate()
    if has_embd and n > 0:
        ext.set_embd_rows(np.asarray(embd, dtype=np.float32), n_embd_row)
    return ext
