"""One micro-batch: the unit the memory module places and the graph computes.

llama.cpp: src/llama-batch.h llama_ubatch.  Tokens are grouped by sequence set: ``n_seqs`` sets of
``n_seq_tokens`` tokens each when ``equal_seqs`` (split_equal, split_seq); split_simple gives
``n_seqs == n_tokens`` with one token per "set".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SEQ = 256  # LLAMA_MAX_SEQ


@dataclass
class UBatch:
    equal_seqs: bool
    n_tokens: int
    n_seq_tokens: int
    n_seqs: int
    n_seqs_unq: int
    n_pos: int
    token: np.ndarray | None  # int32 [n_tokens]
    embd: np.ndarray | None  # float32 [n_tokens, n_embd] (numpy order)
    pos: np.ndarray  # int32 [n_pos * n_tokens], section-major: pos[j * n_tokens + i]
    seq_id: list[tuple[int, ...]]  # [n_tokens], each in the reference's iteration order
    seq_id_unq: list[int]  # [n_seqs_unq], increasing
    output: np.ndarray  # int8 [n_tokens]
    batch_idxs: np.ndarray  # int32 [n_tokens]: the token's index in the input batch

    @property
    def seq_idx(self) -> np.ndarray:
        """int32 [MAX_SEQ]: each sequence's index in ``seq_id_unq``, -1 when absent (built on
        demand: only pooling reads it)."""
        idx = np.full(MAX_SEQ, -1, np.int32)
        idx[self.seq_id_unq] = np.arange(len(self.seq_id_unq), dtype=np.int32)
        return idx

    @property
    def n_seq_id(self) -> list[int]:
        return [len(s) for s in self.seq_id]

    @property
    def is_pos_2d(self) -> bool:
        return self.n_pos >= 3

    def describe(self) -> dict:
        """Canonical dump (the probe's ubatch JSON)."""
        return {
            "equal_seqs": self.equal_seqs,
            "n_tokens": self.n_tokens,
            "n_seq_tokens": self.n_seq_tokens,
            "n_seqs": self.n_seqs,
            "n_seqs_unq": self.n_seqs_unq,
            "n_pos": self.n_pos,
            "token": None if self.token is None else self.token.tolist(),
            "embd": None if self.embd is None else self.embd.astype("<f4").tobytes().hex(),
            "pos": self.pos.tolist(),
            "seq_id": [list(s) for s in self.seq_id],
            "seq_id_unq": list(self.seq_id_unq),
            "seq_idx": [[s, int(self.seq_idx[s])] for s in self.seq_id_unq],
            "output": self.output.tolist(),
            "batch_idxs": self.batch_idxs.tolist(),
        }
