"""The dynamic tensor allocator and the bump allocator, rule by rule (ggml-alloc.c
ggml_dyn_tallocr_alloc / free_bytes / new_chunk, ggml_tallocr_alloc)."""

from __future__ import annotations

import pytest

from pyggml.alloc.dyn_tallocr import HALF_SIZE_MAX, MAX_CHUNKS, MAX_FREE_BLOCKS, SIZE_MAX, DynTallocr
from pyggml.alloc.tallocr import Tallocr
from pyggml.errors import AllocAbort

BIG = SIZE_MAX


def test_alignment_pads_sizes() -> None:
    d = DynTallocr(8, BIG)
    assert d.alloc(5) == (0, 0)
    assert d.alloc(3) == (0, 8)
    assert d.chunks[0].max_size == 16
    d.free_bytes(0, 0, 5)                      # freed size is padded too
    assert d.chunks[0].blocks()[0] == (0, 8)


def test_max_chunk_size_is_clamped() -> None:
    assert DynTallocr(8, BIG).max_chunk_size == HALF_SIZE_MAX
    assert DynTallocr(8, 64).max_chunk_size == 64
    with pytest.raises(AllocAbort):
        DynTallocr(6, 64)


def _with_holes(d: DynTallocr, sizes: list[int], free: list[int]) -> list[tuple[int, int]]:
    addrs = [d.alloc(s) for s in sizes]
    for i in free:
        d.free_bytes(*addrs[i], sizes[i])
    return addrs


def test_best_fit_over_non_last_blocks() -> None:
    d = DynTallocr(8, BIG)
    _with_holes(d, [16, 8, 32, 8], free=[0, 2])    # holes [0,16) and [24,56)
    assert d.alloc(8) == (0, 0)                    # the tighter hole
    assert d.chunks[0].blocks() == [(8, 8), (24, 32), (64, HALF_SIZE_MAX - 64)]


def test_best_fit_tie_prefers_later_block() -> None:
    d = DynTallocr(8, BIG)
    _with_holes(d, [16, 8, 16, 8], free=[0, 2])    # two holes of 16: [0,16) and [24,40)
    assert d.alloc(16) == (0, 24)                  # `<=`: the later one wins


def test_pass_one_skips_last_blocks() -> None:
    d = DynTallocr(8, 32)
    a = d.alloc(8)
    d.alloc(24)                        # chunk 0 full, no free block left
    b = d.alloc(16)                    # chunk 1 [0,16)
    d.alloc(8)                         # chunk 1 [16,24), last block [24,32)
    d.free_bytes(*a, 8)                # chunk 0: [0,8) is its only, hence last, block
    d.free_bytes(*b, 16)               # chunk 1: [0,16) is a non-last block
    d.alloc(24)                        # fits nowhere: chunk 2
    assert d.chunks[0].blocks() == [(0, 8)]
    assert d.alloc(8) == (1, 0)        # pass 1 sees only chunk 1's [0,16)


def test_later_chunk_beats_tighter_earlier_chunk() -> None:
    d = DynTallocr(8, 64)
    x = [d.alloc(8), d.alloc(8), d.alloc(48)]          # chunk 0 full
    y = [d.alloc(16), d.alloc(8), d.alloc(40)]         # chunk 1 full
    d.free_bytes(*x[0], 8)                              # chunk 0: non-last hole of 8 (+ none)
    d.free_bytes(*y[0], 16)                             # chunk 1: non-last hole of 16
    d.free_bytes(*x[2], 48)                             # chunk 0: last block [16,64)
    d.free_bytes(*y[2], 40)                             # chunk 1: last block [24,64)
    assert d.alloc(8) == (1, 0)                         # not chunk 0's exact 8


