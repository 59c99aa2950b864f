"""The infill sampler (llama.cpp: src/llama-sampler.cpp llama_sampler_infill_apply).

After a sorted softmax: when end-of-generation tokens carry enough of the mass
(``3 * p_eog * n > p_txt``) only they are kept; otherwise tokens whose piece is a prefix of
another's are merged into the likelier one, then two probability thresholds (0.2, then
``1 / (n_non_eog + 1)``) prune the rest, and with no text token left the array becomes the
single EOT (else EOS) token with logit 1.  All sums are float32 in index order, as the
reference accumulates them.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import SamplerError
from ._fmath import f32, seq_sum_f32
from .base import BaseSampler, softmax_impl
from .candidates import Candidates


class InfillVocab(Protocol):
    """What infill needs from a vocabulary (``pyggml.vocab.Vocab`` has it)."""

    eog: set[int]
    special: dict[str, int]

    def token_to_piece(self, token: int, lstrip: int = 0, special: bool = False) -> bytes: ...


class Infill(BaseSampler):
    name = "infill"

    def __init__(self, vocab: InfillVocab) -> None:
        self.vocab = vocab
        eot = vocab.special.get("eot", -1)
        self.end = eot if eot >= 0 else vocab.special.get("eos", -1)

    def clone(self) -> Infill:
        return Infill(self.vocab)

    def _keep(self, cur: Candidates, keep: np.ndarray) -> None:
        cur.take(np.flatnonzero(keep))
        cur.p = cur.p / seq_sum_f32(cur.p)

    def apply(self, cur: Candidates) -> None:
        softmax_impl(cur, True)
        is_eog = np.fromiter((int(t) in self.vocab.eog for t in cur.ids), dtype=bool, count=cur.size)
        p_eog = seq_sum_f32(cur.p[is_eog])
        p_txt = seq_sum_f32(cur.p[~is_eog])
        # 3*p_eog_sum*cur_p->size: float arithmetic, the size converted to float
        if f32(f32(3 * p_eog) * f32(cur.size)) > p_txt:
            self._keep(cur, is_eog)
            return
        self._combine_prefixes(cur)
        # "p < thold && !is_eog -> drop": a NaN p (an overflowed softmax) is kept
        keep = ~(cur.p < f32(0.2)) | is_eog
        n_non_eog = int(np.count_nonzero(keep & ~is_eog))
        if n_non_eog == 0:
            if self.end < 0:
                raise SamplerError("infill: the vocabulary has neither EOT nor EOS (the reference aborts)")
            # the kept (EOG) entries were moved to the front: entry 0 keeps the first one's p
            kept = np.flatnonzero(keep)
            cur.ids = np.array([self.end], np.int32)
            cur.logits = np.array([1.0], np.float32)
            cur.p = cur.p[kept[:1] if kept.size else [0]].copy()
            cur.identity_ids = False
            return
        self._keep(cur, keep)
        is_eog = is_eog[keep]
        thold = f32(1.0 / (n_non_eog + 1))  # computed in double, stored in a float
        self._keep(cur, ~(cur.p < thold) | is_eog)

    def _combine_prefixes(self, cur: Candidates) -> None:
        # token i0 absorbs (or is absorbed by, when less likely) every token i1 whose piece
        # starts with i0's piece; merged-away tokens get logit -inf and p 0, in the reference's
        # i0-major order, each step seeing the updates of the previous ones
        pieces = [self.vocab.token_to_piece(int(t), 0, False) for t in cur.ids]
        logits = cur.logits.copy()
        p = cur.p.copy()
        n = cur.size
        for i0 in range(n):
            a = pieces[i0]
            for i1 in range(n):
                if logits[i0] == -np.inf:
                    break
                if i0 == i1 or logits[i1] == -np.inf:
                    continue
                b = pieces[i1]
                if a and len(a) <= len(b) and b.startswith(a):
                    dst, src = (i1, i0) if p[i1] > p[i0] else (i0, i1)
                    p[dst] = f32(p[dst] + p[src])
                    logits[src] = -np.inf
                    p[src] = 0.0
        cur.logits = logits
        cur.p = p
