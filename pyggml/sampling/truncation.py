"""Samplers that cut the candidate list: top-k, top-p, min-p, typical, top-n-sigma, xtc.

llama.cpp: src/llama-sampler.cpp llama_sampler_{top_k,top_p,min_p,typical,top_n_sigma,xtc}_*.
"""

from __future__ import annotations

import math

import numpy as np

from .._stlsort import bucket_partial_sort, partial_sort_inplace, sort_desc
from . import _fmath as fm
from ._rng import Mt19937, rng_seed, uniform_float
from .base import BaseSampler, softmax_impl, top_k_impl
from .candidates import Candidates

f32 = np.float32


def _first(mask: np.ndarray) -> int:
    """Index of the first True, or -1."""
    return int(np.argmax(mask)) if mask.size and mask.any() else -1


class TopK(BaseSampler):
    name = "top-k"

    def __init__(self, k: int) -> None:
        self.k = int(k)

    def apply(self, cur: Candidates) -> None:
        top_k_impl(cur, self.k)


class TopP(BaseSampler):
    """llama_sampler_top_p_apply: softmax without sorting; for > 1024 unsorted candidates a
    bucket sort of the top 256 first, and a full one only if the mass is not reached there."""

    name = "top-p"

    def __init__(self, p: float, min_keep: int) -> None:
        self.p, self.min_keep = f32(p), int(min_keep)

    def _cut(self, p_sorted: np.ndarray) -> int:
        """First i with float running sum >= p and i + 1 >= min_keep, as a count; -1 if none."""
        cum = np.cumsum(p_sorted, dtype=np.float32)
        ok = (cum >= self.p) & (np.arange(1, cum.size + 1) >= self.min_keep)
        i = _first(ok)
        return i + 1 if i >= 0 else -1

    def apply(self, cur: Candidates) -> None:
        if self.p >= 1:
            return
        softmax_impl(cur, False)
        if cur.sorted:
            last = self._cut(cur.p)
            cur.truncate(cur.size if last < 0 else last)
            return
        if cur.size > 1024:
            order = bucket_partial_sort(cur.logits, 256)
            last = self._cut(cur.p[order])
            if last < 0:
                order = bucket_partial_sort(cur.logits, cur.size)
                last = self._cut(cur.p[order])
        else:
            order = partial_sort_inplace(cur.logits, cur.size)
            last = self._cut(cur.p[order])
        if last < 0:
            last = cur.size
        cur.take(order[:last])
        cur.sorted = True


class MinP(BaseSampler):
    """llama_sampler_min_p_apply: unsorted, keep ``logit >= max + logf(p)`` in original order
    (when that keeps at least min_keep); otherwise sort and cut."""

    name = "min-p"

    def __init__(self, p: float, min_keep: int) -> None:
        self.p, self.min_keep = f32(p), int(min_keep)

    def apply(self, cur: Candidates) -> None:
        if self.p <= 0 or cur.size == 0:
            return
        log_p = fm.c_logf(self.p)
        if not cur.sorted:
            max_logit = max(f32(-np.finfo(np.float32).max), cur.logits.max())
            keep = np.flatnonzero(cur.logits >= f32(max_logit + log_p))
            if keep.size and keep.size >= self.min_keep:
                cur.take(keep)
                return
            cur.take(partial_sort_inplace(cur.logits, cur.size))
            cur.sorted = True
        min_logit = f32(cur.logits[0] + log_p)
        stop = (cur.logits < min_logit) & (np.arange(cur.size) >= self.min_keep)
        stop[:1] = False  # the first token always stays
        i = _first(stop)
        cur.truncate(cur.size if i < 0 else i)


class Typical(BaseSampler):
    """Locally typical sampling (llama_sampler_typical_apply)."""

    name = "typical"

    def __init__(self, p: float, min_keep: int) -> None:
        self.p, self.min_keep = f32(p), int(min_keep)

    def apply(self, cur: Candidates) -> None:
        if self.p >= 1:
            return
        softmax_impl(cur, True)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            logp = fm.logf(cur.p)
            entropy = fm.seq_sum_f32(-cur.p * logp)
            shifted = np.abs(-logp - entropy)
        # std::sort of indices by shifted score ascending == descending on the negation
        idx = sort_desc(-shifted)
        cum = np.cumsum(cur.p[idx], dtype=np.float32)
        n = idx.size
        ok = cum > self.p
        if self.min_keep != 0:
            ok &= np.arange(n) >= self.min_keep - 1
        i = _first(ok)
        last = n if i < 0 else i + 1
        cur.take(idx[:last])
        cur.sorted = False


class TopNSigma(BaseSampler):
    """llama_sampler_top_n_sigma_apply: mask logits below ``max - n * std`` (-inf ignored)."""

    name = "top-n-sigma"

    def __init__(self, n: float) -> None:
        self.n = f32(n)

    def apply(self, cur: Candidates) -> None:
        if self.n <= 0 or cur.size <= 1:
            return
        lg = cur.logits
        valid = lg != -np.inf
        vals = lg[valid]
        mx = max(lg[0], vals.max()) if vals.size else lg[0]
        count = int(vals.size)
        mean = f32(fm.seq_sum_f32(vals) / f32(count)) if count else f32(0)
        # acc is a float, but each term is pow(double, 2) added in double and stored back to
        # float: one rounding to double and one to float per step, so no numpy accumulate
        # reproduces it; the loop runs only while this (off by default) sampler is enabled
        sq = ((vals - mean).astype(np.float64)) ** 2
        acc = np.float32(0)
        with np.errstate(over="ignore"):
            for v in sq.tolist():
                acc = np.float32(float(acc) + v)
        std = f32(math.sqrt(float(acc / f32(count)))) if count else f32(0)
        with np.errstate(invalid="ignore", over="ignore"):
            cut = f32(mx - f32(self.n * std))
        out = lg.copy()
        out[lg < cut] = -np.inf
        cur.logits = out


class Xtc(BaseSampler):
    """Exclude Top Choices (llama_sample_xtc_apply): one float draw per call; when it falls
    under ``probability``, drop the leading tokens above ``threshold`` but the last of them."""

    name = "xtc"

    def __init__(self, p: float, t: float, min_keep: int, seed: int) -> None:
        self.probability, self.threshold, self.min_keep = f32(p), f32(t), int(min_keep)
        self.seed = seed & 0xFFFFFFFF
        self.seed_cur = rng_seed(self.seed)
        self.rng = Mt19937(self.seed_cur)

    def apply(self, cur: Candidates) -> None:
        if self.probability <= 0 or self.threshold > f32(0.5) or cur.size < 2:
            return
        if uniform_float(self.rng) > self.probability:
            return
        softmax_impl(cur, True)
        below = _first(cur.p < self.threshold)
        pos_last = (cur.size - 1) if below < 0 else max(below - 1, 0)
        if cur.size - pos_last >= self.min_keep and pos_last > 0:
            cur.advance(pos_last)

    def reset(self) -> None:
        self.seed_cur = rng_seed(self.seed)
        self.rng.seed(self.seed_cur)

    def clone(self) -> Xtc:
        other = Xtc(float(self.probability), float(self.threshold), self.min_keep, self.seed)
        other.rng = self.rng.copy()
        return other
