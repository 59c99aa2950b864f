"""``std::mt19937`` and the libstdc++ distributions the samplers draw through, bit for bit.

The generator is numpy's MT19937 (the same twist and tempering as ``std::mt19937``) with its
state set from ``init_genrand(seed)``, the seeding ``std::mt19937(seed)`` uses; Python's
``random`` and numpy's ``SeedSequence`` seed differently and are not used.
"""

from __future__ import annotations

import functools
import math
import os
import time

import numpy as np

DEFAULT_SEED = 0xFFFFFFFF  # LLAMA_DEFAULT_SEED: ask for a non-reproducible seed
_TWO32 = 4294967296.0
_TWO64 = 18446744073709551616.0
_ONE_BELOW_F32 = np.nextafter(np.float32(1.0), np.float32(0.0))


@functools.lru_cache(maxsize=64)
def _genrand_key(seed: int) -> tuple[int, ...]:
    # init_genrand: mt[i] = 1812433253 * (mt[i-1] ^ (mt[i-1] >> 30)) + i  (mod 2^32)
    x = seed & 0xFFFFFFFF
    key = [x]
    for i in range(1, 624):
        x = (1812433253 * (x ^ (x >> 30)) + i) & 0xFFFFFFFF
        key.append(x)
    return tuple(key)


def rng_seed(seed: int) -> int:
    """llama.cpp: src/llama-sampler.cpp get_rng_seed — LLAMA_DEFAULT_SEED picks a fresh seed
    (the reference asks std::random_device; we ask the OS), any other value is used as is."""
    if seed == DEFAULT_SEED:
        return int.from_bytes(os.urandom(4), "little") ^ (time.time_ns() & 0xFFFFFFFF)
    return seed & 0xFFFFFFFF


class Mt19937:
    """``std::mt19937`` seeded like ``std::mt19937(seed)``; ``next_u32`` is one ``operator()``."""

    __slots__ = ("_bg",)

    def __init__(self, seed: int = 5489) -> None:
        self._bg = np.random.MT19937()
        self.seed(seed)

    def seed(self, seed: int) -> None:
        key = np.asarray(_genrand_key(seed & 0xFFFFFFFF), dtype=np.uint32)
        # pos = 624: the first draw twists the whole state, as std::mt19937 does
        self._bg.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": 624}}

    def next_u32(self) -> int:
        return int(self._bg.random_raw())

    def copy(self) -> Mt19937:
        other = Mt19937.__new__(Mt19937)
        other._bg = np.random.MT19937()
        other._bg.state = self._bg.state
        return other

    def state(self) -> tuple[tuple[int, ...], int]:
        st = self._bg.state["state"]
        return tuple(int(v) for v in st["key"]), int(st["pos"])


def uniform_double(rng: Mt19937) -> float:
    """``std::uniform_real_distribution<double>(0, 1)(rng)`` in libstdc++: generate_canonical
    with two 32-bit draws, low word first, ``(g1 + g2 * 2^32) / 2^64`` rounded in double, and
    the largest double below 1 if that rounds up to 1."""
    g1 = rng.next_u32()
    g2 = rng.next_u32()
    u = (float(g1) + float(g2) * _TWO32) / _TWO64
    return math.nextafter(1.0, 0.0) if u >= 1.0 else u


def uniform_float(rng: Mt19937) -> np.float32:
    """``std::uniform_real_distribution<float>(0, 1)(rng)``: one draw, ``float(g) / 2^32`` in
    float (the conversion rounds to nearest), clamped below 1."""
    u = np.float32(rng.next_u32()) / np.float32(_TWO32)
    return _ONE_BELOW_F32 if u >= np.float32(1.0) else np.float32(u)


def discrete(rng: Mt19937, probs: np.ndarray) -> int:
    """``std::discrete_distribution<int>(probs)(rng)`` in libstdc++.

    Fewer than two weights: the distribution is empty and returns 0 without drawing.
    Otherwise the weights (as double) are divided by their sequential sum, the partial sums
    taken with the last one forced to 1, and the first partial sum >= u is the pick.
    """
    n = int(probs.size)
    if n < 2:
        return 0
    w = probs.astype(np.float64)
    total = float(np.cumsum(w)[-1])  # std::accumulate: a sequential sum
    cp = np.cumsum(w / total)
    cp[-1] = 1.0
    u = uniform_double(rng)
    return int(np.searchsorted(cp, u, side="left"))
