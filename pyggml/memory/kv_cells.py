"""KV cell metadata: which position each cache cell holds, for which sequences, and the shifts
queued since the last RoPE update.

llama.cpp: src/llama-kv-cells.h llama_kv_cells.  The reference keeps incremental indexes (a
``std::set`` of used cells, and per sequence a ``std::set`` of (pos, cell) pairs); here they are
derived from the arrays with numpy when asked, which gives the same answers for every operation
whose preconditions hold.  The reference only ``assert()``s those preconditions (compiled out in
release builds); pyggml raises ``KVCellsError`` instead.

Layout (numpy order): ``pos`` int32 [n_cells] (-1 = empty), ``shift`` int32 [n_cells],
``ext_x/ext_y/ext_tok`` int32 [n_cells] (M-RoPE 2-D position and the token of the cell),
``seq`` bool [n_cells, MAX_SEQ] (stored transposed, ``seq_t``).
"""

from __future__ import annotations

import numpy as np

from ..errors import PyggmlError

MAX_SEQ = 256  # LLAMA_MAX_SEQ
TOKEN_NULL = -1
_I32_MAX = 2**31 - 1
_I32_MIN = -(2**31)
_MIN, _MAX = np.minimum.reduce, np.maximum.reduce
_FEW_CELLS = 16  # up to this many cells, whole-column copies beat finding the sequences present


def _grid(rows: np.ndarray, ix: np.ndarray):
    """Index of seq_t[rows][:, ix]: a slice for a run of consecutive cells (a plain strided copy)."""
    if ix.size and int(ix[-1]) - int(ix[0]) + 1 == ix.size and bool((np.diff(ix) == 1).all()):
        return rows, slice(int(ix[0]), int(ix[-1]) + 1)
    return np.ix_(rows, ix)


class KVCellsError(PyggmlError, ValueError):
    """An operation whose precondition the reference only asserts (e.g. seq_rm of a sequence the
    cell does not hold)."""


def _cdiv(a: np.ndarray | int, d: int):
    # C integer division (truncates toward zero), as llama_pos /= int does
    q = np.abs(a) // abs(d)
    return np.where((np.asarray(a) < 0) != (d < 0), -q, q)


