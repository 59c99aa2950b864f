"""Samplers that select a token: greedy, dist, mirostat v1/v2, adaptive-p.

llama.cpp: src/llama-sampler.cpp llama_sampler_{greedy,dist,mirostat,mirostat_v2,adaptive_p}_*.
"""

from __future__ import annotations

import numpy as np

from ..errors import SamplerError
from . import _fmath as fm
from ._rng import Mt19937, discrete, rng_seed, uniform_double
from .base import BaseSampler, softmax_impl, top_k_impl
from .candidates import Candidates

f32 = np.float32


class Greedy(BaseSampler):
    name = "greedy"

    def apply(self, cur: Candidates) -> None:
        # first strict maximum; selected stays 0 on an empty array, as in the reference
        cur.selected = int(np.argmax(cur.logits)) if cur.size else 0


class _Seeded(BaseSampler):
    """A sampler holding ``seed`` (as given), ``seed_cur`` (as used) and its mt19937."""

    def __init__(self, seed: int) -> None:
        self.seed = seed & 0xFFFFFFFF
        self.seed_cur = rng_seed(self.seed)
        self.rng = Mt19937(self.seed_cur)

    def _reseed(self) -> None:
        self.seed_cur = rng_seed(self.seed)
        self.rng.seed(self.seed_cur)

    def reset(self) -> None:
        self._reseed()

    def clone(self):
        other = super().clone()
        other.rng = self.rng.copy()
        return other


class Dist(_Seeded):
    """llama_sampler_dist_apply: float ``expf(l - max)``, double running sum, one double
    uniform ``u``; the pick is the first index whose running sum reaches ``sum * u``; the
    probabilities are divided by the double sum and stored as float."""

    name = "dist"

    def apply(self, cur: Candidates) -> None:
        if cur.size == 0:
            cur.selected = -1
            return
        cur.selected = 0
        if cur.size == 1:
            uniform_double(self.rng)  # the draw happens even though it cannot matter
            cur.p = cur.p.copy()
            cur.p[0] = f32(1.0)
            return
        max_l = cur.logits[0] if cur.sorted else cur.logits.max()
        with np.errstate(invalid="ignore", over="ignore"):
            p = fm.expf(cur.logits - max_l)
        run = np.cumsum(p, dtype=np.float64)  # the same sequential double sums
        total = float(run[-1])
        rnd = uniform_double(self.rng)
        hit = np.flatnonzero(run >= total * rnd)
        # not found cannot happen with finite sums; the reference then takes the last one
        cur.selected = int(hit[0]) if hit.size else cur.size - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            cur.p = (p.astype(np.float64) / total).astype(np.float32)


def sample_dist(cur: Candidates, rng: Mt19937) -> int:
    """llama_sample_dist: std::discrete_distribution over the p column."""
    return discrete(rng, cur.p)


class _Mirostat(_Seeded):
    """What both Mirostat versions share: mu starts at 2 * tau; after truncating, a softmax, a
    discrete draw, and mu -= eta * (surprise - tau) with surprise = -log2f(p)."""

    tau: np.float32
    eta: np.float32
    mu: np.float32

    def _select(self, cur: Candidates) -> None:
        softmax_impl(cur, True)
        idx = sample_dist(cur, self.rng)
        cur.selected = idx
        observed = -fm.c_log2f(cur.p[idx])
        self.mu = f32(self.mu - f32(self.eta * f32(observed - self.tau)))

    def reset(self) -> None:
        self.mu = f32(2.0) * self.tau
        self._reseed()


