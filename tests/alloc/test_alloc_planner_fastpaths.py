"""The planner's shortcuts give what the plain algorithm gives.

``GallocrPlan`` answers needs_realloc and runs alloc_graph's init loop from the reserve-time
snapshot when the graph reads as the planned one; with the snapshot dropped it scans per node
and src slot as ggml_gallocr_needs_realloc / ggml_gallocr_alloc_graph do.  ``DynTallocr`` has a
one-chunk path, alloc_ctx_tensors a contiguous-range path.  Each is compared with the long way
on random DAGs (the reference itself is compared in test_alloc_differential / parity).
"""

from __future__ import annotations

import copy
import random
from dataclasses import replace
from typing import Any

from pyggml.alloc.buffers import Buffers
from pyggml.alloc.ctx_tensors import alloc_ctx_tensors, split_sizes
from pyggml.alloc.dyn_tallocr import SIZE_MAX, Chunk, DynTallocr
from pyggml.alloc.gallocr import EXTERNAL, GallocrPlan, State
from pyggml.alloc.ir import Graph, Scenario
from pyggml.errors import AllocAbort, AllocError
from pyggml.parity.alloc_dags import random_scenarios


def _scenarios(n: int) -> list[Scenario]:
    out = []
    for sc in random_scenarios(7, n):
        try:
            out.append(Scenario.from_json(copy.deepcopy(sc)))
        except AllocError:
            continue
    return out


def _reserved(s: Scenario) -> tuple[GallocrPlan, State] | None:
    g = s.graph
    p = GallocrPlan(s.bufts)
    st = State.initial(g)
    try:
        p.reserve_n(g, st, g.node_buffer_ids, g.leaf_buffer_ids)
    except (AllocAbort, AllocError):
        return None
    return p, st


def _outcome(fn: Any) -> Any:
    try:
        return fn()
    except (AllocAbort, AllocError) as e:
        return type(e).__name__


def test_needs_realloc_shortcut_matches_the_scan() -> None:
    rng = random.Random(1)
    n_true = 0
    for s in _scenarios(150):
        got = _reserved(s)
        if got is None:
            continue
        p, st = got
        g = s.graph
        for _ in range(4):
            # take data away from some tensors and give it to others
            loc = [(None if lo == EXTERNAL and rng.random() < 0.3 else
                    EXTERNAL if lo is None and rng.random() < 0.1 else lo) for lo in st.loc]
            fast = p.needs_realloc(g, State(loc))
            snap, p._snap = p._snap, None
            try:
                scan = p.needs_realloc(g, State(loc))
            finally:
                p._snap = snap
            assert fast == scan
            n_true += fast
    assert n_true > 10


def test_alloc_graph_shortcut_matches_the_slot_walk() -> None:
    n_placed = 0
    for s in _scenarios(150):
        runs = []
        for shortcut in (True, False):
            got = _reserved(s)
            if got is None:
                break
            p, st = got
            if not shortcut:
                p._snap = None
            ok = _outcome(lambda p=p, st=st, g=s.graph: p.alloc_graph(g, st))
            runs.append((ok, st.loc, p.placed))
        if len(runs) == 2:
            assert runs[0] == runs[1]
            n_placed += len(runs[0][2])
    assert n_placed > 100


