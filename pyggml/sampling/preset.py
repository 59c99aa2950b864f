"""The reference tools' default chain and the ``Sampler`` facade.

llama.cpp: common/common.h common_params_sampling (defaults), common/sampling.cpp
common_sampler_init: logit-bias (user biases plus the vocabulary's suppress tokens at -inf) if
any, then the ``samplers`` in their order (default: penalties, dry, top-n-sigma, top-k, typical,
top-p, min-p, xtc, temperature (temp-ext)), then dist (adaptive-p when ``samplers`` names it);
mirostat replaces everything after logit-bias with temp + mirostat.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

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
    # the samplers between logit-bias and the final pick, in order (common_params_sampling::
    # samplers, given by name as the tools' --samplers takes them; unknown names are skipped)
    samplers: list[str] = field(default_factory=lambda: list(DEFAULT_SAMPLERS))


DEFAULT_SAMPLERS = ("penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc",
                    "temperature")

_CANONICAL = ("dry", "top_k", "top_p", "top_n_sigma", "typ_p", "min_p", "temperature", "xtc",
              "infill", "penalties", "adaptive_p")


def _sampler_aliases() -> dict[str, str]:
    # common/sampling.cpp common_sampler_types_from_names: canonical names, their kebab-case and
    # no-dash spellings (for names with "_"), and three misc aliases
    out = {"nucleus": "top_p", "temp": "temperature", "typ": "typ_p"}
    for name in _CANONICAL:
        if "_" in name:
            out[name.replace("_", "-")] = name
            out[name.replace("_", "")] = name
        out[name] = name
    return out


_ALIASES = _sampler_aliases()


def sampler_types_from_names(names: Sequence[str]) -> list[str]:
    """Canonical sampler names for ``names`` (case-insensitive, aliases resolved); unknown names
    are dropped, as the reference does (it logs a warning)."""
    out = []
    for name in names:
        # std::transform(::tolower): ASCII letters only
        key = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in str(name))
        if key in _ALIASES:
            out.append(_ALIASES[key])
    return out


def check_params(p: SamplingParams) -> None:
    """common_sampler_init's argument checks (it throws std::invalid_argument)."""
    rep = np.float32(p.penalty_repeat)
    with np.errstate(divide="ignore", over="ignore"):
        inv = np.float32(1.0) / rep if rep != 0 else np.float32(np.inf)
    if not np.isfinite(rep) or rep <= 0 or not np.isfinite(inv):
        raise SamplerError("penalty_repeat must be finite and greater than 0")
    if not np.isfinite(np.float32(p.penalty_freq)):
        raise SamplerError("penalty_freq must be finite")
    if not np.isfinite(np.float32(p.penalty_present)):
        raise SamplerError("penalty_present must be finite")


_TEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _VocabBreakers:
    """A ``pyggml.vocab.Vocab`` seen as DRY's ``BreakerVocab`` (llama_vocab::detokenize of one
    token with special pieces, tokenize without specials)."""

    def __init__(self, vocab) -> None:
        self.v = vocab
        texts = _TEXTS.get(vocab)
        if texts is None:  # every token's text, once per vocabulary (DRY scans them all)
            texts = _TEXTS[vocab] = [
                vocab.detokenize_bytes([t], remove_special=False, unparse_special=True)
                for t in range(vocab.n_tokens)]
        self.texts = texts

    def n_tokens(self) -> int:
        return self.v.n_tokens

    def token_text(self, token: int) -> bytes:
        return self.texts[token]

    def tokenize(self, text: bytes) -> list[int]:
        return self.v.tokenize(text, add_special=False, parse_special=False)


def _breaker_vocab(vocab):
    if vocab is None or callable(getattr(vocab, "token_text", None)):
        return vocab
    return _VocabBreakers(vocab)


