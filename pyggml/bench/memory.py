"""Bench: the KV cache on the decode hot path, both sides doing the same steps.

A unified cache of 4,096 cells holds ``n_fill`` tokens of sequence 0 (n_kv is 4,096 with every
fill below).

- ``find_slot_apply``: find_slot + apply_ubatch + get_n_kv for a kept ubatch, then seq_rm of its
  tokens (probe_kvperf.cpp ps_kvperf_slot).
- ``kq_mask``: the KQ mask (F32 or F16) of a ubatch already placed (ps_kvperf_mask).
- ``decode_with_mask``: a whole decode step as llama_decode drives the cache: allocator init,
  split, prepare, apply_ubatch, n_kv, F32 mask, then seq_rm (probe_kv.cpp ps_kv_bench_step).

``python -m pyggml.bench.memory`` prints the per-token overhead of find_slot + apply_ubatch +
get_n_kv + KQ mask for a 1-token ubatch (the issue's < 100 µs budget at n_kv = 4,096).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from ..batch import Batch, BatchAllocr, UBatch
from ..memory import KVCache
from . import Pair

KV_SIZE = 4096


def _cache(n_fill: int) -> tuple[KVCache, BatchAllocr]:
    kv = KVCache(kv_size=KV_SIZE, n_seq_max=1)
    allocr = BatchAllocr()
    if n_fill:
        ub = _ubatch(kv, allocr, n_fill)
        kv.apply_ubatch(kv.find_slot(ub), ub)
    return kv, allocr


def _ubatch(kv: KVCache, allocr: BatchAllocr, n_tokens: int) -> UBatch:
    # n_tokens tokens of sequence 0 continuing the cache, as one split_simple ubatch
    allocr.init(Batch(tokens=np.ones(n_tokens, np.int32)).to_ext(n_seq_max=1, n_vocab=32000, mem=kv))
    allocr.split_reset()
    ub = allocr.split_simple(n_tokens)
    if ub is None or ub.n_tokens != n_tokens:
        raise AssertionError("kv bench: the split did not give one ubatch")
    return ub


def _ours_decode(n_fill: int):
    kv, allocr = _cache(n_fill)

    def decode(n_tokens: int, mask: bool) -> int:
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
        kv.seq_rm(0, p0, -1)
        return n_kv

    return decode


def _check(name: str, a: int, b: int) -> None:
    if a != b or a != KV_SIZE:
        raise AssertionError(f"kv bench {name}: n_kv {a} (pyggml) vs {b} (reference)")


def _decode_factory(n_fill: int, n_tokens: int, mask: bool):
    def make() -> Pair:
        from ..reference.memory import KVBench

        ours = _ours_decode(n_fill)
        ref = KVBench(KV_SIZE, n_fill)
        _check("decode", ours(n_tokens, mask), ref.step(n_tokens, mask))
        return Pair(ours=lambda: ours(n_tokens, mask), reference=lambda: ref.step(n_tokens, mask),
                    note=f"whole decode: {n_tokens} token(s) into {n_fill}/{KV_SIZE} cells"
                         + (", with KQ mask" if mask else ""))

    return make


def _slot_factory(n_fill: int, n_tokens: int):
    def make() -> Pair:
        from ..reference.kvperf import KVPerf

        kv, allocr = _cache(n_fill)
        ub = _ubatch(kv, allocr, n_tokens)
        p0 = int(ub.pos[0])

        def ours() -> int:
            si = kv.find_slot(ub)
            if si is None:
                return -1
            kv.apply_ubatch(si, ub)
            n_kv = kv.get_n_kv(si)
            kv.seq_rm(0, p0, -1)
            return n_kv

        ref = KVPerf(KV_SIZE, n_fill, n_tokens, applied=False)
        _check("find_slot_apply", ours(), ref.slot())
        return Pair(ours=ours, reference=ref.slot,
                    note=f"find_slot + apply_ubatch + get_n_kv + seq_rm, {n_tokens} token(s) into "
                         f"{n_fill}/{KV_SIZE} cells")

    return make


def _mask_factory(n_fill: int, n_tokens: int, f16: bool):
    def make() -> Pair:
        from ..reference.kvperf import KVPerf

        kv, allocr = _cache(n_fill)
        ub = _ubatch(kv, allocr, n_tokens)
        si = kv.find_slot(ub)
        kv.apply_ubatch(si, ub)
        n_kv = kv.get_n_kv(si)
        ref = KVPerf(KV_SIZE, n_fill, n_tokens, applied=True)
        _check("kq_mask", n_kv, ref.mask(f16))
        # like the reference, fill one buffer kept across calls (the graph's mask input)
        out = np.empty((1, n_tokens, n_kv), np.float16 if f16 else np.float32)
        return Pair(ours=lambda: kv.kq_mask(ub, n_kv, 1, f16=f16, out=out), reference=lambda: ref.mask(f16),
                    note=f"KQ mask {'F16' if f16 else 'F32'} n_kv={n_kv} x {n_tokens} token(s)")

    return make


CASES = {
    "memory.find_slot_apply.1tok.4096": _slot_factory(4000, 1),
    "memory.kq_mask.4096x1": _mask_factory(4000, 1, False),
    "memory.kq_mask.4096x512": _mask_factory(3584, 512, False),
    "memory.kq_mask_f16.4096x512": _mask_factory(3584, 512, True),
    "memory.decode_with_mask.4096x1": _decode_factory(4000, 1, True),
    "memory.decode_with_mask.4096x512": _decode_factory(3584, 512, True),
}


def hot_path_us(n_fill: int = 4000, rounds: int = 400, per_round: int = 5) -> dict[str, float]:
    """µs per 1-token ubatch of find_slot + apply_ubatch + get_n_kv + KQ mask (F32) in a cache of
    4,096 cells, the tokens removed again between calls (not timed).  Rounds of ``per_round``
    calls; the minimum over rounds approximates an idle machine, the median includes the load."""
    kv, allocr = _cache(n_fill)
    ub = _ubatch(kv, allocr, 1)
    c = kv.cells[0]
    head = kv.heads[0]
    times = []
    for _ in range(rounds):
        t = 0
        for _ in range(per_round):
            t0 = time.perf_counter_ns()
            si = kv.find_slot(ub)
            kv.apply_ubatch(si, ub)
            kv.kq_mask(ub, kv.get_n_kv(si), 1)
            t += time.perf_counter_ns() - t0
            c.rm(si.idxs[0][0])
            kv.heads[0] = head
        times.append(t / per_round / 1e3)
    return {"min": min(times), "median": statistics.median(times)}


if __name__ == "__main__":
    r = hot_path_us()
    print(f"find_slot + apply_ubatch + get_n_kv + KQ mask, 1 token, n_kv={KV_SIZE}: "
          f"min {r['min']:.1f} us, median {r['median']:.1f} us per token")
