"""The iteration order of a token's sequence ids in the reference.

llama.cpp: src/llama-batch.h llama_batch_ext::token keeps a token's sequence ids in a
``std::unordered_set<llama_seq_id>``, and llama_batch_allocr::init copies them out in the set's
iteration order.  That order decides the token's *primary* sequence (``seq_id[i][0]``: the KQ
mask row, sequential split_equal, the coupling records) and the order of ``seq_id[i]`` in every
ubatch, so pyggml reproduces it instead of sorting.

The order is libstdc++'s (``_Hashtable`` with ``_Prime_rehash_policy``; the hash of an int is the
int itself, cast to size_t):

* the first insertion allocates 13 buckets (11 elements requested, next prime from the small table);
* inserting into a non-empty bucket puts the node right after the bucket's "before" node, i.e.
  first among that bucket's nodes; inserting into an empty bucket puts it at the front of the
  whole list;
* when the element count would exceed the bucket count, the table grows to the next prime
  >= max(count + 1, 2 * buckets) (29, 59, 127, 257, ...) and relinks the list in order,
  each node going to the front of the list when its new bucket is empty, else first among the
  nodes of its bucket.

Only single-sequence tokens are common, and their order is trivial (``order`` short-cuts it).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

# libstdc++ src/shared/hashtable-aux.cc __prime_list (the part reachable with <= 2**31 ids)
_PRIMES = (
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    103, 109, 113, 127, 137, 139, 149, 157, 167, 179, 193, 199, 211, 227, 241, 257, 277, 293, 313,
    337, 359, 383, 409, 439, 467, 503, 541, 577, 619, 661, 709, 761, 823, 887, 953, 1031, 1109, 1193,
    1289, 1381, 1493, 1613, 1741, 1879, 2029, 2179, 2357, 2549, 2753, 2971, 3209, 3469, 3739, 4027,
    4349, 4703, 5087, 5503, 5953, 6427, 6949, 7517, 8123, 8783, 9497, 10273, 11113, 12011, 12983,
    14033, 15173, 16411, 17749, 19183, 20753, 22447, 24281, 26267, 28411, 30727, 33223, 35933,
    38873, 42043, 45481, 49201, 53201, 57557, 62233, 67307, 72817, 78779, 85229, 92203, 99733,
    107897, 116731, 126271, 136607, 147793, 159871, 172933, 187091, 202409, 218971, 236897,
    256279, 277261, 299951, 324503, 351061, 379787, 410857, 444487, 480881, 520241, 562841,
    608903, 658753, 712697, 771049, 834181, 902483, 976369, 1056323, 1142821, 1236397, 1337629,
    1447153, 1565659, 1693859, 1832561, 1982627, 2144977, 2320627, 2510653, 2716249, 2938679,
    3179303, 3439651, 3721303, 4026031, 4355707, 4712381, 5098259, 5515729, 5967347, 6456007,
    6984629, 7556579, 8175383, 8844859, 9569143, 10352717, 11200489, 12117689, 13109983,
    14183539, 15345007, 16601593, 17961079, 19431899, 21023161, 22744717, 24607243, 26622317,
    28802401, 31160981, 33712729, 36473443, 39460231, 42691603, 46187573, 49969847, 54061849,
    58488943, 63278561, 68460391, 74066549, 80131819, 86693767, 93793069, 101473717, 109783337,
    118773397, 128499677, 139022417, 150406843, 162723577, 176048909, 190465427, 206062531,
    222936881, 241193053, 260944219, 282312799, 305431229, 330442829, 357502601, 386778277,
    418451333, 452718089, 489790921, 529899637, 573292817, 620239453, 671030513, 725980837,
    785430967, 849749479, 919334987, 994618837, 1076067617, 1164186217, 1259520799, 1362662261,
    1474249943, 1594975441, 1725587117, 1866894511, 2019773507, 2185171673, 2362686121,
)
_FAST_BKT = (2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13)
_SIZE_T = (1 << 64) - 1


def _next_bkt(n: int) -> int:
    # libstdc++ _Prime_rehash_policy::_M_next_bkt (max_load_factor 1.0)
    if n < len(_FAST_BKT):
        return _FAST_BKT[n]
    return _PRIMES[max(6, bisect_left(_PRIMES, n, 6))]


def order(seq_ids: Iterable[int]) -> tuple[int, ...]:
    """The iteration order of an ``unordered_set<int>`` after inserting ``seq_ids`` in order
    (duplicates ignored)."""
    ids = tuple(seq_ids)
    if len(ids) <= 1:
        return ids
    seen: list[int] = []  # the list, front first
    n_bkt = 1
    next_resize = 0
    for v in ids:
        if v in seen:
            continue
        n_elt = len(seen)
        if n_elt + 1 > next_resize:
            # _M_need_rehash: the first insertion asks for room for 11 elements
            min_bkts = max(n_elt + 1, 0 if next_resize else 11)
            if min_bkts >= n_bkt:
                n_bkt = _next_bkt(max(min_bkts + 1, n_bkt * 2))
                next_resize = n_bkt
                seen = _relink(seen, n_bkt)
            else:
                next_resize = n_bkt
        seen = _insert(seen, v, n_bkt)
    return tuple(seen)


def _bucket(v: int, n_bkt: int) -> int:
    return (v & _SIZE_T) % n_bkt


def _insert(lst: list[int], v: int, n_bkt: int) -> list[int]:
    b = _bucket(v, n_bkt)
    # nodes of one bucket are contiguous in the list: the new node goes before the first of them
    for k, x in enumerate(lst):
        if _bucket(x, n_bkt) == b:
            return lst[:k] + [v] + lst[k:]
    return [v] + lst


def _relink(lst: list[int], n_bkt: int) -> list[int]:
    # _Hashtable::_M_rehash_aux (unique keys): walk the old list in order
    out: list[int] = []
    for v in lst:
        b = _bucket(v, n_bkt)
        for k, x in enumerate(out):
            if _bucket(x, n_bkt) == b:
                out.insert(k, v)  # after the bucket's "before" node: first of its bucket
                break
        else:
            out.insert(0, v)
    return out