def default_chain(n_vocab: int, params: SamplingParams | None = None, *,
                  vocab: BreakerVocab | Any | None = None,
                  dry_breaker_tokens: Sequence[Sequence[int]] | None = None) -> Chain:
    """The chain ``common_sampler_init`` builds (without grammar and reasoning budget).

    ``vocab``: a ``pyggml.vocab.Vocab`` (or a ``BreakerVocab``) for what the reference takes
    from the model's vocabulary: DRY's breaker strings are tokenized through it, its suppress
    tokens are biased to -inf, and infill reads its EOG tokens.  DRY breakers may instead be
    given as token sequences in ``dry_breaker_tokens``.  Raises ``SamplerError`` where
    ``common_sampler_init`` throws (invalid penalties) or asserts (unknown mirostat version)."""
    p = params or SamplingParams()
    check_params(p)
    chain: list[SamplerProtocol] = []
    biases = list(p.logit_bias) + [(int(t), float("-inf"))
                                   for t in getattr(vocab, "suppress_tokens", None) or ()]
    if biases:
        chain.append(si.init_logit_bias(n_vocab, biases))
    if p.mirostat == 0:
        use_adaptive_p = False
        for name in sampler_types_from_names(p.samplers):
            if name == "dry":
                if dry_breaker_tokens is not None:
                    chain.append(si.init_dry_tokens(p.dry_multiplier, p.dry_base,
                                                    p.dry_allowed_length, p.dry_penalty_last_n,
                                                    dry_breaker_tokens))
                else:
                    chain.append(si.init_dry(_breaker_vocab(vocab), p.dry_multiplier, p.dry_base,
                                             p.dry_allowed_length, p.dry_penalty_last_n,
                                             p.dry_sequence_breakers))
            elif name == "top_k":
                chain.append(si.init_top_k(p.top_k))
            elif name == "top_p":
                chain.append(si.init_top_p(p.top_p, p.min_keep))
            elif name == "top_n_sigma":
                chain.append(si.init_top_n_sigma(p.top_n_sigma))
            elif name == "min_p":
                chain.append(si.init_min_p(p.min_p, p.min_keep))
            elif name == "xtc":
                chain.append(si.init_xtc(p.xtc_probability, p.xtc_threshold, p.min_keep, p.seed))
            elif name == "typ_p":
                chain.append(si.init_typical(p.typ_p, p.min_keep))
            elif name == "temperature":
                chain.append(si.init_temp_ext(p.temp, p.dynatemp_range, p.dynatemp_exponent))
            elif name == "infill":
                if vocab is None or not hasattr(vocab, "eog"):
                    raise SamplerError("the infill sampler needs the model's vocabulary "
                                       "(Sampler(n_vocab, vocab=model.vocab, ...))")
                chain.append(si.init_infill(vocab))
            elif name == "penalties":
                chain.append(si.init_penalties(n_vocab, p.penalty_last_n, p.penalty_repeat,
                                               p.penalty_freq, p.penalty_present))
            else:  # adaptive_p: like dist it picks the token, so it goes last (once)
                use_adaptive_p = True
        chain.append(si.init_adaptive_p(p.adaptive_target, p.adaptive_decay, p.seed)
                     if use_adaptive_p else si.init_dist(p.seed))
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

    ``Sampler(n_vocab, **params)``: the chain the reference tools build (common_sampler_init),
    keyword arguments as in ``SamplingParams`` (reference defaults); pass ``vocab=model.vocab``
    for what the reference takes from the model (DRY breakers, suppress tokens, infill).
    ``Sampler.chain([...])``: an explicit chain of samplers from ``pyggml.sampling.init_*``.
    """

    def __init__(self, n_vocab: int, *, vocab: BreakerVocab | Any | None = None,
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
        cur = Candidates.of_row(logits)
        self._chain.apply(cur)
        self.last = cur  # the candidate array this pick left (common_sampler_get_candidates)
        if not 0 <= cur.selected < cur.size:
            raise SamplerError(f"the sampler chain selected no token (selected={cur.selected}, "
                             f"size={cur.size}); end the chain with dist, greedy or mirostat")
        token = int(cur.ids[cur.selected])
        self._chain.accept(token)
        return token
