"""The sampler protocol of llama.h, the no-op sampler and the chain, plus the shared
building blocks (softmax, temperature, top-k) the samplers reuse.

llama.cpp: src/llama-sampler.cpp (llama_sampler_i; llama_sampler_chain_*;
llama_sampler_softmax_impl, llama_sampler_temp_impl, llama_sampler_top_k_impl).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import numpy as np

from .._stlsort import partial_sort_inplace
from ..errors import SamplerError
from . import _fmath as fm
from .candidates import Candidates

f32 = np.float32


@runtime_checkable
class SamplerProtocol(Protocol):
    """``llama_sampler_i``: ``apply`` is required, the rest may be no-ops."""

    @property
    def name(self) -> str: ...
    def apply(self, cur: Candidates) -> None: ...
    def accept(self, token: int) -> None: ...
    def reset(self) -> None: ...
    def clone(self) -> SamplerProtocol: ...


class BaseSampler:
    """Defaults: no state to accept or reset; clone copies everything."""

    name = "?"

    def apply(self, cur: Candidates) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def accept(self, token: int) -> None:
        return None

    def reset(self) -> None:
        return None

    def clone(self) -> BaseSampler:
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        return f"<sampler {self.name}>"


class Empty(BaseSampler):
    """llama_sampler_init_empty: what a disabled configuration becomes (``?top-k`` ...)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def apply(self, cur: Candidates) -> None:
        return None


class Chain(BaseSampler):
    """llama_sampler_chain: applies its samplers in order, accepts/resets on all of them."""

    name = "chain"

    def __init__(self, samplers: Iterable[SamplerProtocol] = ()) -> None:
        self.samplers: list[SamplerProtocol] = list(samplers)

    def add(self, smpl: SamplerProtocol) -> Chain:
        self.samplers.append(smpl)
        return self

    def apply(self, cur: Candidates) -> None:
        for s in self.samplers:
            s.apply(cur)

    def accept(self, token: int) -> None:
        for s in self.samplers:
            s.accept(token)

    def reset(self) -> None:
        for s in self.samplers:
            s.reset()

    def clone(self) -> Chain:
        return Chain(s.clone() for s in self.samplers)

    def __len__(self) -> int:
        return len(self.samplers)

    def __getitem__(self, i: int) -> SamplerProtocol:
        return self.samplers[i]


def require_nonempty(cur: Candidates, who: str) -> None:
    if cur.size == 0:
        # the reference aborts (GGML_ASSERT(cur_p->size > 0)); we raise instead
        raise SamplerError(f"{who}: empty candidate array (the reference asserts size > 0)")


def softmax_impl(cur: Candidates, do_sort: bool) -> None:
    """llama_sampler_softmax_impl: optional full sort, float ``expf(l - max)``, float sum."""
    require_nonempty(cur, "softmax")
    if do_sort and not cur.sorted:
        cur.take(partial_sort_inplace(cur.logits, cur.size))
        cur.sorted = True
    max_l = cur.logits[0] if cur.sorted else cur.logits.max()
    with np.errstate(invalid="ignore", over="ignore"):
        p = fm.expf(cur.logits - max_l)
        cur.p = p / fm.seq_sum_f32(p)


def temp_impl(cur: Candidates, temp: float | np.float32) -> None:
    """llama_sampler_temp_impl: temp <= 0 keeps only the first maximum (rest -inf)."""
    if cur.size == 0:
        return
    t = f32(temp)
    if t <= 0:
        keep = int(np.argmax(cur.logits))  # first strict maximum
        lg = np.full(cur.size, -np.inf, dtype=np.float32)
        lg[keep] = cur.logits[keep]
        cur.logits = lg
        return
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        cur.logits = cur.logits / t


def top_k_impl(cur: Candidates, k: int) -> None:
    """llama_sampler_top_k_impl."""
    if k <= 0:
        return
    k = min(k, cur.size)
    if not cur.sorted:
        cur.take(partial_sort_inplace(cur.logits, k))
        cur.sorted = True
    cur.truncate(k)
