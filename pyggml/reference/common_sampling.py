"""The reference tools' sampler (common/sampling.cpp) through the probe.

``Host(model_path)`` loads a model with a one-token context (``common_sampler_sample`` reads a
context's logits); ``CommonSampler(host, params)`` is ``common_sampler_init(model, params)`` with
``params`` given as ``common_params_sampling`` field names (JSON values; ``samplers`` as the
names the tools take, ``logit_bias`` as ``[[token, bias], ...]``).  ``sample(logits)`` writes the
logits into the host context's output row and calls ``common_sampler_sample``; ``accept`` is
``common_sampler_accept``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .._native import ffi, llama, probe
from ._probe import take_json, take_log


class CommonSamplerError(Exception):
    """``common_sampler_init`` threw: ``str(e)`` is the exception's ``what()``, ``kind`` its
    class ("invalid_argument", "out_of_range", "runtime_error" or "exception")."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class Host:
    """A model plus a context that decoded one token (free with ``close``)."""

    def __init__(self, model_path: str | os.PathLike[str]) -> None:
        lib = probe()
        llama()
        take_log()
        out = ffi.new("char **")
        self.ptr = lib.ps_csmpl_host_new(os.fsencode(model_path), out)
        res = take_json(out) or {}
        log = take_log()
        if self.ptr == ffi.NULL:
            raise RuntimeError(f"reference host: {res.get('exception')}: {log[-500:]}")
        self.n_vocab = int(res["n_vocab"])

    def close(self) -> None:
        if self.ptr != ffi.NULL:
            probe().ps_csmpl_host_free(self.ptr)
            self.ptr = ffi.NULL

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _names(chain: Any) -> list[str]:
    lib = llama()
    ch = ffi.cast("struct llama_sampler *", chain)
    return [ffi.string(lib.llama_sampler_name(lib.llama_sampler_chain_get(ch, i))).decode()
            for i in range(lib.llama_sampler_chain_n(ch))]


class CommonSampler:
    """``common_sampler`` over a ``Host``; raises ``CommonSamplerError`` when init threw."""

    def __init__(self, host: Host, params: dict[str, Any] | None = None, *, _ptr: Any = None) -> None:
        self.host = host
        lib = probe()
        if _ptr is None:
            out = ffi.new("char **")
            _ptr = lib.ps_csmpl_new(host.ptr, json.dumps(params or {}).encode(), out)
            res = take_json(out) or {}
            take_log()
            if _ptr == ffi.NULL:
                raise CommonSamplerError(res.get("exception", ""), res.get("type", "exception"))
        self.ptr = ffi.gc(_ptr, lib.ps_csmpl_free)
        self._sel = ffi.new("int64_t *")

    def names(self) -> list[str]:
        """``llama_sampler_name`` of every member of the chain ``common_sampler_init`` built."""
        return _names(probe().ps_csmpl_chain(self.ptr))

    def seed(self) -> int:
        return int(probe().ps_csmpl_seed(self.ptr))

    def sample(self, logits: np.ndarray) -> tuple[int, int]:
        """``common_sampler_sample`` on ``logits`` (n_vocab float32): (token, selected index);
        the token is -1 when the chain selected nothing."""
        lg = np.ascontiguousarray(logits, dtype=np.float32)
        if lg.size != self.host.n_vocab:
            raise ValueError(f"{lg.size} logits for a vocabulary of {self.host.n_vocab}")
        tok = probe().ps_csmpl_sample(self.ptr, self.host.ptr, ffi.from_buffer("float[]", lg), self._sel)
        return int(tok), int(self._sel[0])

    def accept(self, token: int, is_generated: bool = True) -> None:
        probe().ps_csmpl_accept(self.ptr, int(token), int(is_generated))

    def reset(self) -> None:
        probe().ps_csmpl_reset(self.ptr)

    def clone(self) -> CommonSampler:
        return CommonSampler(self.host, _ptr=probe().ps_csmpl_clone(self.ptr))

    def candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """The candidate array the last sample left: (ids, logits, p, sorted)."""
        n = self.host.n_vocab
        ids = np.empty(n, np.int32)
        lg = np.empty(n, np.float32)
        p = np.empty(n, np.float32)
        srt = ffi.new("int *")
        size = probe().ps_csmpl_candidates(self.ptr, ffi.from_buffer("int32_t[]", ids),
                                           ffi.from_buffer("float[]", lg), ffi.from_buffer("float[]", p),
                                           n, srt)
        size = min(int(size), n)
        return ids[:size], lg[:size], p[:size], bool(srt[0])
