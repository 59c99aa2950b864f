"""Iteration order of the reference's ``std::unordered_map<std::string, llama_token>``.

llama.cpp's vocab loader walks ``token_to_id`` (filled with ids 0..n-1 in order) to
auto-detect EOT/EOM/FIM tokens; when a vocabulary holds several candidate texts for one slot,
the first one in libstdc++'s hash-table order wins.  We reproduce that order:

- hash codes and the rehash policy come from the C++ runtime the reference itself runs on
  (``std::_Hash_bytes`` and ``std::__detail::_Prime_rehash_policy`` of libstdc++, via ctypes);
- the node list is simulated with libstdc++'s rules (unique keys): an insert goes to the front
  of its bucket's run, or to the front of the whole list when the bucket is empty; a rehash
  walks the list and relinks each node the same way into the new buckets.

Only called when a slot has more than one candidate.  Without libstdc++ (another C++
runtime) ``available()`` is False and the caller falls back to the lowest id.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

_HASH_SEED = 0xC70F6907  # std::hash<std::string> seed in libstdc++ (functional_hash.h)


class _Policy(ctypes.Structure):
    _fields_ = [("max_load_factor", ctypes.c_float), ("next_resize", ctypes.c_size_t)]


class _Pair(ctypes.Structure):
    _fields_ = [("first", ctypes.c_bool), ("second", ctypes.c_size_t)]


@functools.cache
def _lib() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL("libstdc++.so.6")
        hb = lib._ZSt11_Hash_bytesPKvmm
        nr = lib._ZNKSt8__detail20_Prime_rehash_policy14_M_need_rehashEmmm
    except (OSError, AttributeError):
        return None
    hb.restype = ctypes.c_size_t
    hb.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t]
    nr.restype = _Pair
    nr.argtypes = [ctypes.POINTER(_Policy), ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t]
    return lib


def available() -> bool:
    return _lib() is not None


_MUL = np.uint64(0xC6A4A7935BD1E995)


def _shift_mix(v: np.ndarray) -> np.ndarray:
    return v ^ (v >> np.uint64(47))


def hashes(keys: list[bytes]) -> np.ndarray:
    """``std::_Hash_bytes(k, len(k), seed)`` of every key (libstdc++ hash_bytes.cc, 64-bit:
    whole 8-byte words mixed, the tail loaded little-endian), vectorized over the keys."""
    n = len(keys)
    lens = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    words = (lens + 7) // 8
    # every key zero-padded to whole words, all in one buffer
    starts = np.concatenate([[0], np.cumsum(words)[:-1]]).astype(np.int64) if n else words
    src = np.frombuffer(b"".join(keys), dtype=np.uint8)
    key_start = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64) if n else starts
    dest = np.arange(len(src), dtype=np.int64) + np.repeat(starts * 8 - key_start, lens)
    buf = np.zeros(int(words.sum()) * 8, dtype=np.uint8)
    buf[dest] = src
    flat = buf.view("<u8")
    full = lens // 8
    tail = lens % 8 != 0
    with np.errstate(over="ignore"):
        h = np.uint64(_HASH_SEED) ^ (lens.astype(np.uint64) * _MUL)
        for j in range(int(words.max()) if n else 0):
            live = np.flatnonzero(words > j)
            w = flat[starts[live] + j]
            mixed = full[live] > j
            data = np.where(mixed, _shift_mix(w * _MUL) * _MUL, w)  # a tail word goes in raw
            use = mixed | tail[live]
            hl = h[live]
            h[live] = np.where(use, (hl ^ data) * _MUL, hl)
        h = _shift_mix(_shift_mix(h) * _MUL)
    return h


def _hashes_ctypes(keys: list[bytes]) -> np.ndarray:
    """The reference's own ``std::_Hash_bytes`` through ctypes (tests check ``hashes``)."""
    lib = _lib()
    assert lib is not None
    hb = lib._ZSt11_Hash_bytesPKvmm
    return np.fromiter((hb(k, len(k), _HASH_SEED) for k in keys), dtype=np.uint64, count=len(keys))


def _rehash_points(n: int) -> list[tuple[int, int]]:
    """(element index inserted right after the rehash, new bucket count), in order."""
    lib = _lib()
    assert lib is not None
    need = lib._ZNKSt8__detail20_Prime_rehash_policy14_M_need_rehashEmmm
    pol = _Policy(1.0, 0)
    n_bkt = 1
    i = 0
    out = []
    while i < n:
        r = need(ctypes.byref(pol), n_bkt, i, 1)
        if r.first:
            n_bkt = int(r.second)
            out.append((i, n_bkt))
        i = max(i + 1, int(pol.next_resize))
    return out


def iteration_order(keys: list[bytes]) -> np.ndarray:
    """Indices of ``keys`` (inserted in index order) in the map's iteration order."""
    n = len(keys)
    h = hashes(keys)
    order = np.zeros(0, dtype=np.int64)
    points = _rehash_points(n) + [(n, 0)]
    n_bkt = 1
    start = 0
    for at, new_bkt in points:
        order = _insert_batch(order, np.arange(start, at, dtype=np.int64), h, n_bkt)
        if at >= n:
            break
        order = _rehash(order, h, new_bkt)
        n_bkt = new_bkt
        start = at
    return order


def _insert_batch(order: np.ndarray, xs: np.ndarray, h: np.ndarray, n_bkt: int) -> np.ndarray:
    """Insert ``xs`` (in order) without a rehash: into an occupied bucket at the front of its
    run, into an empty one at the front of the list."""
    if len(xs) == 0:
        return order
    B = np.uint64(n_bkt)
    b_old = (h[order] % B).astype(np.int64)
    b_new = (h[xs] % B).astype(np.int64)
    old_buckets, old_first = np.unique(b_old, return_index=True)
    rank_u = np.argsort(np.argsort(old_first))  # runs are contiguous: rank by first node
    grp_old = rank_u[np.searchsorted(old_buckets, b_old)] if len(order) else np.zeros(0, dtype=np.int64)
    pos = np.searchsorted(old_buckets, b_new)
    pos_c = np.minimum(pos, max(len(old_buckets) - 1, 0))
    in_old = (
        (pos < len(old_buckets)) & (old_buckets[pos_c] == b_new)
        if len(old_buckets)
        else np.zeros(len(xs), dtype=bool)
    )
    new_buckets, new_first = np.unique(b_new, return_index=True)
    first = new_first[np.searchsorted(new_buckets, b_new)]
    grp_new = np.where(in_old, rank_u[pos_c] if len(old_buckets) else 0, -1 - first)
    cat = np.concatenate([np.ones(len(order), dtype=np.int64), in_old.astype(np.int64)])
    grp = np.concatenate([grp_old, grp_new])
    within = np.concatenate([np.arange(len(order), dtype=np.int64), -1 - np.arange(len(xs), dtype=np.int64)])
    ids = np.concatenate([order, xs])
    return ids[np.lexsort((within, grp, cat))]


def _rehash(order: np.ndarray, h: np.ndarray, n_bkt: int) -> np.ndarray:
    """libstdc++ _M_rehash_aux (unique keys): runs in reverse order of first encounter,
    nodes inside a run in reverse encounter order."""
    if len(order) == 0:
        return order
    b = (h[order] % np.uint64(n_bkt)).astype(np.int64)
    buckets, first = np.unique(b, return_index=True)
    first_pos = first[np.searchsorted(buckets, b)]
    idx = np.lexsort((-np.arange(len(order)), -first_pos))
    return order[idx]