def test_last_block_prefers_exact_reuse_then_least_growth() -> None:
    d = DynTallocr(8, 64)
    c0 = [d.alloc(32), d.alloc(32)]    # chunk 0: max_size 64, full
    c1 = [d.alloc(40), d.alloc(24)]    # chunk 1: max_size 64, full
    d.free_bytes(*c0[1], 32)           # chunk 0 last block [32,64): reuse = 64-32-16 = 16
    d.free_bytes(*c1[1], 24)           # chunk 1 last block [40,64): reuse = 64-40-16 = 8
    assert d.alloc(16) == (1, 40)      # the smaller non-negative reuse
    d2 = DynTallocr(8, 64)
    a = [d2.alloc(8), d2.alloc(16)]    # chunk 0 max 24, last block [24,64)
    del a
    d2.alloc(56)                       # chunk 1 [0,56), last block [56,64)
    assert d2.alloc(32) == (0, 24)     # only chunk 0's last block fits: it grows (reuse -32)
    assert d2.chunks[0].max_size == 56 and d2.n_chunks == 2


def test_new_chunk_sizes_and_the_sixteenth_chunk() -> None:
    d = DynTallocr(8, 16)
    addrs = [d.alloc(16) for _ in range(MAX_CHUNKS - 1)]
    assert [a[0] for a in addrs] == list(range(MAX_CHUNKS - 1))
    assert d.alloc(40) == (MAX_CHUNKS - 1, 0)          # the 16th chunk: SIZE_MAX/2 of room
    assert d.chunks[-1].sizes[-1] == HALF_SIZE_MAX - 40
    assert d.alloc(16) == (MAX_CHUNKS - 1, 40)         # and everything else goes there
    assert d.n_chunks == MAX_CHUNKS
    big = DynTallocr(8, 16)
    assert big.alloc(100) == (0, 0)
    assert big.chunks[0].max_size == 104               # a tensor larger than the max: own chunk


def test_too_many_chunks_aborts() -> None:
    # the 16th chunk holds SIZE_MAX/2; a request above what is left there has nowhere to go
    d = DynTallocr(8, 16)
    for _ in range(MAX_CHUNKS):
        d.alloc(16)
    with pytest.raises(AllocAbort, match="failed to reserve memory"):
        d.alloc(HALF_SIZE_MAX)


def test_free_merges_both_ways() -> None:
    d = DynTallocr(8, BIG)
    a = [d.alloc(8) for _ in range(5)]
    d.free_bytes(*a[1], 8)
    d.free_bytes(*a[3], 8)
    assert d.chunks[0].blocks()[:2] == [(8, 8), (24, 8)]
    d.free_bytes(*a[2], 8)                   # joins [8,16) and then [24,32)
    assert d.chunks[0].blocks()[:1] == [(8, 24)]
    d.free_bytes(*a[0], 8)                   # ends right before [8,32): grows it backwards
    assert d.chunks[0].blocks()[:1] == [(0, 32)]
    d.free_bytes(*a[4], 8)                   # joins everything into the last block
    assert d.chunks[0].blocks() == [(0, HALF_SIZE_MAX)]
    assert d.chunks[0].max_size == 40        # the high-water mark stays


def test_free_inserts_sorted_and_limits_blocks() -> None:
    d = DynTallocr(8, BIG)
    a = [d.alloc(8) for _ in range(2 * MAX_FREE_BLOCKS + 2)]
    for i in range(1, 2 * MAX_FREE_BLOCKS - 2, 2):
        d.free_bytes(*a[i], 8)
    offs = d.chunks[0].offs
    assert offs == sorted(offs) and len(offs) == MAX_FREE_BLOCKS
    with pytest.raises(AllocAbort, match="out of free blocks"):
        d.free_bytes(*a[2 * MAX_FREE_BLOCKS - 1], 8)


def test_tallocr_bumps_and_aborts() -> None:
    t = Tallocr(64, 16, base=8)
    assert t.offset == 8                     # first aligned address
    assert t.alloc(10) == 8
    assert t.alloc(16) == 24
    with pytest.raises(AllocAbort, match="not enough space"):
        t.alloc(32)
