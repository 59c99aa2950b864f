"""libstdc++'s unstable sorts replayed, tie order included (samplers' candidate arrays, the
vocab's special-token cache).

The reference sorts ``llama_token_data`` by ``a.logit > b.logit`` with libstdc++'s
``std::partial_sort`` (heap select + heap sort) and ``std::sort`` (introsort), neither of
which is stable: the order of equal logits is whatever those algorithms leave behind, and it
decides which token ``dist`` picks.  Two paths here:

* fast (numpy): when the elements whose relative order is observable have pairwise distinct
  keys, every correct sort gives the same result, so a numpy sort is exact;
* exact: otherwise the libstdc++ (GCC 12) algorithms decide.  ``std_sort`` and
  ``std_partial_sort`` below replay them step by step in Python on index lists: that replay is
  the specification.  Real logits do tie (unused tokens share a logit), and a Python replay of
  a 49k-element sort takes a second, so the numpy entry points run the same templates compiled
  (``libpyggml_stl``, csrc/stlsort.cpp, built with the reference's toolchain); the two are
  diffed in tests/sampling/test_stlsort.py.

NaN keys make the reference's comparator an invalid ordering; they are outside the contract.
"""

from __future__ import annotations

import numpy as np

_THRESHOLD = 16  # libstdc++ _S_threshold


# ---- libstdc++ algorithms over a Python list of positions, comparing key[pos] with ">" ----
# Every function mirrors the libstdc++ routine of the same name (bits/stl_heap.h, stl_algo.h).