class KVCells:
    def __init__(self, n: int = 0) -> None:
        self.resize(n)

    # ------------------------------------------------------------------ whole-state ops
    def resize(self, n: int) -> None:
        self.pos = np.full(n, -1, np.int32)
        self.shift = np.zeros(n, np.int32)
        self.ext_x = np.zeros(n, np.int32)
        self.ext_y = np.zeros(n, np.int32)
        self.ext_tok = np.full(n, TOKEN_NULL, np.int32)
        # stored sequence-major so that "the cells of sequence s" is a contiguous row
        self.seq_t = np.zeros((MAX_SEQ, n), bool)
        self.has_shift = False

    def reset(self) -> None:
        self.resize(self.size)

    def reset_shift(self) -> None:
        self.has_shift = False
        self.shift[:] = 0

    @property
    def seq(self) -> np.ndarray:
        """bool [n_cells, MAX_SEQ] (a transposed view: writable)."""
        return self.seq_t.T

    @property
    def size(self) -> int:
        return int(self.pos.shape[0])

    # ------------------------------------------------------------------ queries
    def is_empty(self, i: int) -> bool:
        return bool(self.pos[i] == -1)

    def get_used(self) -> int:
        # ~pos is 0 exactly where pos == -1 (an integer pass, no bool temporary to count)
        return int(np.count_nonzero(~self.pos))

    def used_min(self) -> int:
        """Index of the first used cell (0 when none is used)."""
        used = self.pos != -1
        if not used.size:
            return 0
        i = int(used.argmax())
        return i if used[i] else 0

    def used_max_p1(self) -> int:
        """Index of the last used cell + 1 (0 when none is used)."""
        # one comparison pass, then a C-speed search from the end of its bytes (a bool is one
        # byte: 1 for a used cell); rfind gives -1 when none is used
        return (self.pos != -1).tobytes().rfind(1) + 1

    def seq_count(self, i: int) -> int:
        self._need_used(i)
        return int(np.count_nonzero(self.seq[i]))

    def seq_has(self, i: int, s: int) -> bool:
        return bool(self.seq[i, s])

    def seq_get(self, i: int) -> int:
        """The only sequence of cell ``i``."""
        nz = np.flatnonzero(self.seq[i])
        if nz.size != 1:
            raise KVCellsError(f"seq_get: cell {i} holds {nz.size} sequences, not 1")
        return int(nz[0])

    def seq_pos_get(self, s: int) -> list[tuple[int, int]]:
        """The (pos, cell) pairs of sequence ``s``, ordered by position then cell."""
        cells = np.flatnonzero(self.seq_t[s])
        order = np.lexsort((cells, self.pos[cells]))
        return [(int(self.pos[c]), int(c)) for c in cells[order]]

    def seq_pos_min(self, s: int) -> int:
        """Smallest position of sequence ``s`` in any cell (-1 when absent)."""
        # a masked reduction: no gathered copy of the positions (the ufunc's reduce directly:
        # ndarray.min goes through a Python wrapper)
        v = int(_MIN(self.pos, where=self.seq_t[s], initial=_I32_MAX))
        return -1 if v == _I32_MAX and not self.seq_t[s].any() else v

    def seq_pos_max(self, s: int) -> int:
        v = int(_MAX(self.pos, where=self.seq_t[s], initial=_I32_MIN))
        return -1 if v == _I32_MIN and not self.seq_t[s].any() else v

    def seqs_present(self) -> np.ndarray:
        """The sequence ids held by at least one cell, increasing."""
        return np.flatnonzero(self.seq_t.any(axis=1))

    def seq_pos_tok_le(self, s: int, p: int) -> int:
        """Token of the cell of ``s`` at the largest position <= p (ties: highest cell index);
        TOKEN_NULL when there is none."""
        cells = np.flatnonzero(self.seq_t[s] & (self.pos <= p))
        if cells.size == 0:
            return TOKEN_NULL
        ps = self.pos[cells]
        best = cells[ps == ps.max()][-1]
        return int(self.ext_tok[best])

    def pos_get(self, i: int) -> int:
        self._need_used(i)
        return int(self.pos[i])

    def get_shift(self, i: int) -> int:
        self._need_used(i)
        return int(self.shift[i])

    def ext_get(self, i: int) -> tuple[int, int, int]:
        self._need_used(i)
        return int(self.ext_x[i]), int(self.ext_y[i]), int(self.ext_tok[i])

    def pos_in(self, i: int, p0: int, p1: int) -> bool:
        """Whether cell ``i``'s position is in [p0, p1) (an empty cell's -1 counts as a position,
        as in the reference)."""
        return bool(p0 <= self.pos[i] < p1)

    # ------------------------------------------------------------------ cell ops
    def _need_used(self, i: int) -> None:
        if not 0 <= i < self.pos.shape[0]:
            raise KVCellsError(f"cell {i} out of range [0, {self.size})")
        if self.pos[i] == -1:
            raise KVCellsError(f"cell {i} is empty")

    def _clear(self, i: int) -> None:
        # scalar writes straight into the arrays (seq_rm / apply_ubatch call this per cell)
        self.seq_t[:, i] = False
        self.pos[i] = -1
        self.shift[i] = 0
        self.ext_x[i] = 0
        self.ext_y[i] = 0
        self.ext_tok[i] = TOKEN_NULL

    def rm(self, i: int) -> None:
        """Clear a non-empty cell."""
        self._need_used(i)
        self._clear(i)

    def seq_rm(self, i: int, s: int) -> bool:
        """Drop ``s`` from cell ``i`` (which must hold it); True if the cell became empty."""
        self._need_used(i)
        seq_t = self.seq_t
        if not seq_t[s, i]:
            raise KVCellsError(f"seq_rm: cell {i} does not hold seq {s}")
        seq_t[s, i] = False
        if not seq_t[:, i].any():
            self._clear(i)
            return True
        return False

    def seq_keep(self, i: int, s: int) -> bool:
        """Keep only ``s`` in cell ``i``; True if the cell became empty (it held other seqs only)."""
        if self.seq[i, s]:
            self.seq[i] = False
            self.seq[i, s] = True
            return False
        if self.seq[i].any():
            self._clear(i)
            return True
        if self.pos[i] != -1:
            # a used cell without sequences: the reference asserts it cannot happen here
            raise KVCellsError(f"seq_keep: cell {i} is used but holds no sequence")
        return False

    def seq_add(self, i: int, s: int) -> None:
        """Add ``s`` to a non-empty cell that does not hold it yet."""
        self._need_used(i)
        if self.seq[i, s]:
            raise KVCellsError(f"seq_add: cell {i} already holds seq {s}")
        self.seq[i, s] = True

    def pos_set(self, i: int, p: int) -> None:
        """Give an empty cell a position (does not touch has_shift)."""
        if not 0 <= i < self.size or self.pos[i] != -1 or self.seq[i].any():
            raise KVCellsError(f"pos_set: cell {i} is not empty")
        self.pos[i] = p

    def ext_set(self, i: int, x: int, y: int, tok: int) -> None:
        self.ext_x[i], self.ext_y[i], self.ext_tok[i] = x, y, tok

    def pos_add(self, i: int, d: int) -> bool:
        """Shift a non-empty cell by ``d``; a cell pushed below 0 is cleared, but keeps its ext
        (the reference resets pos, shift and seqs only).  Returns True if the cell was cleared."""
        self._need_used(i)
        self.pos[i] += d
        self.shift[i] += d
        self.has_shift = True
        if self.pos[i] < 0:
            self.seq[i] = False
            self.pos[i] = -1
            self.shift[i] = 0
            return True
        return False

    def pos_div(self, i: int, d: int) -> None:
        """Divide a non-empty cell's position by ``d`` (C truncation); the shift records the
        change."""
        self._need_used(i)
        if d <= 0:
            # 0 crashes the reference; a negative divisor can make a used cell's position -1,
            # the "empty" marker, which corrupts its bookkeeping
            raise KVCellsError(f"pos_div: divisor must be positive, got {d}")
        old = int(self.pos[i])
        new = int(_cdiv(old, d))
        self.pos[i] = new
        self.shift[i] += old - new
        self.has_shift = True

    # ------------------------------------------------------------------ save / restore
    def cp(self, i: int, n: int) -> KVCells:
        """A copy of cells [i, i + n) (pos, ext, seqs; shifts are not copied)."""
        return self.cp_idxs(list(range(i, i + n)))

    def cp_idxs(self, idxs) -> KVCells:
        ix = np.asarray(idxs, dtype=np.int64)
        if ix.size and (ix.min() < 0 or ix.max() >= self.size):
            raise KVCellsError(f"cp: cell indices out of range [0, {self.size})")
        # gathered copies straight into a bare instance (prepare() saves every ubatch's cells)
        res = KVCells.__new__(KVCells)
        res.pos = self.pos[ix]
        res.shift = np.zeros(ix.size, np.int32)
        res.ext_x = self.ext_x[ix]
        res.ext_y = self.ext_y[ix]
        res.ext_tok = self.ext_tok[ix]
        if ix.size <= _FEW_CELLS:
            res.seq_t = self.seq_t[:, ix]
        else:
            # a [256, k] column gather is slow; only the rows of sequences present can be set
            res.seq_t = np.zeros((MAX_SEQ, ix.size), bool)
            rows = self.seqs_present()
            if rows.size:
                res.seq_t[rows] = self.seq_t[_grid(rows, ix)]
        res.has_shift = False
        return res

    def set(self, i: int, other: KVCells) -> None:
        """Overwrite cells [i, i + other.size) with ``other`` (shifts untouched)."""
        self.set_idxs(list(range(i, i + other.size)), other)

    def set_idxs(self, idxs, other: KVCells) -> None:
        ix = np.asarray(idxs, dtype=np.int64)
        if ix.size != other.size:
            raise KVCellsError(f"set: {ix.size} indices for {other.size} cells")
        if ix.size and (ix.min() < 0 or ix.max() >= self.size):
            raise KVCellsError(f"set: cell indices out of range [0, {self.size})")
        self.pos[ix] = other.pos
        self.ext_x[ix] = other.ext_x
        self.ext_y[ix] = other.ext_y
        self.ext_tok[ix] = other.ext_tok
        if ix.size <= _FEW_CELLS:
            self.seq_t[:, ix] = other.seq_t
            return
        # rows no cell of either side holds are False on both sides: leave them alone
        rows = np.flatnonzero(self.seq_t.any(axis=1) | other.seq_t.any(axis=1))
        if rows.size:
            self.seq_t[_grid(rows, ix)] = other.seq_t[rows]

    def seq_rm_idxs(self, idxs, s: int) -> np.ndarray:
        """``seq_rm(i, s)`` for each cell of ``idxs`` at once (all checked before any change);
        returns the cells that became empty, in ``idxs`` order."""
        ix = np.asarray(idxs, dtype=np.int64)
        if not ix.size:
            return ix
        if ix.min() < 0 or ix.max() >= self.size:
            raise KVCellsError(f"seq_rm: cell indices out of range [0, {self.size})")
        bad = np.flatnonzero((self.pos[ix] == -1) | ~self.seq_t[s, ix])
        if bad.size:
            i = int(ix[bad[0]])
            raise KVCellsError(f"cell {i} is empty" if self.pos[i] == -1 else
                               f"seq_rm: cell {i} does not hold seq {s}")
        self.seq_t[s, ix] = False
        if ix.size <= _FEW_CELLS:
            # a few columns: checking them is cheaper than finding the sequences present
            held = np.array([self.seq_t[:, i].any() for i in ix.tolist()], bool)
        else:
            rows = self.seqs_present()
            held = self.seq_t[_grid(rows, ix)].any(axis=0) if rows.size else np.zeros(ix.size, bool)
        freed = ix[~held]
        self.pos[freed] = -1
        self.shift[freed] = 0
        self.ext_x[freed] = 0
        self.ext_y[freed] = 0
        self.ext_tok[freed] = TOKEN_NULL
        return freed

    # ---- whole-sequence forms of the cell ops (KVCache's seq_* run these once per call instead
    # of once per cell; same results as the per-cell loops of the reference)
    def clear_idxs(self, idxs) -> None:
        """``rm`` of each (non-empty) cell of ``idxs``."""
        ix = np.asarray(idxs, dtype=np.int64)
        if not ix.size:
            return
        if ix.min() < 0 or ix.max() >= self.size or bool((self.pos[ix] == -1).any()):
            bad = ix[(ix < 0) | (ix >= self.size)]
            self._need_used(int(bad[0]) if bad.size else int(ix[self.pos[ix] == -1][0]))
        rows = self.seqs_present()
        if rows.size:
            self.seq_t[_grid(rows, ix)] = False
        self.pos[ix] = -1
        self.shift[ix] = 0
        self.ext_x[ix] = 0
        self.ext_y[ix] = 0
        self.ext_tok[ix] = TOKEN_NULL

    def seq_keep_all(self, s: int) -> np.ndarray:
        """``seq_keep(i, s)`` for every cell (checked before any change); the cells that became
        empty, increasing."""
        rows = self.seqs_present()
        anyseq = self.seq_t[rows].any(axis=0) if rows.size else np.zeros(self.size, bool)
        bad = np.flatnonzero((self.pos != -1) & ~anyseq)
        if bad.size:
            raise KVCellsError(f"seq_keep: cell {int(bad[0])} is used but holds no sequence")
        drop = np.flatnonzero(anyseq & ~self.seq_t[s])
        # every other sequence leaves every cell: the cells of s keep s only, the others empty
        others = rows[rows != s]
        if others.size:
            self.seq_t[others] = False
        self.pos[drop] = -1
        self.shift[drop] = 0
        self.ext_x[drop] = 0
        self.ext_y[drop] = 0
        self.ext_tok[drop] = TOKEN_NULL
        return drop

    def seq_add_idxs(self, idxs, s: int) -> None:
        """``seq_add(i, s)`` for each cell of ``idxs`` (non-empty cells that lack ``s``)."""
        ix = np.asarray(idxs, dtype=np.int64)
        if not ix.size:
            return
        self._need_used_all(ix)
        if bool(self.seq_t[s, ix].any()):
            raise KVCellsError(f"seq_add: cell {int(ix[self.seq_t[s, ix]][0])} already holds seq {s}")
        self.seq_t[s, ix] = True

    def pos_add_idxs(self, idxs, d: int) -> np.ndarray:
        """``pos_add(i, d)`` for each cell of ``idxs``; the cells pushed below 0 (cleared, ext
        kept), in ``idxs`` order."""
        ix = np.asarray(idxs, dtype=np.int64)
        if not ix.size:
            return ix
        self._need_used_all(ix)
        # int32 arithmetic, wrapping like the scalar += on the array
        self.pos[ix] += np.int32(d)
        self.shift[ix] += np.int32(d)
        self.has_shift = True
        freed = ix[self.pos[ix] < 0]
        if freed.size:
            rows = self.seqs_present()
            if rows.size:
                self.seq_t[_grid(rows, freed)] = False
            self.pos[freed] = -1
            self.shift[freed] = 0
        return freed

    def pos_div_idxs(self, idxs, d: int) -> None:
        """``pos_div(i, d)`` for each cell of ``idxs``."""
        ix = np.asarray(idxs, dtype=np.int64)
        if not ix.size:
            return
        self._need_used_all(ix)
        if d <= 0:
            raise KVCellsError(f"pos_div: divisor must be positive, got {d}")
        old = self.pos[ix]
        new = _cdiv(old, d).astype(np.int32)
        self.pos[ix] = new
        self.shift[ix] += old - new
        self.has_shift = True

    def _need_used_all(self, ix: np.ndarray) -> None:
        if ix.min() < 0 or ix.max() >= self.size:
            self._need_used(int(ix[(ix < 0) | (ix >= self.size)][0]))
        empty = self.pos[ix] == -1
        if bool(empty.any()):
            self._need_used(int(ix[empty][0]))

    # ------------------------------------------------------------------ canonical dump
    def describe(self) -> dict:
        """The probe's state JSON for llama_kv_cells."""
        used = self.pos != -1
        seqs = [np.flatnonzero(r).tolist() if u else [] for r, u in zip(self.seq, used, strict=True)]
        ext = [[int(x), int(y), int(t)] if u else None
               for x, y, t, u in zip(self.ext_x, self.ext_y, self.ext_tok, used, strict=True)]
        seq_pos = []
        for s in np.flatnonzero(self.seq[used].any(axis=0)).tolist():
            pairs = self.seq_pos_get(s)
            seq_pos.append([s, pairs[0][0], pairs[-1][0], [list(p) for p in pairs]])
        return {
            "size": self.size, "used": self.get_used(), "used_min": self.used_min(),
            "used_max_p1": self.used_max_p1(), "has_shift": self.has_shift,
            "pos": self.pos.tolist(), "shift": np.where(used, self.shift, 0).tolist(), "ext": ext,
            "seq": seqs, "seq_pos": seq_pos,
        }
