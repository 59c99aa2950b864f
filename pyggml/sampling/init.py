"""Constructors with the reference's names and its disabled-configuration rules.

Each ``init_*`` mirrors ``llama_sampler_init_*`` (include/llama.h): where the reference returns
its empty sampler (named ``?top-k``, ``?temp`` ...), so do these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._rng import DEFAULT_SEED
from .base import Chain, Empty
from .infill import Infill, InfillVocab
from .penalties import BreakerVocab, Dry, LogitBias, Penalties, breaker_sequences
from .selection import AdaptiveP, Dist, Greedy, Mirostat, MirostatV2
from .temperature import Temp, TempExt
from .truncation import MinP, TopK, TopNSigma, TopP, Typical, Xtc

f32 = np.float32


def init_greedy() -> Greedy:
    return Greedy()


def init_dist(seed: int = DEFAULT_SEED) -> Dist:
    return Dist(seed)


def init_top_k(k: int) -> TopK | Empty:
    return Empty("?top-k") if k <= 0 else TopK(k)


def init_top_p(p: float, min_keep: int = 1) -> TopP | Empty:
    return Empty("?top-p") if f32(p) >= 1 else TopP(p, min_keep)


def init_min_p(p: float, min_keep: int = 1) -> MinP | Empty:
    return Empty("?min-p") if f32(p) <= 0 else MinP(p, min_keep)


def init_typical(p: float, min_keep: int = 1) -> Typical | Empty:
    return Empty("?typical") if f32(p) >= 1 else Typical(p, min_keep)


def init_temp(t: float) -> Temp | Empty:
    return Empty("?temp") if f32(t) == 1 else Temp(t)


def init_temp_ext(t: float, delta: float, exponent: float) -> TempExt | Empty:
    if f32(t) == 1 and f32(delta) <= 0:
        return Empty("?temp-ext")
    return TempExt(t, delta, exponent)


def init_xtc(p: float, t: float, min_keep: int, seed: int = DEFAULT_SEED) -> Xtc | Empty:
    if f32(p) <= 0 or f32(t) > f32(0.5):
        return Empty("?xtc")
    return Xtc(p, t, min_keep, seed)


def init_top_n_sigma(n: float) -> TopNSigma | Empty:
    return Empty("?top-n-sigma") if f32(n) <= 0 else TopNSigma(n)


def init_mirostat(n_vocab: int, seed: int, tau: float, eta: float, m: int) -> Mirostat:
    return Mirostat(n_vocab, seed, tau, eta, m)


def init_mirostat_v2(seed: int, tau: float, eta: float) -> MirostatV2:
    return MirostatV2(seed, tau, eta)


def init_penalties(n_vocab: int, last_n: int, repeat: float, freq: float,
                   present: float) -> Penalties | Empty:
    if Penalties.disabled(max(last_n, 0), repeat, freq, present):
        return Empty("?penalties")
    return Penalties(n_vocab, last_n, repeat, freq, present)


def _dry_enabled(multiplier: float, base: float, last_n: int) -> bool:
    return f32(multiplier) != 0 and f32(base) >= 1 and max(last_n, 0) != 0


def init_dry(vocab: BreakerVocab | None, multiplier: float, base: float, allowed_length: int,
             last_n: int, breakers: Sequence[str | bytes] = ()) -> Dry | Empty:
    """``llama_sampler_init_dry``: breaker strings are tokenized through ``vocab``."""
    if not _dry_enabled(multiplier, base, last_n):
        return Empty("?dry")
    pairs = breaker_sequences(vocab, breakers) if (vocab is not None and breakers) else []
    return Dry(multiplier, base, allowed_length, last_n, pairs)


def init_dry_tokens(multiplier: float, base: float, allowed_length: int, last_n: int,
                    breakers: Sequence[Sequence[int]]) -> Dry | Empty:
    """The reference's ``llama_sampler_init_dry_testing``: breakers already tokenized."""
    if not _dry_enabled(multiplier, base, last_n):
        return Empty("?dry")
    return Dry.from_token_breakers(multiplier, base, allowed_length, last_n, breakers)


def init_adaptive_p(target: float, decay: float, seed: int = DEFAULT_SEED) -> AdaptiveP:
    return AdaptiveP(target, decay, seed)


def init_logit_bias(n_vocab: int, biases: Sequence[tuple[int, float]]) -> LogitBias | Empty:
    return Empty("?logit-bias") if len(biases) <= 0 else LogitBias(n_vocab, biases)


def init_infill(vocab: InfillVocab) -> Infill:
    return Infill(vocab)


def init_chain(samplers: Sequence = ()) -> Chain:
    return Chain(samplers)
