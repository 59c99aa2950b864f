"""Bench: one sampled token per call, pyggml vs the reference, on the same logits.

Both sides start from a row of float logits (what a decoder hands over): the reference side
includes filling its ``llama_token_data`` array (as ``llama_sampler_sample`` does), ours builds
``Candidates``.  Each call samples one token and accepts it, so history-dependent samplers carry
state as in generation.  Model-like logits: a broad bulk and a few strong candidates.
"""

from __future__ import annotations

import numpy as np

from .. import sampling as S
from . import Pair


def _logits(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lg = rng.normal(-2.0, 2.5, n).astype(np.float32)
    lg[rng.integers(0, n, 20)] += 12.0
    return lg


def _pair(n: int, ours_chain, ref_chain) -> Pair:
    lg = _logits(n)
    ours = S.Sampler.chain(ours_chain)

    def run_ours() -> int:
        return ours.sample(lg)

    def run_ref() -> int:
        return ref_chain.sample_logits(lg)

    return Pair(ours=run_ours, reference=run_ref, note=f"n_vocab={n}")


def _default(n: int):
    def make() -> Pair:
        from ..reference import sampling as R

        p = S.SamplingParams(seed=42)
        ours = S.default_chain(n, p, dry_breaker_tokens=[[1], [2]])
        ref = R.chain([R.penalties(n, 64, 1.0, 0.0, 0.0), R.dry_tokens(0.0, 1.75, 2, 64, []),
                       R.top_n_sigma(-1.0), R.top_k(40), R.typical(1.0, 0), R.top_p(0.95, 0),
                       R.min_p(0.05, 0), R.xtc(0.0, 0.1, 0, 42), R.temp_ext(0.8, 0.0, 1.0),
                       R.dist(42)])
        return _pair(n, ours.samplers, ref)
    return make


def _simple(n: int, ours_fn, ref_fn):
    def make() -> Pair:
        from ..reference import sampling as R

        return _pair(n, ours_fn(), R.chain(ref_fn(R)))
    return make


CASES = {
    "sampling/default_chain_49152": _default(49152),
    "sampling/default_chain_151936": _default(151936),
    "sampling/greedy_151936": _simple(151936, lambda: [S.init_greedy()],
                                      lambda R: [R.greedy()]),
    "sampling/dist_151936": _simple(151936, lambda: [S.init_dist(1)], lambda R: [R.dist(1)]),
    "sampling/top_k40_dist_151936": _simple(
        151936, lambda: [S.init_top_k(40), S.init_dist(1)],
        lambda R: [R.top_k(40), R.dist(1)]),
    "sampling/penalties64_dist_151936": _simple(
        151936, lambda: [S.init_penalties(151936, 64, 1.1, 0.1, 0.1), S.init_top_k(40),
                         S.init_dist(1)],
        lambda R: [R.penalties(151936, 64, 1.1, 0.1, 0.1), R.top_k(40), R.dist(1)]),
}
