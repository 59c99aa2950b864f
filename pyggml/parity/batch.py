"""Parity component "batch": llama_batch_ext building, llama_batch_allocr::init and every split.

Cases: every scenario of the reference's tests/test-batch-alloc.cpp, ported as inputs only (the
expected results come from the running reference), then seeded random specs: token and
embedding batches, multi-sequence tokens, coupled sequences, M-RoPE positions, missing legacy
fields, bad token/seq ids, gaps, decreasing positions, memory ranges; each run through
split_simple, split_equal (plain, sequential, keep-tail) and split_seq at several n_ubatch.
A case compares the whole canonical result: builder return values, the entries, the init outcome
and log text, the sanitized batch, and every ubatch of every split with n_used and out_ids.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..batch import BatchAllocr, BatchExt, PosRanges, from_legacy
from ..errors import BatchError
from ..reference._canon import canon_str
from . import Case, Options

# ------------------------------------------------------------------ pyggml's side of a spec


def _apply_op(b: BatchExt, op: list) -> Any:
    name = op[0]
    if name == "add":
        return b.add_token(op[1])
    if name == "add_seq":
        return b.add_seq(op[1], op[2])
    if name == "set_id":
        return b.set_token_id(op[1], op[2])
    if name == "set_embd":
        data = None if op[4] is None else np.asarray(op[4], dtype=np.float32)
        return b.set_token_embd(op[1], data, op[2], op[3])
    if name == "set_pos":
        return b.set_token_pos(op[1], None if op[2] is None else list(op[2]) + [0] * (4 - len(op[2])))
    if name == "set_output":
        return b.set_output(op[1], op[2])
    if name == "poke_id":
        b.ids[op[1]] = op[2]
        b.invalidate()
        return None
    if name == "poke_seqs":
        b.seq_ins[op[1]] = list(dict.fromkeys(op[2]))
        b.invalidate()
        return None
    raise ValueError(f"unknown batch op {name!r}")


def ours(spec: dict[str, Any]) -> dict[str, Any]:
    """pyggml's result for ``spec``, in the probe's canonical shape."""
    mem = None if spec.get("mem") is None else PosRanges({s: (a, b) for s, a, b in spec["mem"]})
    n_embd_inp = spec.get("n_embd_inp", 2)
    ext = BatchExt(n_tokens_max=spec.get("n_tokens_max", 64), n_embd_inp=n_embd_inp,
                   n_embd_inp_enc=spec.get("n_embd_inp_enc", n_embd_inp), n_seq_max=spec.get("n_seq_max", 4),
                   mem=mem, n_vocab=spec.get("n_vocab", 0), n_pos_per_embd=spec.get("n_pos_per_embd", 1))
    out: dict[str, Any] = {}
    if "legacy" in spec:
        lg = spec["legacy"]
        from_legacy(ext, n_tokens=lg["n_tokens"], token=lg["token"], embd=lg["embd"], pos=lg["pos"],
                    n_seq_id=lg["n_seq_id"], seq_id=lg["seq_id"], logits=lg["logits"],
                    n_embd_row=spec.get("n_embd_row", 0))
    else:
        out["ops"] = [_apply_op(ext, op) for op in spec["ops"]]
        out["ops_log"] = canon_str("".join(ext.log))
    out["ext"] = ext.describe()
    ba = BatchAllocr(spec.get("n_pos_per_embd", 1))
    try:
        ba.init(ext, output_all=spec.get("output_all", False))
    except BatchError as e:
        if e.abort:
            return {"aborted": e.message.removeprefix("GGML_ASSERT(").removesuffix(") failed")}
        out["init"] = False
        out["log"] = canon_str("".join(ba.log) + e.message)
        return out
    out["init"] = True
    out["log"] = canon_str("".join(ba.log))
    out["n_tokens"] = ba.n_tokens
    out["n_outputs"] = ba.n_outputs
    # the probe lists the sequences whose positions are not all negative
    out["seq_pos"] = [[s, ba.seq_pos_min(s), ba.seq_pos_max(s)] for s in ba.seqs if ba.seq_pos_max(s) >= 0]
    out["seq_id"] = [list(s) for s in ba.seq_id]
    out["output"] = ba.output.tolist()
    splits = []
    for plan in spec.get("splits", []):
        ba.log = []
        ba.split_reset()
        n_ub = plan["n_ubatch"]
        ubs = []
        try:
            while True:
                if plan["mode"] == "simple":
                    ub = ba.split_simple(n_ub)
                elif plan["mode"] == "equal":
                    ub = ba.split_equal(n_ub, plan.get("sequential", False), plan.get("keep_tail", 0))
                else:
                    ub = ba.split_seq(n_ub)
                if ub is None:
                    break
                ubs.append(ub.describe())
        except BatchError as e:
            return {"aborted": e.message.removeprefix("GGML_ASSERT(").removesuffix(") failed")}
        splits.append({"ubatches": ubs, "n_used": ba.n_used, "out_ids": list(ba.out_ids),
                       "log": canon_str("".join(ba.log))})
    out["splits"] = splits
    return out


# ------------------------------------------------------------------ the ported reference tests


def _std_splits() -> list[dict[str, Any]]:
    return [{"mode": "simple", "n_ubatch": 2}, {"mode": "simple", "n_ubatch": 10},
            {"mode": "equal", "n_ubatch": 4}, {"mode": "equal", "n_ubatch": 4, "sequential": True},
            {"mode": "equal", "n_ubatch": 8}, {"mode": "seq", "n_ubatch": 8}, {"mode": "seq", "n_ubatch": 1}]


def _row(i: int, width: int) -> list[float]:
    return [100.0 * i + k for k in range(width)]


def _add(ops: list, idx: int, p: int | list[int], seqs: list[int], output: bool, width: int = 2) -> None:
    # tests/test-batch-alloc.cpp batch_builder::add / add_embd
    ops.append(["add", seqs[0]])
    ops.extend(["add_seq", idx, s] for s in seqs[1:])
    ops.append(["set_embd", idx, 1, width, _row(idx, width)])
    ops.append(["set_pos", idx, p if isinstance(p, list) else [p]])
    ops.append(["set_output", idx, output])


def _spec(ops: list, **kw: Any) -> dict[str, Any]:
    spec = {"n_tokens_max": 64, "n_embd_inp": 2, "n_seq_max": 4, "n_vocab": 0, "n_pos_per_embd": 1,
            "mem": None, "output_all": False, "ops": ops, "splits": _std_splits()}
    spec.update(kw)
    return spec


def _seq_batch(entries: list[tuple[int, list[int], bool]], **kw: Any) -> dict[str, Any]:
    ops: list = []
    for i, (p, seqs, o) in enumerate(entries):
        _add(ops, i, p, seqs, o)
    return _spec(ops, **kw)


def _keep_tail_batch(lengths: list[int], n_ubatch: int, sequential: bool,
                     n_seq_max: int = 4) -> dict[str, Any]:
    entries = [(i, [s], i == n - 1) for s, n in enumerate(lengths) for i in range(n)]
    spec = _seq_batch(entries, n_seq_max=n_seq_max)
    spec["splits"] = _std_splits() + [{"mode": "equal", "n_ubatch": n_ubatch, "sequential": sequential,
                                       "keep_tail": 2}]
    return spec


def ported() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every scenario of tests/test-batch-alloc.cpp, as specs."""
    yield "init/rejects_n_seq_max_too_large", _seq_batch([(0, [0], True)], n_seq_max=257)
    base = [["add", 0], ["set_pos", 0, [0]], ["set_output", 0, True], ["set_id", 0, 0]]
    yield "init/rejects_invalid_token/too_large", _spec(base + [["poke_id", 0, 0]])
    yield "init/rejects_invalid_token/negative", _spec(base + [["poke_id", 0, -1]])
    yield "init/add_token_refuses_bad_seq", _spec([["add", 4], ["add", -1]] + _ops_one(0))
    for bad in (4, -1):
        ops: list = []
        _add(ops, 0, 0, [0], True)
        yield f"init/rejects_invalid_seq_id/{bad}", _spec(ops + [["poke_seqs", 0, [bad]]])
    yield "init/copies_pos_seq_output", _seq_batch([(i, [0], i == 3) for i in range(4)])
    yield "init/output_all", _seq_batch([(i, [0], False) for i in range(4)], output_all=True)
    yield "init/explicit_logits", _seq_batch([(0, [0], True), (1, [0], False), (2, [0], True)])
    yield "init/pos_after_memory", _seq_batch([(10 + i, [0], False) for i in range(3)], mem=[[0, 0, 9]])
    for name, ps in (("accepted", (10, 11)), ("gap", (11, 12)), ("overlap", (9, 10))):
        yield f"init/pos_continuity_with_memory/{name}", _seq_batch(
            [(ps[0], [0], False), (ps[1], [0], True)], mem=[[0, 0, 9]])
    yield "init/rejects_non_continuous_positions", _seq_batch(
        [(0, [0], False), (1, [0], False), (3, [0], True)])
    pos, seq = [4, 5, 0, 1, 6, 2, 3], [0, 0, 1, 1, 0, 1, 0]
    yield "init/rejects_decreasing_positions", _seq_batch([(pos[i], [seq[i]], False) for i in range(7)])
    yield "init/allows_equal_positions_in_seq", _seq_batch([(0, [0], False), (0, [0], False), (1, [0], True)])
    yield "init/rejects_coupled_diverged_seqs", _seq_batch([(6, [0, 1], True)], mem=[[0, 0, 5], [1, 2, 5]])
    yield "init/coupled_not_diverged", _seq_batch([(6, [0, 1], True)], mem=[[0, 0, 5], [1, 0, 5]])

    yield "content/token_and_embd_together", _spec(
        [["add", 0], ["set_id", 0, 3], ["set_embd", 0, 1, 2, _row(0, 2)], ["set_pos", 0, [0]],
         ["set_output", 0, True]], n_vocab=10)
    yield "content/rejects_mixed_content_types", _spec(
        [["add", 0], ["set_id", 0, 1], ["set_pos", 0, [0]], ["add", 0], ["set_id", 1, 2],
         ["set_embd", 1, 1, 2, _row(1, 2)], ["set_pos", 1, [1]], ["set_output", 1, True]], n_vocab=10)
    yield "content/rejects_neither_token_nor_embd", _spec(
        [["add", 0], ["set_pos", 0, [0]], ["set_output", 0, True]])
    r8 = _row(0, 8)
    yield "content/rejects_embd_size_mismatch", _spec(
        [["add", 0], ["set_embd", 0, 1, 1, r8], ["set_embd", 0, 1, 3, r8], ["set_embd", 0, 0, 2, r8],
         ["set_embd", 0, 1, 2, None], ["set_embd", 0, 2, 1, r8], ["set_pos", 0, [0]]])
    ops = []
    _add(ops, 0, 0, [0], True)
    yield "content/rejects_double_embd", _spec(ops + [["set_embd", 0, 1, 2, _row(0, 2)]])
    ops = []
    _add(ops, 0, [0], [0], False, 6)
    _add(ops, 1, [1], [0], True, 6)
    yield "content/encoder_width", _spec(ops, n_embd_inp_enc=6)
    ops = []
    _add(ops, 0, [0], [0], False, 2)
    yield "content/rejects_mixing_widths", _spec(ops + [["add", 0], ["set_embd", 1, 1, 6, _row(1, 6)]],
                                                 n_embd_inp_enc=6)

    yield "split/simple_chunks", _seq_batch([(i, [0], i == 4) for i in range(5)])
    yield "split/reset_allows_resplit", _seq_batch([(i, [0], i == 2) for i in range(3)])
    yield "split/equal_unequal_lengths", _seq_batch([(i, [0], i == 3) for i in range(4)]
                                                    + [(i, [1], i == 1) for i in range(2)])
    yield "split/equal_coupled", _seq_batch([(0, [0, 1], False), (1, [0, 1], True)])
    yield "split/seq_per_sequence", _seq_batch([(p, [s], p == 1) for s in range(3) for p in range(2)])
    yield "split/equal_overshoot", _seq_batch([(0, [s], True) for s in range(3)]) | {
        "splits": [{"mode": "equal", "n_ubatch": 2}, {"mode": "equal", "n_ubatch": 2, "sequential": True}]}

    yield "keep_tail/noop_when_seqs_complete", _keep_tail_batch([2, 2], 4, False)
    yield "keep_tail/defers_seq_with_short_remainder", _keep_tail_batch([2, 3], 4, True)
    yield "keep_tail/completes_first_seq_when_all_violate", _keep_tail_batch([3, 3], 4, False)
    yield "keep_tail/truncates_to_preserve_tail", _keep_tail_batch([5], 4, False)
    yield "keep_tail/keeps_full_ubatch_with_sufficient_remainder", _keep_tail_batch([6], 4, False)
    yield "keep_tail/multi_seq_prefix_kept", _keep_tail_batch([3, 4], 6, True, n_seq_max=6)
    yield "keep_tail/assert_n_ubatch_gt_keep_tail", _keep_tail_batch([3], 2, False) | {
        "splits": [{"mode": "equal", "n_ubatch": 2, "keep_tail": 2}]}

    ops = []
    _add(ops, 0, [10, 5, 7, 0], [0], False)
    _add(ops, 1, [11, 6, 8, 0], [0], True)
    yield "mrope/pos_layout_and_split", _spec(ops, n_pos_per_embd=4)
    for p0 in (15, 9, 8):
        ops = []
        _add(ops, 0, [p0, 1, 1, 0], [0], True)
        yield f"mrope/pos_jump_allowed/{p0}", _spec(ops, n_pos_per_embd=4, mem=[[0, 0, 9]])

    yield "compat/token_batch_explicit_fields", _legacy(
        3, token=[5, 6, 7], pos=[3, 4, 5], n_seq_id=[1, 1, 2], seq_id=[[1], [1], [1, 2]], logits=[0, 1, 0],
        n_vocab=100)
    yield "compat/defaults_for_null_fields", _legacy(3, token=[5, 6, 7], n_vocab=100, mem=[[0, 0, 9]])
    yield "compat/auto_pos_starts_at_zero_without_memory", _legacy(2, token=[5, 6], n_vocab=100)
    yield "compat/auto_pos_is_tracked_per_seq", _legacy(
        4, token=[5, 6, 7, 8], n_seq_id=[1, 1, 1, 1], seq_id=[[0], [1], [0], [1]], n_vocab=100,
        mem=[[0, 0, 9]])
    yield "compat/embd_batch_with_mrope_positions", _legacy(
        2, embd=[0, 1, 100, 101], pos=[10, 11, 5, 6, 7, 8, 0, 0], n_pos_per_embd=4)
    yield "compat/token_and_embd_both_set", _legacy(
        2, token=[5, 6], embd=[0, 1, 100, 101], pos=[3, 4], n_vocab=100)
    yield "compat/embd_row_width_override", _legacy(
        2, embd=[float(i) for i in range(12)], n_embd_inp_enc=6, n_embd_row=6)
    yield "compat/seq_order_0_1", _legacy(
        2, token=[1, 2], n_seq_id=[2, 2], seq_id=[[0, 1], [0, 1]], n_vocab=10)
    yield "compat/empty_batch", _legacy(0, token=[], n_vocab=10)


