"""Parity component "kv_cells": model-based differential testing of llama_kv_cells, plus the
small pure rules next to it (SWA masking per type, memory status combination).

Random programs of cell operations (pos_set, seq_add, seq_rm, seq_keep, rm, pos_add, pos_div,
ext_set, cp/set of ranges and index lists, reset_shift, reset, resize, and the queries seq_count,
pos_in, seq_pos_tok_le) are generated against pyggml's own state so that every operation meets
the reference's preconditions; both sides run the program and the whole state (every cell's
pos/shift/ext/seq set, used count and bounds, has_shift, every sequence's (pos, cell) index with
its min/max) is compared after every step.  One case = one program.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..memory import KVCells, swa
from ..memory.status import MemoryStatus, combine
from . import Case, Options


def apply(cells: KVCells, slots: dict[str, KVCells], op: list) -> Any:
    """Run one program operation on pyggml's cells; the operation's return value."""
    name, args = op[0], op[1:]
    if name == "resize":
        cells.resize(args[0])
    elif name == "reset":
        cells.reset()
    elif name == "reset_shift":
        cells.reset_shift()
    elif name == "cp":
        slots[args[2]] = cells.cp(args[0], args[1])
    elif name == "cp_idxs":
        slots[args[1]] = cells.cp_idxs(args[0])
    elif name == "set":
        cells.set(args[0], slots[args[1]])
    elif name == "set_idxs":
        cells.set_idxs(args[0], slots[args[1]])
    elif name == "tok_le":
        return cells.seq_pos_tok_le(*args)
    else:
        return getattr(cells, name)(*args)
    return None


def ours(program: dict[str, Any]) -> dict[str, Any]:
    cells = KVCells(program["size"])
    slots: dict[str, KVCells] = {}
    steps = []
    for op in program["ops"]:
        r = apply(cells, slots, op)
        steps.append({"result": r, "state": cells.describe()})
    return {"steps": steps, "final": cells.describe()}


def random_program(rng: random.Random, n_steps: int) -> dict[str, Any]:
    """A program valid for the reference's preconditions, built by running it on pyggml."""
    size = rng.choice([1, 4, 8, 16, 33])
    n_seq = rng.choice([1, 2, 4, 16, 256])
    seqs = rng.sample(range(256), min(n_seq, 6)) if n_seq == 256 else list(range(n_seq))
    cells = KVCells(size)
    slots: dict[str, KVCells] = {}
    ops: list[list] = []
    while len(ops) < n_steps:
        n = cells.size
        used = np.flatnonzero(cells.pos != -1).tolist()
        empty = np.flatnonzero(cells.pos == -1).tolist()
        kind = rng.random()
        op: list | None = None
        if kind < 0.25 and empty:
            i = rng.choice(empty)
            op = ["pos_set", i, rng.randrange(0, 40)]
        elif kind < 0.42 and used:
            i = rng.choice(used)
            missing = [s for s in seqs if not cells.seq[i, s]]
            if missing:
                op = ["seq_add", i, rng.choice(missing)]
        elif kind < 0.50 and used:
            i = rng.choice(used)
            held = np.flatnonzero(cells.seq[i]).tolist()
            if held:
                op = ["seq_rm", i, rng.choice(held)]
        elif kind < 0.55 and n:
            i = rng.randrange(n)
            if not (cells.pos[i] != -1 and not cells.seq[i].any()):
                op = ["seq_keep", i, rng.choice(seqs)]
        elif kind < 0.59 and used:
            op = ["rm", rng.choice(used)]
        elif kind < 0.67 and used:
            op = ["pos_add", rng.choice(used), rng.randint(-12, 12)]
        elif kind < 0.71 and used:
            op = ["pos_div", rng.choice(used), rng.choice([1, 2, 3, 4])]
        elif kind < 0.76 and n:
            op = ["ext_set", rng.randrange(n), rng.randrange(8), rng.randrange(8), rng.randrange(-1, 50)]
        elif kind < 0.82:
            if cells.has_shift:
                op = ["reset_shift"]  # cp/set expect cells without pending shifts
            elif n:
                i = rng.randrange(n)
                k = rng.randint(1, n - i)
                op = ["cp", i, k, "a"] if rng.random() < 0.5 else ["cp_idxs", rng.sample(range(n), k), "a"]
        elif kind < 0.87 and "a" in slots and not cells.has_shift:
            k = slots["a"].size
            if k <= n:
                if rng.random() < 0.5:
                    op = ["set", rng.randint(0, n - k), "a"]
                else:
                    op = ["set_idxs", rng.sample(range(n), k), "a"]
        elif kind < 0.92 and seqs:
            op = ["tok_le", rng.choice(seqs), rng.randrange(-2, 45)]
        elif kind < 0.94 and used:
            op = ["seq_count", rng.choice(used)]
        elif kind < 0.96 and n:
            op = ["pos_in", rng.randrange(n), rng.randrange(-2, 20), rng.randrange(0, 40)]
        elif kind < 0.97:
            op = ["reset_shift"]
        elif kind < 0.98:
            op = ["reset"]
        elif kind < 0.985:
            op = ["resize", rng.choice([1, 4, 8, 16, 33])]
            slots.clear()
        if op is None:
            continue
        if op[0] == "seq_keep" and op[2] not in seqs:
            continue
        apply(cells, slots, op)
        ops.append(op)
    return {"size": size, "ops": ops}


def cases(opts: Options) -> Iterator[Case]:
    from ..reference import memory as ref

    statuses = list(MemoryStatus)
    yield Case("status/combine+is_fail",
               [[int(combine(a, b)) for b in statuses] + [a.is_fail] for a in statuses],
               [[ref.status_combine(a, b) for b in statuses] + [ref.status_is_fail(a)] for a in statuses])
    p = np.concatenate([np.arange(0, 70), [127, 128, 129, 255, 256, 257, 511, 512, 4095, 4096, 100000]])
    for t in swa.SWAType:
        for n_swa in (1, 2, 3, 4, 5, 7, 8, 32, 127, 128, 256, 4096):
            yield Case(f"swa/{t.name}/{n_swa}", swa.is_masked(n_swa, t, p[:, None], p[None, :]).tolist(),
                       ref.swa_is_masked(n_swa, int(t), p, p).tolist())
    rng = random.Random(opts.seed)
    n_programs, n_steps = (200, 60) if opts.full else (30, 40)
    for k in range(n_programs):
        program = random_program(rng, n_steps)
        yield Case(f"cells/{opts.seed}/{k}", ours(program), ref.cells_run(program))
