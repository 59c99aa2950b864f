"""The paritychecker: diff every pyggml component against the running reference.

A component is a module under ``pyggml.parity`` with a function ``cases(opts)`` that yields
``Case`` objects: a name, pyggml's outcome and the reference's outcome, both canonical
(JSON-able values compared with ``==``; see ``pyggml.reference._canon``).  The table below
is the one place that names components; ``pyggml parity [name ...]`` runs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

# component name -> module (in the order reports list them)
COMPONENTS: dict[str, str] = {
    "gguf": "pyggml.parity.gguf",
    "loader": "pyggml.parity.loader",
    "vocab": "pyggml.parity.vocab",
    "chat": "pyggml.parity.chat",
    "batch": "pyggml.parity.batch",
    "kv_cells": "pyggml.parity.kv_cells",
    "memory": "pyggml.parity.memory",
    "sampling": "pyggml.parity.sampling",
    "grammar": "pyggml.parity.grammar",
    "json_schema": "pyggml.parity.json_schema",
    "alloc": "pyggml.parity.alloc",
    "decode": "pyggml.parity.decode",
    "embed": "pyggml.parity.embed",
    "generate": "pyggml.parity.generate",
}


@dataclass(frozen=True)
class Options:
    """``full``: the complete sweeps an issue asks for (slower); otherwise a seeded,
    representative slice.  ``seed`` drives every generated corpus."""

    full: bool = False
    seed: int = 0
    limit: int | None = None  # at most this many cases per component (tests use it)


@dataclass
class Case:
    name: str
    ours: Any
    reference: Any


class Component(Protocol):
    def cases(self, opts: Options) -> Iterator[Case]: ...


@dataclass
class Report:
    component: str
    cases: int = 0
    mismatches: int = 0
    first_mismatch: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    # case group (a case name up to its first "/", e.g. the sampler or template) -> [cases, mismatches]
    groups: dict[str, list[int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.cases > 0 and self.mismatches == 0 and self.error is None


def first_difference(ours: Any, ref: Any, path: str = "$") -> str | None:
    """A minimal description of where two canonical values first differ (None if equal)."""
    if type(ours) is not type(ref):
        return f"{path}: pyggml {_short(ours)} != reference {_short(ref)}"
    if isinstance(ours, dict):
        for k in list(ours) + [k for k in ref if k not in ours]:
            if k not in ours or k not in ref:
                side = "reference" if k not in ours else "pyggml"
                return f"{path}.{k}: only {side} has it"
            d = first_difference(ours[k], ref[k], f"{path}.{k}")
            if d:
                return d
        if list(ours) != list(ref):
            return f"{path}: key order {list(ours)} != {list(ref)}"
        return None
    if isinstance(ours, list):
        for i, (a, b) in enumerate(zip(ours, ref, strict=False)):
            d = first_difference(a, b, f"{path}[{i}]")
            if d:
                return d
        if len(ours) != len(ref):
            return f"{path}: length {len(ours)} != {len(ref)}"
        return None
    return None if ours == ref else f"{path}: pyggml {_short(ours)} != reference {_short(ref)}"


def _short(v: Any, n: int = 120) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def run_component(name: str, opts: Options, max_failures: int = 20) -> Report:
    report = Report(name)
    module: Component = importlib.import_module(COMPONENTS[name])  # type: ignore[assignment]
    for case in module.cases(opts):
        report.cases += 1
        group = report.groups.setdefault(case.name.split("/", 1)[0], [0, 0])
        group[0] += 1
        diff = first_difference(case.ours, case.reference)
        if diff is not None:
            report.mismatches += 1
            group[1] += 1
            if report.first_mismatch is None:
                report.first_mismatch = f"{case.name}: {diff}"
            if len(report.failures) < max_failures:
                report.failures.append({"case": case.name, "diff": diff})
        if opts.limit is not None and report.cases >= opts.limit:
            break
    return report
