"""Temperature samplers: temp and temp-ext (dynamic temperature from the entropy).

llama.cpp: src/llama-sampler.cpp llama_sampler_temp_apply, llama_sampler_temp_ext_apply.
"""

from __future__ import annotations

import numpy as np

from . import _fmath as fm
from .base import BaseSampler, softmax_impl, temp_impl
from .candidates import Candidates

f32 = np.float32


class Temp(BaseSampler):
    name = "temp"

    def __init__(self, t: float) -> None:
        self.temp = f32(t)

    def apply(self, cur: Candidates) -> None:
        temp_impl(cur, self.temp)


class TempExt(BaseSampler):
    """Dynamic temperature: the normalized entropy maps to [temp - delta, temp + delta] through
    ``powf(entropy, exponent)``; the probabilities are then recomputed in double."""

    name = "temp-ext"

    def __init__(self, t: float, delta: float, exponent: float) -> None:
        self.temp, self.delta, self.exponent = f32(t), f32(delta), f32(exponent)

    def apply(self, cur: Candidates) -> None:
        if not self.delta > 0:
            temp_impl(cur, self.temp)
            return
        min_temp = max(f32(0.0), f32(self.temp - self.delta))
        max_temp = f32(self.temp + self.delta)
        if cur.size <= 1:
            return
        max_entropy = -fm.c_logf(f32(f32(1.0) / f32(cur.size)))
        softmax_impl(cur, True)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            pos = cur.p[cur.p > 0]
            # entropy -= prob * logf(prob) in order: rounding commutes with negation, so this
            # is the negated float running sum
            entropy = f32(0) - fm.seq_sum_f32(pos * fm.logf(pos))
            norm = f32(entropy / max_entropy)
            dyn = f32(min_temp + f32(f32(max_temp - min_temp) * fm.c_powf(norm, self.exponent)))
        temp_impl(cur, dyn)
        # re-softmax in double: p = exp(l - max) stored as float, summed as double
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            e = np.exp(cur.logits.astype(np.float64) - float(cur.logits[0]))
            total = float(np.cumsum(e)[-1])
            cur.p = (e.astype(np.float32).astype(np.float64) / total).astype(np.float32)
