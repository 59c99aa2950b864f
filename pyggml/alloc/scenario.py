"""Running a scenario of the allocator IR: ``plan(scenario_json) -> outcome_json``.

The same calls the probe makes on the reference (tools/paritychecker/probe/probe_alloc.cpp:
ggml_gallocr_new_n over recording buffer types, then each step), answered by pyggml.  Steps:
``reserve``/``reserve_n`` (ggml_gallocr_reserve_n with the graph's buffer ids),
``reserve_n_size``, ``alloc_graph``, ``needs_realloc``, ``get_buffer_size``, and
``alloc_ctx_tensors``/``alloc_ctx_tensors_size`` (every tensor of the scenario's context, in
buffers of ``"buft"``).  A step may carry ``"graph"``: other nodes/leafs/buffer ids over the
same tensors, for that step.

Outcome: ``ok`` is false once a reserve or alloc_graph returned false (``error`` names the first
such call: "<call> failed"), and the run goes on.  ``buffers``: per buffer id, the sizes of its
buffer type's live backend buffers in allocation order.  ``tensors``: per tensor, the last
placement seen at the end of a step while its buffer was alive, ``{buffer, chunk, offset}`` with
buffer = the buffer type's first id and chunk = the position among that type's live buffers.
A reference abort (GGML_ASSERT / GGML_ABORT) ends the run: ``{"ok": false, "error":
"aborted", "buffers": null, "tensors": null, "steps": null}`` (what the reference side's
isolated runner reports for a crashed probe); ``last_abort_reason`` names the assert.
"""

from __future__ import annotations

from typing import Any

from pyggml.alloc import ctx_tensors
from pyggml.alloc.gallocr import GallocrPlan, State
from pyggml.alloc.ir import Graph, Scenario
from pyggml.errors import AllocAbort, AllocError

ABORTED: dict[str, Any] = {"ok": False, "error": "aborted", "buffers": None, "tensors": None, "steps": None}
last_abort_reason: str | None = None


def _step_graph(base: Graph, spec: dict[str, Any]) -> Graph:
    """The scenario's tensors with another node/leaf order (a step's ``graph``)."""
    g = Graph(names=base.names, types=base.types, ne=base.ne, nb=base.nb, ops=base.ops, srcs=base.srcs,
              view_src=base.view_src, view_offs=base.view_offs, flags=base.flags,
              preallocated=base.preallocated, sizes=base.sizes)
    try:
        g.nodes = [int(x) for x in spec.get("nodes", [])]
        g.leafs = [int(x) for x in spec.get("leafs", [])]
        nbi, lbi = spec.get("node_buffer_ids"), spec.get("leaf_buffer_ids")
        g.node_buffer_ids = None if nbi is None else [int(x) for x in nbi]
        g.leaf_buffer_ids = None if lbi is None else [int(x) for x in lbi]
    except (TypeError, ValueError) as e:
        raise AllocError(f"bad step graph: {e!r}") from e
    g.validate()
    return g


def _check_buffer_ids(g: Graph, n_bufs: int) -> None:
    for what, ids in (("node_buffer_ids", g.node_buffer_ids), ("leaf_buffer_ids", g.leaf_buffer_ids)):
        if ids is not None and any(not 0 <= b < n_bufs for b in ids):
            raise AllocError(f"bad buffer id in {what}")


class Run:
    """One scenario being run: the planner, the tensors' memory, the placements seen."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.galloc = GallocrPlan(scenario.bufts)
        self.graph = scenario.graph
        _check_buffer_ids(self.graph, len(scenario.bufts))
        self.state = State.initial(self.graph)
        self.records: list[dict[str, int] | None] = [None] * self.graph.n_tensors
        self.results: list[Any] = []
        self.ok = True
        self.error: str | None = None

    def record(self) -> None:
        # after every step: a tensor whose data lies in a live buffer gets its placement
        # (re)recorded; one in a freed buffer keeps its previous record
        rank = {serial: c for live in self.galloc.rec.live for c, serial in enumerate(live)}
        records = self.records
        for t, loc in enumerate(self.state.loc):
            if loc is None or loc[1] <= 0:
                continue
            chunk = rank.get(loc[1])
            if chunk is not None:
                records[t] = {"buffer": loc[0], "chunk": chunk, "offset": loc[2]}

    def step(self, step: dict[str, Any]) -> None:
        call = step["call"]
        g = self.graph if step.get("graph") is None else _step_graph(self.graph, step["graph"])
        _check_buffer_ids(g, len(self.scenario.bufts))
        galloc, state = self.galloc, self.state
        failed = False
        r: Any
        if call in ("reserve", "reserve_n"):
            r = galloc.reserve_n(g, state, g.node_buffer_ids, g.leaf_buffer_ids)
            failed = not r
        elif call == "alloc_graph":
            r = galloc.alloc_graph(g, state)
            failed = not r
        elif call == "reserve_n_size":
            r = galloc.reserve_n_size(g, state, g.node_buffer_ids, g.leaf_buffer_ids)
        elif call == "needs_realloc":
            r = galloc.needs_realloc(g, state)
        elif call == "get_buffer_size":
            r = [galloc.buffer_size(b) for b in range(galloc.n_buffers)]
        elif call in ("alloc_ctx_tensors", "alloc_ctx_tensors_size"):
            b = int(step.get("buft", 0))
            if not 0 <= b < galloc.n_buffers:
                raise AllocError("bad buft in alloc_ctx_tensors")
            spec = self.scenario.bufts[b]
            if call == "alloc_ctx_tensors_size":
                r = ctx_tensors.alloc_ctx_tensors_size(g, state, spec.alignment, spec.max_size)
            else:
                made = ctx_tensors.alloc_ctx_tensors(g, state, galloc.rec, galloc.root[b], spec.alignment,
                                                     spec.max_size)
                r = made is not None
        else:
            raise AllocError(f"unknown call {call!r}")
        if failed and self.ok:
            self.ok = False
            self.error = f"{call} failed"
        self.results.append(r)
        self.record()

    def outcome(self) -> dict[str, Any]:
        rec, root = self.galloc.rec, self.galloc.root
        return {"ok": self.ok, "error": self.error,
                "buffers": [rec.sizes(root[i]) for i in range(self.galloc.n_buffers)],
                "tensors": list(self.records), "steps": list(self.results)}


def run(scenario: Scenario) -> dict[str, Any]:
    """Run ``scenario``'s steps on a fresh planner; the outcome (see module docstring)."""
    r = Run(scenario)
    try:
        for step in scenario.steps:
            r.step(step)
    except AllocAbort as e:
        # what the reference side reports for a probe that aborted (pyggml.reference.alloc
        # ABORTED); the assert that fired is kept on the side, out of the compared outcome
        global last_abort_reason
        last_abort_reason = e.reason
        return dict(ABORTED)
    return r.outcome()


def plan(scenario: dict[str, Any]) -> dict[str, Any]:
    """Scenario JSON in, outcome JSON out (the contract in pyggml/alloc/ir.py)."""
    return run(Scenario.from_json(scenario))
