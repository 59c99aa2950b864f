"""The reference tools' default chain and the ``Sampler`` facade.

llama.cpp: common/common.h common_params_sampling (defaults), common/sampling.cpp
common_sampler_init (chain order: logit-bias if any, then penalties, dry, top-n-sigma, top-k,
typical, top-p, min-p, xtc, temperature (temp-ext), then dist; mirostat replaces the tail).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from ..errors import SamplerError, SamplerParamError
from . import init as si
from ._rng import DEFAULT_SEED
from .base import Chain, SamplerProtocol
from .candidates import Candidates
from .penalties import BreakerVocab


@dataclass
class SamplingParams:
    """common_params_sampling's sampler fields, with the reference's defaults."""

    seed: int = DEFAULT_SEED
    min_keep: int = 0
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    xtc_probability: float = 0.0
    xtc_threshold: float = 0.10
    typ_p: float = 1.0
    temp: float = 0.80
    dynatemp_range: float = 0.0
    dynatemp_exponent: float = 1.0
    penalty_last_n: int = 64
    penalty_repeat: float = 1.0
    penalty_freq: float = 0.0
    penalty_present: float = 0.0
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = 64
    dry_sequence_breakers: list[str] = field(default_factory=lambda: ["\n", ":", '"', "*"])
    adaptive_target: float = -1.0
    adaptive_decay: float = 0.90
    mirostat: int = 0
    top_n_sigma: float = -1.0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.10
    logit_bias: list[tuple[int, float]] = field(default_factory=list)


def default_chain(n_vocab: int, params: SamplingParams | None = None, *,
                  vocab: BreakerVocab | None = None,
                  dry_breaker_tokens: Sequence[Sequence[int]] | None = None) -> Chain:
    """The chain ``common_sampler_init`` builds (without grammar, infill and adaptive-p order
    options).  DRY breakers: strings tokenized through ``vocab``, or token sequences given
    directly in ``dry_breaker_tokens``."""
    p = params or SamplingParams()
    chain: list[SamplerProtocol] = []
    if p.logit_bias:
        chain.append(si.init_logit_bias(n_vocab, p.logit_bias))
    if p.mirostat == 0:
        if dry_breaker_tokens is not None:
            dry = si.init_dry_tokens(p.dry_multiplier, p.dry_base, p.dry_allowed_length,
                                     p.dry_penalty_last_n, dry_breaker_tokens)
        else:
            dry = si.init_dry(vocab, p.dry_multiplier, p.dry_base, p.dry_allowed_length,
                              p.dry_penalty_last_n, p.dry_sequence_breakers)
        chain += [
            si.init_penalties(n_vocab, p.penalty_last_n, p.penalty_repeat, p.penalty_freq,
                              p.penalty_present),
            dry,
            si.init_top_n_sigma(p.top_n_sigma),
            si.init_top_k(p.top_k),
            si.init_typical(p.typ_p, p.min_keep),
            si.init_top_p(p.top_p, p.min_keep),
            si.init_min_p(p.min_p, p.min_keep),
            si.init_xtc(p.xtc_probability, p.xtc_threshold, p.min_keep, p.seed),
            si.init_temp_ext(p.temp, p.dynatemp_range, p.dynatemp_exponent),
            si.init_dist(p.seed),
        ]
    elif p.mirostat == 1:
        chain += [si.init_temp(p.temp),
                  si.init_mirostat(n_vocab, p.seed, p.mirostat_tau, p.mirostat_eta, 100)]
    elif p.mirostat == 2:
        chain += [si.init_temp(p.temp),
                  si.init_mirostat_v2(p.seed, p.mirostat_tau, p.mirostat_eta)]
    else:
        raise SamplerError(f"unknown mirostat version {p.mirostat} (expected 0, 1 or 2)")
    return Chain(chain)


_PARAM_NAMES = {f.name for f in fields(SamplingParams)}


class Sampler:
    """A sampler chain with ``sample(logits) -> token``.

    ``Sampler(n_vocab, **params)``: the reference tools' default chain, keyword arguments as in
    ``SamplingParams`` (reference defaults).  ``Sampler.chain([...])``: an explicit chain of
    samplers from ``pyggml.sampling.init_*``.
    """

    def __init__(self, n_vocab: int, *, vocab: BreakerVocab | None = None,
                 dry_breaker_tokens: Sequence[Sequence[int]] | None = None, **params) -> None:
        unknown = set(params) - _PARAM_NAMES
        if unknown:
            raise SamplerParamError(f"unknown sampling parameter(s): {', '.join(sorted(unknown))}")
        self.params = SamplingParams(**params)
        self.n_vocab = int(n_vocab)
        self._chain = default_chain(self.n_vocab, self.params, vocab=vocab,
                                    dry_breaker_tokens=dry_breaker_tokens)

    @classmethod
    def chain(cls, samplers: Sequence[SamplerProtocol]) -> Sampler:
        self = cls.__new__(cls)
        self.params = None
        self.n_vocab = -1
        self._chain = Chain(samplers)
        return self

    @property
    def samplers(self) -> Chain:
        return self._chain

    def names(self) -> list[str]:
        return [s.name for s in self._chain.samplers]

    def apply(self, cur: Candidates) -> None:
        self._chain.apply(cur)

    def accept(self, token: int) -> None:
        self._chain.accept(token)

    def reset(self) -> None:
        self._chain.reset()

    def clone(self) -> Sampler:
        other = Sampler.__new__(Sampler)
        other.params, other.n_vocab, other._chain = self.params, self.n_vocab, self._chain.clone()
        return other

    def sample(self, logits: np.ndarray) -> int:
        """``llama_sampler_sample`` on one row of logits: apply, check, accept, return.

        Raises SamplerError (a ValueError) when the chain leaves no valid selection (the
        reference asserts).
        """
        lg = np.asarray(logits, dtype=np.float32).reshape(-1)
        n = lg.size
        cache = getattr(self, "_rows", None)
        if cache is None or cache[0].size != n:
            # ids 0..n-1 and p = 0, shared read-only between calls (samplers never write into
            # their input columns; they replace them), so a token costs no vocabulary-sized
            # allocation before the first sampler runs
            ids, p = np.arange(n, dtype=np.int32), np.zeros(n, np.float32)
            ids.flags.writeable = False
            p.flags.writeable = False
            cache = self._rows = (ids, p)
        view = lg.view()
        view.flags.writeable = False
        cur = Candidates(cache[0], view, cache[1], identity_ids=True)
        self._chain.apply(cur)
        if not 0 <= cur.selected < cur.size:
            raise SamplerError(f"the sampler chain selected no token (selected={cur.selected}, "
                             f"size={cur.size}); end the chain with dist, greedy or mirostat")
        token = int(cur.ids[cur.selected])
        self._chain.accept(token)
        return token