def _ops_one(idx: int) -> list:
    ops: list = []
    _add(ops, idx, 0, [0], True)
    return ops


def _legacy(n: int, *, token=None, embd=None, pos=None, n_seq_id=None, seq_id=None, logits=None,
            n_embd_row: int = 0, **kw: Any) -> dict[str, Any]:
    spec = _spec([], **kw)
    del spec["ops"]
    spec["legacy"] = {"n_tokens": n, "token": token, "embd": embd, "pos": pos, "n_seq_id": n_seq_id,
                      "seq_id": seq_id, "logits": logits}
    spec["n_embd_row"] = n_embd_row
    return spec


# ------------------------------------------------------------------ random specs


def random_spec(rng: random.Random) -> dict[str, Any]:
    """A random legacy or builder batch with memory ranges and split plans; mostly valid batches
    (so the splits get exercised), with a share of every kind of defect."""
    if rng.random() < 0.1:
        return _seq_order_spec(rng)
    n_seq_max = rng.choice([1, 2, 3, 4, 8, 16, 64, 256, 1, 2, 3, 4, 8, 16, 64, 256, 257])
    n_vocab = rng.choice([10, 100, 32000])
    n_pos = rng.choice([1, 1, 1, 3, 4])
    n_embd = rng.choice([1, 2, 3])
    embd_batch = rng.random() < 0.3
    both = not embd_batch and rng.random() < 0.05
    n_seqs_used = min(rng.choice([1, 2, 3, 4, 8]), max(1, min(n_seq_max, 256)))
    seqs = rng.sample(range(min(n_seq_max, 256)), n_seqs_used)
    n = rng.choice([1, 2, 3, 5, 8, 13, 32])
    # memory: some sequences already hold positions
    mem = None
    if rng.random() < 0.6:
        mem = []
        for s in seqs:
            if rng.random() < 0.5:
                lo = rng.choice([0, 0, 1, 3])
                mem.append([s, lo, lo + rng.randrange(0, 12)])
    next_pos = {s: 0 for s in seqs}
    if mem:
        for s, _, hi in mem:
            next_pos[s] = hi + 1
    tok_seqs: list[list[int]] = []
    positions: list[int] = []
    coupled = rng.random() < 0.25
    for _ in range(n):
        if coupled and rng.random() < 0.5:
            k = rng.randint(2, min(4, len(seqs))) if len(seqs) >= 2 else 1
            group = sorted(rng.sample(seqs, k)) if rng.random() < 0.8 else rng.sample(seqs, k)
        else:
            group = [rng.choice(seqs)]
        tok_seqs.append(group)
        p = max(next_pos[s] for s in group)
        for s in group:
            next_pos[s] = p + 1
        positions.append(p)
    # defects
    d = rng.random()
    if d < 0.05 and n > 1:
        positions[rng.randrange(n)] += rng.choice([-2, 1, 3])
    elif d < 0.08:
        tok_seqs[rng.randrange(n)] = [rng.choice([-1, n_seq_max, n_seq_max + 3])]
    elif d < 0.10 and mem:
        mem[0][2] += rng.choice([-1, 1])
    elif d < 0.12:
        positions = positions[::-1]
    if rng.random() < 0.3:
        # interleave the sequences' tokens in a random order (positions stay per-seq increasing
        # only when the shuffle keeps each seq's order; otherwise a "decreasing" rejection)
        order = list(range(n))
        if rng.random() < 0.5:
            order.sort(key=lambda i: (rng.random() < 0.5, i))
        else:
            rng.shuffle(order)
        tok_seqs = [tok_seqs[i] for i in order]
        positions = [positions[i] for i in order]
    tokens = [rng.randrange(n_vocab) for _ in range(n)]
    if rng.random() < 0.04:
        tokens[rng.randrange(n)] = rng.choice([-1, n_vocab, -5])
    outputs = [rng.random() < 0.3 for _ in range(n)]
    rows = [[round(rng.uniform(-2, 2), 3) for _ in range(n_embd)] for _ in range(n)]
    mpos = [[p, rng.randrange(8), rng.randrange(8), 0] for p in positions]

    spec: dict[str, Any] = {"n_tokens_max": 64, "n_embd_inp": n_embd, "n_seq_max": n_seq_max,
                            "n_vocab": n_vocab, "n_pos_per_embd": n_pos, "mem": mem,
                            "output_all": rng.random() < 0.1}
    if rng.random() < 0.5:
        # the legacy llama_batch path, with some fields left NULL
        # an auto position for a token whose first seq id is out of range indexes the
        # reference's pos_next out of bounds (undefined behaviour: garbage or a heap abort), so
        # such batches always carry positions; pyggml rejects them (tests/batch cover it)
        auto_pos = rng.random() < 0.3 and all(0 <= g[0] < n_seq_max for g in tok_seqs)
        lg: dict[str, Any] = {
            "n_tokens": n,
            "token": None if embd_batch else tokens,
            "embd": [v for r in rows for v in r] if (embd_batch or both) else None,
            "pos": None if auto_pos else (
                [mpos[i][j] for j in range(n_pos) for i in range(n)] if embd_batch else positions),
            "n_seq_id": None, "seq_id": None,
            "logits": None if rng.random() < 0.3 else [int(o) for o in outputs],
        }
        if not (rng.random() < 0.15 and all(g == [0] for g in tok_seqs)):
            lg["n_seq_id"] = [len(g) for g in tok_seqs]
            lg["seq_id"] = tok_seqs
        spec["legacy"] = lg
    else:
        ops: list = []
        for i in range(n):
            g = tok_seqs[i]
            bad = [s for s in g if not 0 <= s < n_seq_max]
            ops.append(["add", seqs[0] if g[0] in bad else g[0]])
            ops.extend(["add_seq", i, s] for s in g[1:])  # a refused id returns False
            if bad:
                ops.append(["poke_seqs", i, g])  # reach init()'s own seq id check
            if embd_batch or both:
                ops.append(["set_embd", i, 1, n_embd, rows[i]])
            if not embd_batch:
                ops.append(["set_id", i, tokens[i]])
                if tokens[i] < 0 or tokens[i] >= n_vocab:
                    ops.append(["poke_id", i, tokens[i]])
            ops.append(["set_pos", i, mpos[i][:n_pos] if embd_batch else [positions[i]]])
            ops.append(["set_output", i, outputs[i]])
        spec["ops"] = ops
    plans = []
    for _ in range(rng.randint(1, 4)):
        mode = rng.choice(["simple", "equal", "equal", "seq"])
        plan: dict[str, Any] = {"mode": mode, "n_ubatch": rng.choice([1, 2, 3, 4, 7, 16, 512])}
        if mode == "equal":
            plan["sequential"] = rng.random() < 0.4
            if rng.random() < 0.2:
                # keep_tail >= n_ubatch aborts the reference: only now and then
                hi = 3 if rng.random() < 0.02 else min(3, plan["n_ubatch"] - 1)
                if hi >= 1:
                    plan["keep_tail"] = rng.randint(1, hi)
        plans.append(plan)
    spec["splits"] = plans
    return spec


