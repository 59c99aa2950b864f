"""``pyggml.Batch``: what users hand to ``Context.decode``.

It has the fields of the reference's legacy ``llama_batch`` (tokens or embeddings, positions,
sequence ids, output flags), each optional with the same defaults (llama_batch_compat::init):
no seq ids -> sequence 0; no positions -> continue each token's first sequence from the memory;
no output flags -> only the last token is an output.  Arrays are numpy-friendly; nothing is
validated here beyond shapes: the allocator (``BatchAllocr.init``) applies the reference's rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BatchError
from .ext import BatchExt, SeqPosMemory, from_legacy

SeqIds = int | Sequence[int] | Sequence[Sequence[int]] | np.ndarray | None


@dataclass
class Batch:
    """A batch of ``n_tokens`` entries.

    ``tokens``: int32 [n_tokens] token ids, or None for an embedding batch.
    ``embd``: float32 [n_tokens, n_embd] input embeddings, or None for a token batch (both may be
    given, e.g. MTP hook batches).
    ``pos``: int32 [n_tokens] positions, or [n_pos, n_tokens] (section-major, M-RoPE embeddings);
    None = auto.
    ``seq_ids``: None (all in sequence 0), one int (all in that sequence), one int per token, or
    one list of ints per token (a token shared by several sequences).
    ``output``: None (last token only), True/False (all/none), or bool [n_tokens].
    """

    tokens: np.ndarray | Sequence[int] | None = None
    embd: np.ndarray | None = None
    pos: np.ndarray | Sequence[int] | None = None
    seq_ids: SeqIds = None
    output: np.ndarray | Sequence[bool] | bool | None = None

    def __post_init__(self) -> None:
        if self.tokens is None and self.embd is None:
            raise BatchError("a batch needs tokens or embeddings", reason="no-content")
        if self.tokens is not None:
            self.tokens = np.asarray(self.tokens, dtype=np.int32).reshape(-1)
        if self.embd is not None:
            self.embd = np.ascontiguousarray(self.embd, dtype=np.float32)
            if self.embd.ndim == 1:
                self.embd = self.embd.reshape(1, -1)
            if self.embd.ndim != 2:
                raise BatchError(f"embd must be [n_tokens, n_embd], got shape {self.embd.shape}",
                                 reason="shape")
        n = self.n_tokens
        if self.tokens is not None and self.embd is not None and self.embd.shape[0] != n:
            raise BatchError(f"{n} tokens but {self.embd.shape[0]} embedding rows", reason="shape")
        if self.pos is not None:
            self.pos = np.asarray(self.pos, dtype=np.int32)
            if self.pos.shape[-1] != n or self.pos.ndim > 2:
                raise BatchError(f"pos must be [n_tokens] or [n_pos, n_tokens], got shape {self.pos.shape} "
                                 f"for {n} tokens", reason="shape")
        if self.output is not None and not isinstance(self.output, bool):
            self.output = np.asarray(self.output, dtype=bool).reshape(-1)
            if self.output.shape[0] != n:
                raise BatchError(f"{self.output.shape[0]} output flags for {n} tokens", reason="shape")
        # one seq id per token as an int64 array (int / 1-D array forms): to_ext skips the lists
        self._col: np.ndarray | None = None
        if isinstance(self.seq_ids, int | np.integer) and -(1 << 63) <= int(self.seq_ids) < 1 << 63:
            self._col = np.full(n, int(self.seq_ids), np.int64)
            self._rows: list[list[int]] | None = None
        elif isinstance(self.seq_ids, np.ndarray) and self.seq_ids.ndim == 1:
            if self.seq_ids.shape[0] != n:
                raise BatchError(f"{self.seq_ids.shape[0]} seq id entries for {n} tokens", reason="shape")
            self._col = self.seq_ids.astype(np.int64)
            self._rows = None
        else:
            self._rows = self._seq_rows(self.seq_ids, n)

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0] if self.tokens is not None else self.embd.shape[0])  # type: ignore[union-attr]

    @staticmethod
    def _seq_rows(seq_ids: SeqIds, n: int) -> list[list[int]] | None:
        if seq_ids is None:
            return None
        if isinstance(seq_ids, int | np.integer):
            return [[int(seq_ids)]] * n
        if isinstance(seq_ids, np.ndarray) and seq_ids.ndim == 1:
            rows = [[v] for v in seq_ids.astype(np.int64).tolist()]
        else:
            rows = [[int(v)] if isinstance(v, int | np.integer) else [int(x) for x in v] for v in seq_ids]
        if len(rows) != n:
            raise BatchError(f"{len(rows)} seq id entries for {n} tokens", reason="shape")
        return rows

    @classmethod
    def single(cls, tokens: np.ndarray | Sequence[int]) -> Batch:
        """All tokens in sequence 0, positions continuing the memory, last token output
        (llama_batch_get_one)."""
        return cls(tokens=tokens)

    def to_ext(self, *, n_seq_max: int, n_vocab: int, n_embd_inp: int = 0, n_embd_inp_enc: int | None = None,
               n_pos_per_embd: int = 1, mem: SeqPosMemory | None = None, n_embd_row: int = 0) -> BatchExt:
        """The allocator's view of this batch (llama_batch_compat::init)."""
        n = self.n_tokens
        ext = BatchExt(n_tokens_max=max(n, 1), n_embd_inp=n_embd_inp, n_embd_inp_enc=n_embd_inp_enc,
                       n_seq_max=n_seq_max, mem=mem, n_vocab=n_vocab, n_pos_per_embd=n_pos_per_embd)
        if self.embd is not None and n_embd_row == 0:
            n_embd_row = int(self.embd.shape[1])
        if self.output is None:
            logits = None
        elif isinstance(self.output, bool):
            logits = np.full(n, self.output, dtype=np.int8)
        else:
            logits = self.output
        pos = None if self.pos is None else np.asarray(self.pos).reshape(-1)
        rows = self._rows
        return from_legacy(ext, n_tokens=n, token=self.tokens, embd=self.embd, pos=pos,
                           n_seq_id=None if rows is None else [len(r) for r in rows], seq_id=rows,
                           logits=logits, n_embd_row=n_embd_row, seq_col=self._col)
