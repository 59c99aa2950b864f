"""Tensor lifetimes as ggml_gallocr derives them, as a readable result.

gallocr never builds a lifetime table: it counts each tensor's children (uses as a src) and
views, allocates a tensor when the node loop first needs it, and frees it when the last child
(or the last child of its last view) has been processed (llama.cpp: ggml-alloc.c
ggml_gallocr_alloc_graph_impl).  ``lifetimes`` replays one reserve and reports, per tensor,
when it got memory, where, when the memory went back (or to which node it was handed in place),
next to the first and last use read off the graph.  Steps are node indices; -1 is the phase
before the node loop (leafs and graph inputs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pyggml.alloc.gallocr import GallocrPlan, State
from pyggml.alloc.ir import FLAG_OUTPUT, BuftSpec, Graph


@dataclass(frozen=True)
class Lifetime:
    tensor: int
    name: str
    size: int
    first_use: int | None       # node index that produces it (-1: leaf / before the loop)
    last_use: int | None        # last node index reading it, directly or through a view
    alloc_step: int | None      # when gallocr gave it memory (None: view / external)
    free_step: int | None       # when its memory went back (None: kept to the end)
    inplace_of: str | None      # the parent whose memory it took over
    handed_to: str | None       # the node that took its memory over in place
    output: bool
    placement: tuple[int, int, int] | None   # (buffer id, chunk, offset) in the plan

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["placement"] = None if self.placement is None else list(self.placement)
        return d


def lifetimes(g: Graph, bufts: list[BuftSpec] | None = None, state: State | None = None) -> list[Lifetime]:
    """Plan ``g`` once (ggml_gallocr_reserve_n) and report every tensor the graph touches."""
    galloc = GallocrPlan(bufts or [BuftSpec()])
    state = state or State.initial(g)
    galloc.reserve_n(g, state, g.node_buffer_ids, g.leaf_buffer_ids)
    hn = galloc.last
    assert hn is not None
    first: dict[int, int] = {t: -1 for t in g.leafs}
    last: dict[int, int] = {}
    for i, node in enumerate(g.nodes):
        first.setdefault(node, i)
        for s in g.srcs[node]:
            if s < 0:
                continue
            first.setdefault(s, -1)
            last[s] = i
            vs = g.view_src[s]
            if vs >= 0:
                last[vs] = i
    handed = {p: t for t, p in hn.inplace_of.items()}
    out = []
    for t in sorted(set(first) | set(last)):
        alloc = hn.alloc_at.get(t)
        placement = None
        if alloc is not None:
            placement = (hn.buffer_id[t], hn.chunk[t], hn.offset[t])
        out.append(Lifetime(
            tensor=t, name=g.names[t], size=g.sizes[t], first_use=first.get(t), last_use=last.get(t),
            alloc_step=alloc, free_step=hn.free_at.get(t),
            inplace_of=g.names[hn.inplace_of[t]] if t in hn.inplace_of else None,
            handed_to=g.names[handed[t]] if t in handed else None,
            output=bool(g.flags[t] & FLAG_OUTPUT), placement=placement))
    return out


def table(lives: list[Lifetime]) -> str:
    """A fixed-width text table of ``lifetimes`` (one row per tensor)."""
    rows = [f"{'tensor':<24} {'size':>10} {'use':>11} {'alloc':>5} {'free':>5}  placement / reuse"]
    for lt in lives:
        use = f"{lt.first_use}..{lt.last_use if lt.last_use is not None else '-'}"
        where = "-" if lt.placement is None else f"b{lt.placement[0]} c{lt.placement[1]} +{lt.placement[2]}"
        note = f" in place of {lt.inplace_of}" if lt.inplace_of else ""
        note += f" -> {lt.handed_to}" if lt.handed_to else ""
        note += " (output)" if lt.output else ""
        steps = f"{_s(lt.alloc_step):>5} {_s(lt.free_step):>5}"
        rows.append(f"{lt.name[:24]:<24} {lt.size:>10} {use:>11} {steps}  {where}{note}")
    return "\n".join(rows)


def _s(x: int | None) -> str:
    return "-" if x is None else str(x)
