"""The candidate array samplers work on: ``llama_token_data_array`` as numpy columns."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import SamplerError


@functools.lru_cache(maxsize=8)
def _row_columns(n: int) -> tuple[np.ndarray, np.ndarray]:
    """ids 0..n-1 and p = 0, read-only (shared by every ``Candidates.of_row`` of that size)."""
    ids, p = np.arange(n, dtype=np.int32), np.zeros(n, np.float32)
    ids.flags.writeable = p.flags.writeable = False
    return ids, p


@dataclass(eq=False)
class Candidates:
    """``llama_token_data_array``: parallel columns, all of length ``size``.

    ids     (n,) int32   token ids
    logits  (n,) float32
    p       (n,) float32 probabilities (0 until a sampler computes them)
    selected             index into the arrays (not a token id), -1 when none
    sorted               True when logits are known to be in descending order

    Samplers replace or shrink the columns (the reference shrinks ``size`` or moves ``data``)
    and never write into the arrays they were given, so columns may be shared read-only views
    (``Sampler.sample`` passes the caller's logits without copying them).
    """

    ids: np.ndarray
    logits: np.ndarray
    p: np.ndarray
    selected: int = -1
    sorted: bool = False
    # ids[i] == i for every i (a fresh vocabulary row, possibly truncated): lets id lookups
    # index directly instead of searching; any reorder or head drop clears it
    identity_ids: bool = False

    @classmethod
    def from_logits(cls, logits: np.ndarray) -> Candidates:
        """One candidate per vocabulary entry, ids 0..n-1, p = 0 (as ``llama_sampler_sample``)."""
        lg = np.array(logits, dtype=np.float32, copy=True).reshape(-1)
        return cls(np.arange(lg.size, dtype=np.int32), lg, np.zeros(lg.size, np.float32),
                   identity_ids=True)

    @classmethod
    def of_row(cls, logits: np.ndarray) -> Candidates:
        """Like ``from_logits`` without any copy: the logits are a read-only view and the ids /
        p columns shared read-only arrays (samplers never write into the columns they were
        given; they replace them), so a pick costs no vocabulary-sized allocation up front."""
        view = np.asarray(logits, dtype=np.float32).reshape(-1).view()
        view.flags.writeable = False
        ids, p = _row_columns(view.size)
        return cls(ids, view, p, identity_ids=True)

    @classmethod
    def from_arrays(cls, ids: np.ndarray, logits: np.ndarray, p: np.ndarray | None = None,
                    *, selected: int = -1, sorted: bool = False) -> Candidates:
        ids = np.array(ids, dtype=np.int32, copy=True).reshape(-1)
        lg = np.array(logits, dtype=np.float32, copy=True).reshape(-1)
        pp = (np.zeros(lg.size, np.float32) if p is None
              else np.array(p, dtype=np.float32, copy=True).reshape(-1))
        if not (ids.size == lg.size == pp.size):
            raise SamplerError(f"candidate columns differ in length: ids {ids.size}, "
                             f"logits {lg.size}, p {pp.size}")
        return cls(ids, lg, pp, selected, sorted)

    @property
    def size(self) -> int:
        return int(self.ids.size)

    def __len__(self) -> int:
        return self.size

    def copy(self) -> Candidates:
        return Candidates(self.ids.copy(), self.logits.copy(), self.p.copy(), self.selected,
                          self.sorted, self.identity_ids)

    def take(self, order: np.ndarray) -> None:
        """Keep the rows at ``order``, in that order (a sort or a filter)."""
        self.ids = self.ids[order]
        self.logits = self.logits[order]
        self.p = self.p[order]
        self.identity_ids = False

    def truncate(self, n: int) -> None:
        """``cur_p->size = n``."""
        self.ids = self.ids[:n]
        self.logits = self.logits[:n]
        self.p = self.p[:n]

    def advance(self, n: int) -> None:
        """``cur_p->data += n; cur_p->size -= n`` (xtc drops the head this way)."""
        self.ids = self.ids[n:]
        self.logits = self.logits[n:]
        self.p = self.p[n:]
        self.identity_ids = self.identity_ids and n == 0

    @property
    def token(self) -> int:
        """The selected token id; raises when ``selected`` is not a valid index."""
        if not 0 <= self.selected < self.size:
            raise IndexError(f"no valid selection: selected={self.selected}, size={self.size}")
        return int(self.ids[self.selected])