def _adjust_heap(a: list[int], key: list[float], first: int, hole: int, length: int,
                 value: int) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if key[a[first + child]] > key[a[first + child - 1]]:
            child -= 1
        a[first + hole] = a[first + child]
        hole = child
    if (length & 1) == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        a[first + hole] = a[first + child - 1]
        hole = child - 1
    # __push_heap
    parent = (hole - 1) // 2
    kv = key[value]
    while hole > top and key[a[first + parent]] > kv:
        a[first + hole] = a[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    a[first + hole] = value


def _make_heap(a: list[int], key: list[float], first: int, last: int) -> None:
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(a, key, first, parent, length, a[first + parent])
        if parent == 0:
            return
        parent -= 1


def _pop_heap(a: list[int], key: list[float], first: int, last: int, result: int) -> None:
    value = a[result]
    a[result] = a[first]
    _adjust_heap(a, key, first, 0, last - first, value)


def _partial_sort(a: list[int], key: list[float], first: int, middle: int, last: int) -> None:
    # __heap_select: only elements that beat the heap top can enter; the top never decreases,
    # so elements that do not beat the first top are skipped with numpy (same outcome).
    _make_heap(a, key, first, middle)
    if middle > first and last > middle:
        top0 = key[a[first]]
        tail = np.asarray([key[p] for p in a[middle:last]], dtype=np.float64)
        for off in np.flatnonzero(tail > top0).tolist():
            i = middle + off
            if key[a[i]] > key[a[first]]:
                _pop_heap(a, key, first, middle, i)
    # __sort_heap
    end = middle
    while end - first > 1:
        end -= 1
        _pop_heap(a, key, first, end, end)


def _unguarded_linear_insert(a: list[int], key: list[float], last: int) -> None:
    val = a[last]
    kv = key[val]
    nxt = last - 1
    while kv > key[a[nxt]]:
        a[last] = a[nxt]
        last = nxt
        nxt -= 1
    a[last] = val


def _insertion_sort(a: list[int], key: list[float], first: int, last: int) -> None:
    if first == last:
        return
    for i in range(first + 1, last):
        if key[a[i]] > key[a[first]]:
            val = a[i]
            a[first + 1:i + 1] = a[first:i]
            a[first] = val
        else:
            _unguarded_linear_insert(a, key, i)


def _final_insertion_sort(a: list[int], key: list[float], first: int, last: int) -> None:
    if last - first > _THRESHOLD:
        _insertion_sort(a, key, first, first + _THRESHOLD)
        for i in range(first + _THRESHOLD, last):
            _unguarded_linear_insert(a, key, i)
    else:
        _insertion_sort(a, key, first, last)


def _move_median_to_first(a: list[int], key: list[float], result: int, x: int, y: int,
                          z: int) -> None:
    kx, ky, kz = key[a[x]], key[a[y]], key[a[z]]
    if kx > ky:
        if ky > kz:
            pick = y
        elif kx > kz:
            pick = z
        else:
            pick = x
    elif kx > kz:
        pick = x
    elif ky > kz:
        pick = z
    else:
        pick = y
    a[result], a[pick] = a[pick], a[result]


def _unguarded_partition(a: list[int], key: list[float], first: int, last: int,
                         pivot: int) -> int:
    kp = key[a[pivot]]
    while True:
        while key[a[first]] > kp:
            first += 1
        last -= 1
        while kp > key[a[last]]:
            last -= 1
        if not first < last:
            return first
        a[first], a[last] = a[last], a[first]
        first += 1


def _introsort_loop(a: list[int], key: list[float], first: int, last: int, depth: int) -> None:
    while last - first > _THRESHOLD:
        if depth == 0:
            _partial_sort(a, key, first, last, last)
            return
        depth -= 1
        mid = first + (last - first) // 2
        _move_median_to_first(a, key, first, first + 1, mid, last - 1)
        cut = _unguarded_partition(a, key, first + 1, last, first)
        _introsort_loop(a, key, cut, last, depth)
        last = cut


def std_sort(key: list[float], order: list[int]) -> list[int]:
    """``std::sort(order, comp)`` with ``comp(a, b) = key[a] > key[b]`` (in place, returned)."""
    n = len(order)
    if n > 1:
        _introsort_loop(order, key, 0, n, 2 * (n.bit_length() - 1))
        _final_insertion_sort(order, key, 0, n)
    return order


def std_partial_sort(key: list[float], order: list[int], middle: int) -> list[int]:
    """``std::partial_sort(order, order + middle, order.end(), comp)``; in place, returned."""
    _partial_sort(order, key, 0, middle, len(order))
    return order


# ---- numpy entry points ---------------------------------------------------------------------

def _distinct(sorted_keys: np.ndarray) -> bool:
    """No two keys compare equal (and none is NaN, which compares unordered with all)."""
    if np.isnan(sorted_keys).any():
        return False
    return bool(sorted_keys.size < 2 or np.all(sorted_keys[1:] != sorted_keys[:-1]))


def compiled_sort(keys: np.ndarray, middle: int | None = None) -> np.ndarray:
    """``std::sort`` (or ``std::partial_sort`` up to ``middle``) of positions 0..n-1 by
    ``keys[pos] >``, run by libstdc++ itself (libpyggml_stl): the permutation ``std_sort`` /
    ``std_partial_sort`` replay."""
    from ._native import ffi, stl

    k = np.ascontiguousarray(keys, dtype=np.float64)
    order = np.arange(k.size, dtype=np.int64)
    kp, op = ffi.cast("const double *", k.ctypes.data), ffi.cast("int64_t *", order.ctypes.data)
    if middle is None:
        stl().pyggml_std_sort(kp, op, k.size)
    else:
        stl().pyggml_std_partial_sort(kp, op, k.size, middle)
    return order


def sort_desc(keys: np.ndarray) -> np.ndarray:
    """Permutation that ``std::sort`` with ``>`` on ``keys`` leaves (positions into keys)."""
    order = np.argsort(-keys, kind="stable")
    if _distinct(keys[order]):
        return order
    return compiled_sort(keys)


def partial_sort_desc(keys: np.ndarray, k: int) -> np.ndarray:
    """First ``k`` positions after ``std::partial_sort(first, first + k, last, >)``."""
    n = keys.size
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    k = min(k, n)
    if k < n:
        part = np.argpartition(keys, n - k)[n - k:]
        top = part[np.argsort(-keys[part], kind="stable")]
    else:
        top = np.argsort(-keys, kind="stable")
    kth = keys[top[-1]]
    # unique result: the chosen keys are distinct and no unchosen key equals the k-th
    if _distinct(keys[top]) and int(np.count_nonzero(keys == kth)) == 1:
        return top
    return compiled_sort(keys, k)[:k]


_NBUCKETS = 128
_SCALE = np.float32(_NBUCKETS / (10.0 - -10.0))   # bucket_scale = 6.4f
_INTER = np.float32(10.0) * _SCALE                # bucket_inter = -bucket_low * bucket_scale


def bucket_index(logits: np.ndarray) -> np.ndarray:
    """The bucket of each logit, as ``int(bucket_scale * val + bucket_inter)`` then clamped.

    Quirk kept: the float->int conversion of a value outside int's range (inf, NaN, |x| huge)
    yields INT_MIN on x86 (cvttss2si), so such logits, +inf included, land in bucket 0.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        f = _SCALE * logits.astype(np.float32) + _INTER  # float32 math, no FMA (-O3, no -march)
        ok = np.isfinite(f) & (f < np.float32(2.0**31)) & (f >= np.float32(-(2.0**31)))
        ib = np.where(ok, np.trunc(np.where(ok, f, 0)), -(2.0**31))
    return np.clip(ib, 0, _NBUCKETS - 1).astype(np.int64)


def replay_bucket_sort(logits: np.ndarray, npartial: int) -> np.ndarray:
    """First ``npartial`` positions of ``llama_token_data_array_partial_sort``'s result.

    llama.cpp: src/llama-sampler.cpp llama_token_data_array_partial_sort — a 128-bucket
    histogram over [-10, 10), buckets copied out top-down in original order, every bucket above
    the threshold bucket ``std::sort``-ed, the threshold bucket ``std::partial_sort``-ed.
    This is the readable version (the specification); the samplers run ``bucket_partial_sort``.
    """
    b = bucket_index(logits)
    histo = np.bincount(b, minlength=_NBUCKETS)
    csum = np.cumsum(histo[::-1])                       # counts of buckets 127, 126, ...
    ib = _NBUCKETS - 1 - int(np.searchsorted(csum, npartial, side="left"))
    ib = max(ib, 0)
    out: list[np.ndarray] = []
    ndone = 0
    sel = np.flatnonzero(b >= ib)
    # group by bucket, descending, stable within a bucket (the copy keeps original order)
    sel = sel[np.argsort(-b[sel], kind="stable")]
    starts = np.concatenate(([0], np.cumsum(histo[::-1][: _NBUCKETS - ib])))
    for j in range(_NBUCKETS - 1, ib - 1, -1):
        lo, hi = starts[_NBUCKETS - 1 - j], starts[_NBUCKETS - j]
        if hi == lo:
            continue
        members = sel[lo:hi]
        if j > ib:
            out.append(members[sort_desc(logits[members])])
            ndone += hi - lo
        else:
            out.append(members[partial_sort_desc(logits[members], npartial - ndone)])
    return np.concatenate(out)[:npartial] if out else np.empty(0, dtype=np.int64)


def bucket_partial_sort(logits: np.ndarray, npartial: int) -> np.ndarray:
    """``replay_bucket_sort`` run by libpyggml_stl (the buckets from ``bucket_index``, the
    per-bucket sorts by libstdc++)."""
    from ._native import ffi, stl

    k = np.ascontiguousarray(logits, dtype=np.float64)
    b = np.ascontiguousarray(bucket_index(logits), dtype=np.int32)
    out = np.empty(min(npartial, k.size), dtype=np.int64)
    stl().pyggml_bucket_sort(ffi.cast("const double *", k.ctypes.data),
                             ffi.cast("const int32_t *", b.ctypes.data), k.size, _NBUCKETS, out.size,
                             ffi.cast("int64_t *", out.ctypes.data))
    return out


def partial_sort_inplace(logits: np.ndarray, npartial: int) -> np.ndarray:
    """Positions kept by ``llama_token_data_array_partial_sort_inplace`` (in output order).

    llama.cpp: src/llama-sampler.cpp llama_token_data_array_partial_sort_inplace —
    ``std::partial_sort`` over the whole array for npartial <= 128, else the bucket sort.
    """
    if npartial <= 128:
        return partial_sort_desc(logits, npartial)
    return bucket_partial_sort(logits, npartial)
