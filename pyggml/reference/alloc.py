"""The reference's graph allocator (ggml/src/ggml-alloc.c) through the probe.

A *scenario* is the allocator IR shared with ``pyggml.alloc`` (see ``/tmp/alloc-ir.md`` and
``tools/paritychecker/probe/probe_alloc.cpp``)::

    {"bufts": [{"alignment": 8, "max_size": 64, "shared_with": j?, "fail_above": n?}, ...],
     "tensors": [{"name", "type", "ne", "nb", "op", "src", "view_src", "view_offs", "flags",
                  "preallocated"}, ...],
     "nodes": [...], "leafs": [...], "node_buffer_ids": null | [...], "leaf_buffer_ids": null | [...],
     "steps": [{"call": "reserve" | "alloc_graph" | "reserve_n_size" | "needs_realloc"
                        | "get_buffer_size" | "alloc_ctx_tensors" | "alloc_ctx_tensors_size",
                "graph": {"nodes", "leafs", "node_buffer_ids", "leaf_buffer_ids"}?, "buft": b?}]}

The outcome is ``{"ok", "error", "buffers", "tensors", "steps"}``:

- ``buffers[i]``: the sizes of the live backend buffers of buffer type ``i`` at the end, in the
  order they were allocated (a type named by ``shared_with`` reports its twin's list);
- ``tensors[t]``: ``{"buffer", "chunk", "offset"}`` where tensor ``t``'s data was last seen
  after a step (``buffer`` = the first buffer id of its type, ``chunk`` = rank among that
  type's live buffers at that moment, ``offset`` from the buffer's base), or ``None``;
- ``steps``: each call's result (bool, list of sizes, or a size);
- ``ok``: every reserve/alloc_graph returned true; ``error``: ``"<call> failed"`` for the first
  that did not, or ``"aborted"`` when the reference aborted (GGML_ASSERT/GGML_ABORT), in which
  case buffers/tensors/steps are ``None``.

``run`` calls the probe in this process and may abort it; ``plan``/``plan_many`` run in the
subprocess worker (``pyggml.reference.isolated``) so an abort is an outcome.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .._native import ffi, probe
from ._probe import take_json

ABORTED: dict[str, Any] = {"ok": False, "error": "aborted", "buffers": None, "tensors": None, "steps": None}


def _decode_exception(res: dict[str, Any]) -> str:
    msg = res.get("exception", "")
    if isinstance(msg, str) and msg.startswith("s:"):
        return bytes.fromhex(msg[2:]).decode("utf-8", "replace")
    return str(msg)


def run(scenario: dict[str, Any]) -> dict[str, Any]:
    """One scenario through the reference gallocr, in this process (an abort kills it).

    Raises ValueError for a malformed scenario (bad ids, types, alignment)."""
    out = ffi.new("char **")
    rc = probe().ps_alloc_run(json.dumps(scenario).encode(), out)
    res = take_json(out)
    if rc != 0:
        raise ValueError(f"alloc scenario rejected by the probe: {_decode_exception(res)}")
    return res


def run_many(scenarios: list[dict[str, Any]]) -> list[dict[str, Any] | str]:
    """``run`` over a batch (used inside the worker); a rejected scenario gives its message."""
    # ggml_abort would otherwise try to attach a debugger for a backtrace (slow)
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    out: list[dict[str, Any] | str] = []
    for sc in scenarios:
        try:
            out.append(run(sc))
        except ValueError as exc:
            out.append(str(exc))
    return out


def run_many_forked(scenarios: list[dict[str, Any]]) -> list[dict[str, Any] | str]:
    """``run_many`` where each abort costs a fork instead of a worker restart (used inside the
    worker): a forked child runs the scenarios in order and streams each result back; when it
    dies, that scenario is ``ABORTED`` and a new child goes on with the next one."""
    import pickle
    import struct

    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    hdr = struct.Struct("<Q")
    out: list[dict[str, Any] | str] = []
    while len(out) < len(scenarios):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns into the caller's code
            os.close(r)
            try:
                with os.fdopen(w, "wb") as chan:
                    for res in map(lambda sc: run_many([sc])[0], scenarios[len(out):]):
                        data = pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL)
                        chan.write(hdr.pack(len(data)) + data)
                        chan.flush()
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as chan:
            while True:
                head = chan.read(hdr.size)
                if len(head) < hdr.size:
                    break
                out.append(pickle.loads(chan.read(hdr.unpack(head)[0])))
        _, status = os.waitpid(pid, 0)
        if len(out) < len(scenarios):
            if status == 0:
                raise RuntimeError("alloc: the forked reference runner stopped early")
            out.append(dict(ABORTED))  # the scenario that was running when the child died
    return out


def _aborted(res: Any) -> bool:
    return isinstance(res, dict) and res.get("aborted") is True


def plan_many(scenarios: list[dict[str, Any]], batch: int = 64) -> list[dict[str, Any]]:
    """The reference outcome of each scenario, aborts included (runs in the worker).

    Scenarios go in batches to the worker, which runs them in forked children
    (``run_many_forked``) so that only the aborting scenarios get ``ABORTED``.  Raises
    ValueError for a malformed scenario."""
    from . import isolated

    results: list[dict[str, Any]] = []
    for i in range(0, len(scenarios), batch):
        chunk = scenarios[i:i + batch]
        res = isolated.call("alloc.run_many_forked", chunk)
        if _aborted(res):  # the worker itself died: replay one by one
            res = []
            for sc in chunk:
                one = isolated.call("alloc.run_many", [sc])
                res.append(dict(ABORTED) if _aborted(one) else one[0])
        for r in res:
            if isinstance(r, str):
                raise ValueError(r)
            results.append(r)
    return results


def plan(scenario: dict[str, Any]) -> dict[str, Any]:
    """The reference outcome of one scenario, run in the worker (an abort is ``ABORTED``)."""
    return plan_many([scenario])[0]


def _decode_graph_here(model: str, params: dict[str, Any]) -> dict[str, Any]:
    out = ffi.new("char **")
    probe().ps_log_capture(0)
    rc = probe().ps_alloc_decode_graph(model.encode(), json.dumps(params).encode(), out)
    res = take_json(out)
    if rc != 0:
        raise ValueError(f"decode graph failed: {_decode_exception(res)}")
    return res


def decode_graph(model: str | Path, n_ctx: int, n_ubatch: int, n_tokens: int | None = None,
                 n_outputs: int = 1, flash_attn: int = 0, cache: bool = True) -> dict[str, Any]:
    """The decode graph the reference builds for a ubatch of ``n_tokens`` (default
    ``n_ubatch``) with a ``n_ctx``-cell KV cache, as an allocator scenario (weights and KV
    cache pre-allocated; the CPU buffer type's alignment).

    Built through ``llama_context::graph_reserve`` in the worker; cached on disk by model file
    (path, size, mtime) and parameters because loading SmolLM2 takes seconds."""
    from ..parity.corpus import cache_dir
    from . import isolated

    model = Path(model)
    params = {"n_ctx": n_ctx, "n_ubatch": n_ubatch, "n_tokens": n_tokens or n_ubatch,
              "n_outputs": n_outputs, "flash_attn": flash_attn}
    st = model.stat()
    key = hashlib.sha256(json.dumps([str(model.resolve()), st.st_size, st.st_mtime_ns, params,
                                     "v2"]).encode()).hexdigest()[:24]
    path = cache_dir() / "alloc_graphs" / f"{key}.json"
    if cache and path.exists():
        return json.loads(path.read_text())
    res = isolated.call("alloc._decode_graph_here", str(model), params)
    if _aborted(res):
        raise RuntimeError(f"the reference aborted building the decode graph of {model}: "
                           f"{res.get('stderr', '')[-500:]}")
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_text(json.dumps(res))
        os.replace(tmp, path)
    return res


class Bench:
    """A scenario built once in the probe; ``run(mode)`` times one reference operation in C.

    mode 0: ggml_gallocr_new_n + reserve_n + alloc_graph + free on the unallocated graph;
    1: ggml_gallocr_needs_realloc on the graph as reserved (tensors unallocated, as when a
    graph of the same shape is rebuilt); 2: ggml_backend_alloc_ctx_tensors_from_buft of every
    tensor into buffer type 0, then free.  Returns the ns measured inside C around the calls."""

    PLAN, NEEDS_REALLOC, ALLOC_CTX = 0, 1, 2

    def __init__(self, scenario: dict[str, Any]) -> None:
        self._lib = probe()
        self._h = self._lib.ps_alloc_bench_new(json.dumps(scenario).encode())
        if self._h == ffi.NULL:
            raise ValueError("ps_alloc_bench_new rejected the scenario")

    def run(self, mode: int, iters: int = 1) -> int:
        ns = self._lib.ps_alloc_bench_run(self._h, mode, iters)
        if ns < 0:
            raise RuntimeError(f"ps_alloc_bench_run mode {mode} failed")
        return int(ns)

    def __del__(self) -> None:
        h = getattr(self, "_h", ffi.NULL)
        if h != ffi.NULL:
            self._lib.ps_alloc_bench_free(h)
            self._h = ffi.NULL
