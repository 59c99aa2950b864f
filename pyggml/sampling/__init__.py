"""Sampling: every llama.cpp sampler and the sampler chain, token-for-token identical to the
reference for the same seed (llama.cpp: src/llama-sampler.cpp, include/llama.h).

Candidate arrays are ``Candidates`` (numpy columns); samplers follow the ``llama_sampler_i``
protocol (``name``, ``apply``, ``accept``, ``reset``, ``clone``); ``init_*`` build them with the
reference's disabled-configuration rules; ``Sampler`` is the chain facade with the reference
tools' defaults (``Sampler(n_vocab, **params)``, ``Sampler.chain([...])``).

Where bit-exactness comes from (each place is commented where it happens):

* randomness: ``_rng`` (std::mt19937 seeded by init_genrand; libstdc++'s generate_canonical
  for double (two draws, low word first) and float (one draw); discrete_distribution with its
  no-draw case below two weights);
* tie order: ``pyggml._stlsort`` (libstdc++ partial_sort / introsort replayed when ties are
  observable, the 128-bucket sort with its INT_MIN bucket quirk);
* float math: ``_fmath`` (glibc expf reproduced through a proven midpoint guard, glibc
  logf/log2f/powf called directly, float vs double accumulators as the reference declares them).

Not here: infill (needs the vocabulary's EOG and piece-prefix logic) and grammar (its own area).
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
    init_infill,
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
    "init_dist", "init_dry", "init_dry_tokens", "init_greedy", "init_infill", "init_logit_bias", "init_min_p",
    "init_mirostat", "init_mirostat_v2", "init_penalties", "init_temp", "init_temp_ext",
    "init_top_k", "init_top_n_sigma", "init_top_p", "init_typical", "init_xtc",
]
