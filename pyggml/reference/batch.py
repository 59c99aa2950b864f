"""The reference's batch allocator (src/llama-batch.cpp) through the probe.

A *spec* (plain JSON-able dict) describes one run; ``run(spec)`` returns the probe's canonical
result (see tools/paritychecker/probe/probe_batch.cpp):

    {"n_seq_max": 4, "n_vocab": 100, "n_embd_inp": 2, "n_pos_per_embd": 1,
     "mem": [[seq, pos_min, pos_max], ...] | None, "output_all": False,
     "ops": [["add", 0], ["set_id", 0, 5], ["set_pos", 0, [3]], ...]      # builder calls, or
     "legacy": {"n_tokens": n, "token": [...]|None, "embd": [...]|None, "pos": ..., "n_seq_id": ...,
                "seq_id": [[...], ...]|None, "logits": ...},
     "splits": [{"mode": "equal", "n_ubatch": 4, "sequential": False, "keep_tail": 0}, ...]}

Specs the reference cannot survive (an empty batch, ``keep_tail >= n_ubatch``, an auto position
indexed by an out-of-range seq id) run in a child process and come back as
``{"aborted": "<assert text>"}`` (or ``{"aborted": "undefined"}`` if the child died otherwise).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

from .._native import ffi, probe
from ._probe import take_json

_ASSERT = re.compile(r"GGML_ASSERT\((.*?)\) failed")


def _run_here(spec: dict[str, Any]) -> dict[str, Any]:
    out = ffi.new("char **")
    probe().ps_batch_run(json.dumps(spec).encode(), out)
    return take_json(out)


def may_abort(spec: dict[str, Any]) -> bool:
    """Whether the reference may stop the process (or touch memory out of bounds) on ``spec``."""
    if "legacy" in spec:
        lg = spec["legacy"]
        n = lg["n_tokens"]
        if n <= 0:
            return True
        if lg.get("pos") is None:
            n_seq_max = spec.get("n_seq_max", 4)
            rows = lg.get("seq_id")
            firsts = [0] * n if rows is None else [r[0] if r else None for r in rows]
            if any(s is None or not 0 <= s < n_seq_max for s in firsts):
                return True
    else:
        n_added = sum(1 for op in spec["ops"] if op[0] == "add" and 0 <= op[1] < spec.get("n_seq_max", 4))
        if n_added == 0:
            return True
    return any(p["mode"] == "equal" and 0 < p.get("keep_tail", 0) and p["n_ubatch"] <= p.get("keep_tail", 0)
               for p in spec.get("splits", []))


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """The reference's outcome for ``spec`` (isolated when it may abort)."""
    if not may_abort(spec):
        return _run_here(spec)
    return _run_isolated(spec)


def _run_isolated(spec: dict[str, Any]) -> dict[str, Any]:
    # a one-shot child without ggml's gdb backtrace, so the assert text is all of stderr
    env = dict(os.environ, GGML_NO_BACKTRACE="1")
    code = ("import json, sys\nfrom pyggml.reference.batch import _run_here\n"
            "res = _run_here(json.loads(sys.stdin.read()))\nsys.stdout.write(json.dumps(res))\n")
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(spec), capture_output=True,
                          text=True, env=env, timeout=120)
    if proc.returncode == 0:
        return json.loads(proc.stdout)
    if proc.returncode > 0 and "Traceback" in proc.stderr:
        raise RuntimeError(f"reference batch child failed: {proc.stderr[-2000:]}")
    m = _ASSERT.search(proc.stderr)
    return {"aborted": m.group(1) if m else "undefined"}


class BenchBatch:
    """A prepared legacy batch on the reference side: ``run(mode, n_ubatch)`` does init + a full
    split, returning the number of ubatches (mode: simple, equal, equal-seq, seq)."""

    MODES = {"simple": 0, "equal": 1, "equal-seq": 2, "seq": 3}

    def __init__(self, spec: dict[str, Any]) -> None:
        self._lib = probe()
        self._h = self._lib.ps_batch_bench_new(json.dumps(spec).encode())
        if self._h == ffi.NULL:
            raise ValueError("ps_batch_bench_new rejected the spec")

    def run(self, mode: str, n_ubatch: int) -> int:
        return self._lib.ps_batch_bench_run(self._h, self.MODES[mode], n_ubatch)

    def __del__(self) -> None:
        h = getattr(self, "_h", ffi.NULL)
        if h != ffi.NULL:
            self._lib.ps_batch_bench_free(h)
            self._h = ffi.NULL