def _general_alloc(d: DynTallocr, size: int) -> tuple[int, int]:
    # ggml_dyn_tallocr_alloc's two passes over every chunk, written out plainly
    size = (size + d.alignment - 1) & ~(d.alignment - 1)
    best_chunk = best_block = -1
    for c, ch in enumerate(d.chunks):
        best_size = SIZE_MAX
        for i in range(len(ch.sizes) - 1):
            if ch.sizes[i] >= size and ch.sizes[i] <= best_size:
                best_chunk, best_block, best_size = c, i, ch.sizes[i]
    if best_block == -1:
        best_reuse = -(1 << 63)
        for c, ch in enumerate(d.chunks):
            if ch.sizes and ch.sizes[-1] >= size:
                reuse = ch.max_size - ch.offs[-1] - size
                if (best_reuse < 0 and reuse > best_reuse) or (0 <= reuse < best_reuse):
                    best_chunk, best_block, best_reuse = c, len(ch.sizes) - 1, reuse
    if best_block == -1:
        d.chunks.append(Chunk(max(size, d.max_chunk_size)))
        best_chunk, best_block = len(d.chunks) - 1, 0
    ch = d.chunks[best_chunk]
    off = ch.offs[best_block]
    ch.offs[best_block] += size
    ch.sizes[best_block] -= size
    if ch.sizes[best_block] == 0:
        ch.remove_block(best_block)
    ch.max_size = max(ch.max_size, off + size)
    return best_chunk, off


def test_one_chunk_alloc_matches_the_general_passes() -> None:
    rng = random.Random(3)
    for _ in range(40):
        limit = rng.choice([1 << 12, 1 << 20])
        a, b = DynTallocr(16, limit), DynTallocr(16, limit)
        live: list[tuple[int, int, int]] = []
        for _ in range(80):
            if live and rng.random() < 0.45:
                c, off, size = live.pop(rng.randrange(len(live)))
                a.free_bytes(c, off, size)
                b.free_bytes(c, off, size)
            else:
                size = rng.choice([1, 16, 40, 100, 256, 1000, 3000])
                got = a.alloc(size)
                assert got == _general_alloc(b, size)
                live.append((got[0], got[1], size))
            assert [c.blocks() for c in a.chunks] == [c.blocks() for c in b.chunks]
            assert [c.max_size for c in a.chunks] == [c.max_size for c in b.chunks]


def _bump_loop(g: Graph, st: State, alignment: int, max_size: int) -> Any:
    # ggml_backend_alloc_ctx_tensors_from_buft's loop over the tensors, written out plainly
    made: list[int] = []
    rec = Buffers(1)
    try:
        for first, end, size in split_sizes(g, st, alignment, max_size):
            serial = rec.alloc(0, size)
            if serial is None:
                return None
            made.append(serial)
            off = 0
            for t in range(first, end):
                lo = st.loc[t]
                if (lo is None or lo[1:] == (0, 0)) and g.view_src[t] < 0:
                    if lo is not None:
                        raise AllocAbort("GGML_ASSERT(tensor->buffer == NULL) failed")
                    st.loc[t] = (0, serial, off)
                    off += (g.sizes[t] + alignment - 1) // alignment * alignment
                elif lo is None and g.view_src[t] >= 0:
                    base = st.loc[g.view_src[t]]
                    if base is None or base[1:] == (0, 0):
                        raise AllocAbort("view of a tensor without data")
                    st.loc[t] = (base[0], base[1], base[2] + g.view_offs[t])
    except AllocAbort as e:
        return type(e).__name__
    return made or None


def test_ctx_tensors_contiguous_range_matches_the_bump_loop() -> None:
    n_placed = 0
    for s in _scenarios(80):
        spec = s.bufts[0]
        # as the scenario has them, and as a fresh context of plain tensors (no views, no
        # memory: the contiguous-range path)
        plain = replace(s.graph, view_src=[-1] * s.graph.n_tensors)
        for g, st in ((s.graph, State.initial(s.graph)), (plain, State([None] * plain.n_tensors))):
            st2 = State(list(st.loc))
            r1 = _outcome(lambda g=g, st=st, b=spec: alloc_ctx_tensors(g, st, Buffers(1), 0, b.alignment,
                                                                       b.max_size))
            r2 = _bump_loop(g, st2, spec.alignment, spec.max_size)
            assert r1 == r2
            if not isinstance(r1, str):
                assert st.loc == st2.loc
                n_placed += sum(lo is not None for lo in st.loc)
    assert n_placed > 1000