def _seq_order_spec(rng: random.Random) -> dict[str, Any]:
    # tokens shared by many sequences, listed in random orders: the ubatch seq_id order is the
    # reference's unordered_set iteration order, including its rehashes at 14, 30, 60, 128 ids
    k = rng.choice([2, 3, 5, 13, 14, 15, 29, 30, 31, 59, 60, 61, 127, 128, 200, 256])
    group = rng.sample(range(256), k)
    n = rng.randint(1, 3)
    rows = []
    for _ in range(n):
        r = group[:]
        rng.shuffle(r)
        if rng.random() < 0.3:
            r = r + r[: rng.randint(1, k)]  # duplicates are dropped by the set
        rows.append(r)
    lg = {"n_tokens": n, "token": [rng.randrange(10) for _ in range(n)], "embd": None,
          "pos": list(range(n)), "n_seq_id": [len(r) for r in rows], "seq_id": rows, "logits": None}
    return {"n_tokens_max": 64, "n_embd_inp": 2, "n_seq_max": 256, "n_vocab": 10, "n_pos_per_embd": 1,
            "mem": None, "output_all": False, "legacy": lg,
            "splits": [{"mode": "equal", "n_ubatch": 4}, {"mode": "simple", "n_ubatch": 2}]}


def _case(name: str, spec: dict[str, Any]) -> Case:
    from ..reference import batch as ref

    return Case(name, ours(spec), ref.run(spec))


def cases(opts: Options) -> Iterator[Case]:
    for name, spec in ported():
        yield _case(f"test-batch-alloc/{name}", spec)
    rng = random.Random(opts.seed)
    n = 20000 if opts.full else 600
    for k in range(n):
        yield _case(f"random/{opts.seed}/{k}", random_spec(rng))
