"""Batches: the user's ``Batch``, its validation and auto-filled fields, and the splits into
ubatches (llama.cpp: src/llama-batch.{h,cpp}).

    ext = Batch(tokens=ids, seq_ids=0).to_ext(n_seq_max=1, n_vocab=n_vocab, mem=memory)
    allocr = BatchAllocr()
    allocr.init(ext)                          # raises BatchError as llama_batch_allocr::init fails
    ubatches = split(allocr, "equal", 512)    # or "simple" / "seq"
"""

from __future__ import annotations

import numbers

from ..errors import BatchError
from .allocr import BatchAllocr
from .batch import Batch
from .ext import BatchExt, PosRanges, SeqPosMemory, from_legacy
from .ubatch import UBatch

__all__ = ["Batch", "BatchAllocr", "BatchError", "BatchExt", "PosRanges", "SeqPosMemory", "UBatch",
           "from_legacy", "split"]


def split(allocr: BatchAllocr, mode: str, n_ubatch: int, *, sequential: bool = False,
          keep_tail: int = 0) -> list[UBatch]:
    """Reset the split state and cut the whole batch with one mode ("simple", "equal", "seq").
    Tokens may be left over: split_equal stops early on coupled sequences when ``sequential``
    (compare ``allocr.n_used`` with ``allocr.n_tokens``, as llama_kv_cache::init_batch does).
    Raises BatchError for an unknown mode or non-integer sizes, and where the reference aborts."""
    for name, value in (("n_ubatch", n_ubatch), ("keep_tail", keep_tail)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise BatchError(f"{name} must be an integer, got {value!r}", reason="split-args")
    if not (isinstance(mode, str) and mode in ("simple", "equal", "seq")):
        raise BatchError(f"unknown split mode {mode!r} (simple, equal, seq)", reason="split-mode")
    allocr.split_reset()
    step = {
        "simple": lambda: allocr.split_simple(n_ubatch),
        "equal": lambda: allocr.split_equal(n_ubatch, sequential, keep_tail),
        "seq": lambda: allocr.split_seq(n_ubatch),
    }[mode]
    out: list[UBatch] = []
    while (ub := step()) is not None:
        out.append(ub)
    return out
