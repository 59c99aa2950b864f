"""The context's output buffer: logits (and token embeddings) rows, the batch-index -> row map,
and the lazy reorder of unsorted outputs.

llama.cpp: src/llama-context.cpp ``output_reserve`` (one host buffer, grown only, zeroed when
(re)allocated; ``output_ids`` of n_batch entries reset to -1), the output mapping at the end of
``decode`` (selection-sort swaps remembered in ``output_swaps``), ``output_reorder`` (applied by
every getter) and ``output_resolve_row`` (negative indices count from the last output).
"""

from __future__ import annotations

import numpy as np


class Outputs:
    def __init__(self, *, n_vocab: int, n_embd: int, n_batch: int, n_seq_max: int, has_embd: bool) -> None:
        self.n_vocab, self.n_embd, self.n_batch, self.n_seq_max = n_vocab, n_embd, n_batch, n_seq_max
        self.has_embd = has_embd
        self._buf = np.zeros(0, np.float32)
        self.logits = np.zeros((0, n_vocab), np.float32)  # [n_outputs_max, n_vocab] (numpy order)
        self.embd: np.ndarray | None = None  # [n_outputs_max, n_embd]
        self.ids = np.full(0, -1, np.int32)  # [n_batch]: batch index -> row
        self.swaps: list[tuple[int, int]] = []
        self.n_outputs = 0

    def reserve(self, n_outputs: int) -> int:
        """Room for max(n_outputs, n_seq_max) rows; returns that capacity."""
        n_max = max(n_outputs, self.n_seq_max)
        n_logits = self.n_vocab * n_max
        n_embd = self.n_embd * n_max if self.has_embd else 0
        if self.ids.size == 0:
            self.ids = np.full(self.n_batch, -1, np.int32)
        if self._buf.size < n_logits + n_embd:
            self._buf = np.zeros(n_logits + n_embd, np.float32)
        self.logits = self._buf[:n_logits].reshape(n_max, self.n_vocab)
        self.embd = (
            self._buf[n_logits : n_logits + n_embd].reshape(n_max, self.n_embd) if self.has_embd else None
        )
        self.ids.fill(-1)
        self.n_outputs = 0
        return n_max

    def map_outputs(self, out_ids: list[int]) -> None:
        """output_ids[out_ids[i]] = i; unsorted outputs (split_equal, several streams) are put
        back in batch order by selection-sort swaps, applied lazily."""
        n = len(out_ids)
        order = np.asarray(out_ids, np.int64)
        self.ids[order] = np.arange(n, dtype=np.int32)
        if n > 1 and np.any(order != np.arange(n)):
            ids = list(out_ids)
            for i in range(n - 1):  # selection sort: the reference's swaps, in its order
                j_min = min(range(i, n), key=ids.__getitem__)
                if j_min == i:
                    continue
                ids[i], ids[j_min] = ids[j_min], ids[i]
                self.swaps.append((i, j_min))
            self.ids.fill(-1)
            self.ids[np.asarray(ids, np.int64)] = np.arange(n, dtype=np.int32)

    def reorder(self) -> None:
        """output_reorder: apply the pending swaps to the rows."""
        for i0, i1 in self.swaps:
            for arr in (self.logits, self.embd):
                if arr is not None and arr.shape[0]:
                    arr[[i0, i1]] = arr[[i1, i0]]
        self.swaps.clear()

    def row(self, i: int, what: str) -> int:
        """output_resolve_row, raising IndexError with the reference's log text."""
        if i < 0:
            j = self.n_outputs + i
            if j < 0:
                raise IndexError(
                    f"{what}: invalid {_noun(what)} id {i}, reason: negative index out of range "
                    f"[0, {self.n_outputs})"
                )
        elif i >= self.ids.size:
            raise IndexError(
                f"{what}: invalid {_noun(what)} id {i}, reason: out of range [0, {self.ids.size})"
            )
        else:
            j = int(self.ids[i])
        if j < 0:
            raise IndexError(f"{what}: invalid {_noun(what)} id {i}, reason: batch.logits[{i}] != true")
        if j >= self.n_outputs:
            raise IndexError(
                f"{what}: invalid {_noun(what)} id {i}, reason: corrupt output buffer "
                f"(j={j}, n_outputs={self.n_outputs})"
            )
        return j


def _noun(what: str) -> str:
    return "embeddings" if "embeddings" in what else "logits"
