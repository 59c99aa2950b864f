"""Bench: the KV cache on the decode hot path, both sides doing the same steps.

A unified cache of 4,096 cells already holds ``n_fill`` tokens of sequence 0; one step decodes
``n_tokens`` more (allocator init, split, prepare/find_slot, apply_ubatch, n_kv and optionally the
F32 KQ mask), then removes them again with seq_rm.  With the fills below n_kv is 4,096.
"""

from __future__ import annotations

import numpy as np

from ..batch import Batch, BatchAllocr
from ..memory import KVCache
from . import Pair

KV_SIZE = 4096


def _ours(n_fill: int):
    kv = KVCache(kv_size=KV_SIZE, n_seq_max=1)
    allocr = BatchAllocr()

    def decode(n_tokens: int, mask: bool, keep: bool) -> int:
        allocr.init(Batch(tokens=np.ones(n_tokens, np.int32)).to_ext(n_seq_max=1, n_vocab=32000, mem=kv))
        p0 = allocr.seq_pos_min(0)
        status, sinfos, ubs = kv.init_batch(allocr, n_tokens)
        if status.is_fail:
            return -1
        n_kv = 0
        for si, ub in zip(sinfos, ubs, strict=True):
            kv.apply_ubatch(si, ub)
            n_kv = kv.get_n_kv(si)
            if mask:
                kv.kq_mask(ub, n_kv, 1)
        if not keep:
            kv.seq_rm(0, p0, -1)
        return n_kv

    decode(n_fill, False, True)
    return decode


def _factory(n_fill: int, n_tokens: int, mask: bool):
    def make() -> Pair:
        from ..reference.memory import KVBench

        ours = _ours(n_fill)
        ref = KVBench(KV_SIZE, n_fill)
        a, b = ours(n_tokens, mask, False), ref.step(n_tokens, mask)
        if a != b or a != KV_SIZE:
            raise AssertionError(f"kv bench: n_kv {a} (pyggml) vs {b} (reference)")
        return Pair(ours=lambda: ours(n_tokens, mask, False), reference=lambda: ref.step(n_tokens, mask),
                    note=f"{n_tokens} token(s) into {n_fill}/{KV_SIZE} cells, n_kv={KV_SIZE}"
                         + (", with KQ mask" if mask else ""))

    return make


CASES = {
    "memory.find_slot_apply.1tok.4096": _factory(4000, 1, False),
    "memory.decode_with_mask.4096x1": _factory(4000, 1, True),
    "memory.decode_with_mask.4096x512": _factory(3584, 512, True),
}
