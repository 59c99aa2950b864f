"""Sampling: every llama.cpp sampler and the sampler chain, token-for-token identical to the
reference for the same seed (llama.cpp: src/llama-sampler.cpp, include/llama.h).

Candidate arrays are ``Candidates`` (numpy columns); samplers follow the ``llama_sampler_i``
protocol (``name``, ``apply``, ``accept``, ``reset``, ``clone``); ``init_*`` build them with the
reference's disabled-configuration rules; ``Sampler`` is the chain facade with the reference
tools' defaults.  Infill (needs the vocabulary's EOG/prefix logic) is not here yet.
"""

from ._rng import DEFAULT_SEED, Mt19937
from .base import BaseSampler, Chain, Empty, SamplerProtocol
from .candidates import Candidates
from .init import (
    init_adaptive_p,
    init_chain,
    init_dist,
    init_dry,
    init_dry_tokens,
    init_greedy,
    init_logit_bias,
    init_min_p,
    init_mirostat,
    init_mirostat_v2,
    init_penalties,
    init_temp,
    init_temp_ext,
    init_top_k,
    init_top_n_sigma,
    init_top_p,
    init_typical,
    init_xtc,
)
from .preset import Sampler, SamplingParams, default_chain

__all__ = [
    "DEFAULT_SEED", "BaseSampler", "Candidates", "Chain", "Empty", "Mt19937", "Sampler",
    "SamplerProtocol", "SamplingParams", "default_chain", "init_adaptive_p", "init_chain",
    "init_dist", "init_dry", "init_dry_tokens", "init_greedy", "init_logit_bias", "init_min_p",
    "init_mirostat", "init_mirostat_v2", "init_penalties", "init_temp", "init_temp_ext",
    "init_top_k", "init_top_n_sigma", "init_top_p", "init_typical", "init_xtc",
]
