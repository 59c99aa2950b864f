"""Sliding-window attention: which cached positions a query position may not see.

llama.cpp: src/llama-hparams.h llama_hparams::is_masked_swa (and enum llama_swa_type in
llama-hparams.h).  ``is_masked`` works elementwise on numpy arrays, so the KQ mask can be built
for a whole [n_tokens, n_kv] grid at once.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class SWAType(IntEnum):
    NONE = 0
    STANDARD = 1
    CHUNKED = 2
    SYMMETRIC = 3


def is_masked(n_swa: int, swa_type: SWAType | int, p0, p1):
    """Whether key position ``p0`` is outside query position ``p1``'s window (positions >= 0).

    STANDARD: ``p1 - p0 >= n_swa``; CHUNKED: ``p0`` before the start of ``p1``'s chunk of
    ``n_swa`` positions; SYMMETRIC: ``|p1 - p0| > n_swa // 2``.
    """
    p0 = np.asarray(p0, dtype=np.int64)
    p1 = np.asarray(p1, dtype=np.int64)
    t = SWAType(swa_type)
    if t == SWAType.NONE:
        return np.zeros(np.broadcast(p0, p1).shape, bool)
    if t == SWAType.STANDARD:
        # n_swa is compared as int32 in the reference
        n = np.int64(np.int32(np.uint32(n_swa)))
        return p1 - p0 >= n
    if t == SWAType.CHUNKED:
        if n_swa == 0:
            raise ZeroDivisionError("chunked SWA with n_swa == 0 (the reference divides by zero)")
        return p0 < (p1 // n_swa) * n_swa
    n = int(np.int32(np.uint32(n_swa)))
    half = abs(n) // 2 * (1 if n >= 0 else -1)  # C division truncates toward zero
    d = p1 - p0
    return (d < -half) | (d > half)
