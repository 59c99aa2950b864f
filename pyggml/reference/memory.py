"""The reference's KV cell metadata (src/llama-kv-cells.h) through the probe.

``cells_run(program)`` runs ``{"size": n, "ops": [[name, args...], ...]}`` on a
``llama_kv_cells`` and returns ``{"steps": [{"result": r, "state": {...}}, ...], "final": {...}}``
(see tools/paritychecker/probe/probe_kv.cpp).  Only programs whose operations respect the
header's preconditions are meaningful (its asserts are compiled out).
"""

from __future__ import annotations

import json
from typing import Any

from .._native import ffi, probe
from ._probe import take_json


def cells_run(program: dict[str, Any]) -> dict[str, Any]:
    out = ffi.new("char **")
    probe().ps_kv_cells_run(json.dumps(program).encode(), out)
    return take_json(out)


def swa_is_masked(n_swa: int, swa_type: int, p0s, p1s):
    """llama_hparams::is_masked_swa over the grid ``p0s x p1s``: bool [len(p0s), len(p1s)]."""
    import numpy as np

    a = np.ascontiguousarray(p0s, dtype=np.int32)
    b = np.ascontiguousarray(p1s, dtype=np.int32)
    out = np.zeros((a.size, b.size), np.uint8)
    probe().ps_swa_is_masked(n_swa, swa_type, ffi.cast("const int32_t *", a.ctypes.data), a.size,
                             ffi.cast("const int32_t *", b.ctypes.data), b.size,
                             ffi.cast("uint8_t *", out.ctypes.data))
    return out.astype(bool)


def status_combine(s0: int, s1: int) -> int:
    return probe().ps_memory_status_combine(s0, s1)


def status_is_fail(s: int) -> bool:
    return bool(probe().ps_memory_status_is_fail(s))


def kv_run(spec: dict[str, Any]) -> Any:
    """Run a memory program (``{"kind": ..., "config": {...}, "ops": [...]}``, see probe_kv.cpp
    ps_kv_run): the reference's result and full state after every step.  Kinds: "kv"
    (llama_kv_cache), "iswa" (llama_kv_cache_iswa), "recurrent" (llama_memory_recurrent), all
    over a stub model without layers; "layout" (``{"cases": [...]}``: context sizing on a tiny
    real model); "batch" (``{"programs": [...]}``: several at once, one JSON back)."""
    out = ffi.new("char **")
    probe().ps_kv_run(json.dumps(spec).encode(), out)
    return take_json(out)


def kv_run_isolated(specs: list[dict[str, Any]]) -> list[Any]:
    """``kv_run`` of each spec where the reference may abort (in forked children of the
    isolated worker): its result, or ``{"aborted": True, "signal", "stderr", ...}``."""
    from . import isolated

    res = isolated.call("isolated.run_forked", "memory.kv_run", specs)
    if isinstance(res, dict):  # the worker itself died
        raise RuntimeError(f"reference worker died: {res}")
    return res


class KVBench:
    """A reference cache of ``kv_size`` cells holding ``n_fill`` tokens of sequence 0;
    ``step(n_tokens, mask)`` decodes n_tokens more (+ the KQ mask) and removes them, returning
    n_kv (probe_kv.cpp ps_kv_bench_*)."""

    def __init__(self, kv_size: int, n_fill: int) -> None:
        self._lib = probe()
        self._h = self._lib.ps_kv_bench_new(kv_size, n_fill)
        if self._h == ffi.NULL:
            raise ValueError("ps_kv_bench_new failed")

    def step(self, n_tokens: int, mask: bool) -> int:
        return self._lib.ps_kv_bench_step(self._h, n_tokens, int(mask))

    def __del__(self) -> None:
        h = getattr(self, "_h", ffi.NULL)
        if h != ffi.NULL:
            self._lib.ps_kv_bench_free(h)
            self._h = ffi.NULL
