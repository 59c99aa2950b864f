"""`pyggml bench`: each case runs on both sides in one process, interleaved.

A case module under ``pyggml.bench`` exposes ``CASES``: a dict from case name to a factory
returning a ``Pair`` (two zero-argument callables doing the same work: pyggml's and the
reference's).  The harness warms both up, then alternates them for ``repeat`` rounds and
reports the median ns per call on each side and the ratio pyggml/reference.
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# module -> its cases are discovered from its CASES table
MODULES: list[str] = [
    "pyggml.bench.decode",
    "pyggml.bench.generate",
    "pyggml.bench.embed",
    "pyggml.bench.gguf",
    "pyggml.bench.chat",
    "pyggml.bench.batch",
    "pyggml.bench.memory",
    "pyggml.bench.model",
    "pyggml.bench.sampling",
    "pyggml.bench.ggml_ops",
    "pyggml.bench.vocab",
    "pyggml.bench.grammar",
    "pyggml.bench.json_schema",
    "pyggml.bench.alloc",
]


@dataclass
class Pair:
    ours: Callable[[], object]
    reference: Callable[[], object]
    note: str | Callable[[], str] = ""   # a callable is asked after the runs


@dataclass
class Result:
    case: str
    ns_pyggml: float
    ns_reference: float
    repeat: int
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ns_pyggml / self.ns_reference if self.ns_reference else float("inf")


def time_compute(ctx: Any, spent: dict[str, float]) -> None:
    """Add the time ``ctx`` (a ``pyggml.Context``) spends inside ggml's graph compute to
    ``spent["compute"]``, so a case can report pyggml's Python time as the rest."""
    compute = ctx._compute

    def timed(gf: Any, batched: bool) -> int:
        t0 = time.perf_counter()
        try:
            return compute(gf, batched)
        finally:
            spent["compute"] += time.perf_counter() - t0

    ctx._compute = timed


def all_cases() -> dict[str, Callable[[], Pair]]:
    cases: dict[str, Callable[[], Pair]] = {}
    for mod in MODULES:
        cases.update(importlib.import_module(mod).CASES)
    return cases


def _time_once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return float(time.perf_counter_ns() - t0)


def run_case(name: str, factory: Callable[[], Pair], repeat: int = 7, warmup: int = 1) -> Result:
    pair = factory()
    for _ in range(warmup):
        pair.ours()
        pair.reference()
    ours: list[float] = []
    ref: list[float] = []
    for i in range(repeat):
        # alternate which side goes first, so drift hits both equally
        if i % 2 == 0:
            ours.append(_time_once(pair.ours))
            ref.append(_time_once(pair.reference))
        else:
            ref.append(_time_once(pair.reference))
            ours.append(_time_once(pair.ours))
    note = pair.note() if callable(pair.note) else pair.note
    return Result(name, statistics.median(ours), statistics.median(ref), repeat, note)