class Mirostat(_Mirostat):
    """Mirostat 1.0 (llama_sampler_mirostat_apply)."""

    name = "mirostat"

    def __init__(self, n_vocab: int, seed: int, tau: float, eta: float, m: int) -> None:
        super().__init__(seed)
        self.n_vocab, self.tau, self.eta, self.m = int(n_vocab), f32(tau), f32(eta), int(m)
        self.mu = f32(2.0) * self.tau

    def apply(self, cur: Candidates) -> None:
        softmax_impl(cur, True)
        # s_hat from the top m probabilities, in float, sums in index order
        # size_t(m - 1): m < 1 wraps around, so the loop runs over the whole array
        n = cur.size - 1 if self.m < 1 else min(self.m - 1, cur.size - 1)
        i = np.arange(n, dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t = fm.logf((i + f32(2)) / (i + f32(1)))
            b = fm.logf(cur.p[:n] / cur.p[1:n + 1])
            sum_tb = fm.seq_sum_f32(t * b)
            sum_tt = fm.seq_sum_f32(t * t)
            s_hat = f32(sum_tb / sum_tt)
            eps = s_hat - f32(1)
            k = fm.c_powf((eps * fm.c_powf(2.0, self.mu))
                          / (f32(1) - fm.c_powf(f32(self.n_vocab), -eps)), f32(1) / s_hat)
        top_k_impl(cur, max(fm.c_int(k), 1))
        self._select(cur)


class MirostatV2(_Mirostat):
    """Mirostat 2.0 (llama_sampler_mirostat_v2_apply)."""

    name = "mirostat-v2"

    def __init__(self, seed: int, tau: float, eta: float) -> None:
        super().__init__(seed)
        self.tau, self.eta = f32(tau), f32(eta)
        self.mu = f32(2.0) * self.tau

    def apply(self, cur: Candidates) -> None:
        softmax_impl(cur, True)
        # find_if(-log2f(p) > mu): approximate in double, ask glibc where it could differ
        with np.errstate(divide="ignore"):
            approx = -np.log2(cur.p.astype(np.float64))
        mu = float(self.mu)
        near = np.abs(approx - mu) <= 4.0 * np.spacing(np.abs(approx).astype(np.float32)) + 1e-30
        sure = (approx > mu) & ~near
        stop = int(np.argmax(sure)) if sure.any() else cur.size
        cut = stop
        for j in np.flatnonzero(near[:stop]).tolist():
            if -fm.c_log2f(cur.p[j]) > self.mu:
                cut = j
                break
        cur.truncate(max(cut, 1))
        self._select(cur)


_WIDTH = f32(0.3)
_PEAK = f32(5.0)
_SHARP = f32(10.0)
_INV_WIDTH = f32(1.0) / _WIDTH


class AdaptiveP(_Seeded):
    """adaptive-p (llama_sampler_adaptive_p_*): an EMA of the original probability of the
    accepted tokens steers a target; logits are remapped around it and a token is drawn."""

    name = "adaptive-p"

    def __init__(self, target: float, decay: float, seed: int) -> None:
        super().__init__(seed)
        self.target = f32(target)
        self.decay = f32(min(max(f32(decay), f32(0.0)), f32(0.99)))
        self._init_ema()
        self.original_probs = np.zeros(0, np.float32)

    def _init_ema(self) -> None:
        self.weighted_sum = f32(self.target / f32(f32(1) - self.decay))
        self.total_weight = f32(f32(1) / f32(f32(1) - self.decay))
        self.pending_id = -1
        self.pending_idx = -1

    def apply(self, cur: Candidates) -> None:
        softmax_impl(cur, False)
        if self.target < 0:
            cur.selected = sample_dist(cur, self.rng)
            return
        self.original_probs = cur.p.copy()
        target = min(max(self.target, f32(0)), f32(1))
        if self.total_weight == 0:
            adapted = target
        else:
            adapted = f32(f32(2) * target - f32(self.weighted_sum / self.total_weight))
        adapted = min(max(adapted, f32(0)), f32(1))
        lg = cur.logits.copy()
        live = lg != -np.inf
        d = np.abs((cur.p - adapted) * _INV_WIDTH)
        with np.errstate(invalid="ignore", over="ignore"):
            new = _PEAK - (_SHARP * d * d) / (f32(1) + d)
        lg[live] = new[live]
        cur.logits = lg
        softmax_impl(cur, False)
        idx = sample_dist(cur, self.rng)
        cur.selected = idx
        self.pending_id = int(cur.ids[idx])
        self.pending_idx = idx

    def accept(self, token: int) -> None:
        if self.pending_id == token and self.pending_idx >= 0:
            if self.pending_idx >= self.original_probs.size:
                # a clone taken between apply and accept: the reference's clone drops the
                # cached probabilities and then reads past them (undefined behaviour)
                raise SamplerError("adaptive-p: accept() on a clone made after apply(); "
                                 "the original probabilities were not cloned")
            orig = self.original_probs[self.pending_idx]
            self.weighted_sum = f32(orig + f32(self.decay * self.weighted_sum))
            self.total_weight = f32(f32(1) + f32(self.decay * self.total_weight))
        self.pending_id = -1
        self.pending_idx = -1

    def reset(self) -> None:
        self._init_ema()
        self._reseed()

    def clone(self) -> AdaptiveP:
        # quirk kept: the reference's clone copies the EMA but not the RNG state
        other = AdaptiveP(float(self.target), float(self.decay), self.seed)
        other.weighted_sum, other.total_weight = self.weighted_sum, self.total_weight
        other.pending_id, other.pending_idx = self.pending_id, self.pending_idx
        return other
