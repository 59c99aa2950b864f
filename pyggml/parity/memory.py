"""Parity component "memory": model-based differential testing of llama_kv_cache's bookkeeping.

Random programs of decodes (a llama_batch validated against the cache, split as init_batch does,
slots found by prepare, then per ubatch apply_ubatch, n_kv and the KQ mask) and sequence
operations (seq_rm, seq_cp, seq_keep, seq_add, seq_div, clear) run on pyggml's KVCache and on a
reference llama_kv_cache built without a model (tools/paritychecker/probe/probe_kv.cpp).  After
every step the whole state is compared: each stream's cells (pos, shift, ext, seq sets, used
count and bounds, per-seq (pos, cell) index), per-seq pos min/max, has_shift; and for every
decode the outcome, log text, each ubatch's slot (streams, cell indices), n_kv and mask bytes.
Configurations: unified and per-sequence streams, n_seq_max 1/4/16, SWA none/standard/chunked/
symmetric, causal or not, F32/F16 masks, ALiBi.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from ..batch import BatchAllocr, BatchExt, from_legacy
from ..errors import BatchError
from ..memory.kv_cache import KVCache
from ..reference._canon import canon_str
from . import Case, Options


def _decode(kv: KVCache, cfg: dict[str, Any], lg: dict[str, Any], n_ubatch: int) -> dict[str, Any]:
    ext = BatchExt(n_tokens_max=4096, n_embd_inp=2, n_seq_max=cfg["n_seq_max"], mem=kv,
                   n_vocab=cfg.get("n_vocab", 32000))
    n = len(lg["token"])
    rows = lg["seq_id"]
    from_legacy(ext, n_tokens=n, token=lg["token"], pos=lg["pos"],
                n_seq_id=None if rows is None else [len(r) for r in rows], seq_id=rows, logits=lg["logits"])
    ba = BatchAllocr(1)
    res: dict[str, Any] = {}
    try:
        ba.init(ext)
    except BatchError as e:
        res["init"] = False
        res["log"] = canon_str("".join(ba.log) + e.message)
        return res
    res["init"] = True
    res["log"] = canon_str("".join(ba.log))
    kv.log = []
    status, sinfos, ubs = kv.init_batch(ba, n_ubatch)
    res["split_log"] = canon_str("".join(ba.log))
    if ba.n_used < ba.n_tokens:
        res["status"] = "failed_prepare"
        return res
    res["prepare_log"] = canon_str("".join(kv.log))
    if status.is_fail:
        res["status"] = "failed_prepare"
        return res
    res["status"] = "success"
    out = []
    for si, ub in zip(sinfos, ubs, strict=True):
        kv.log = []
        kv.apply_ubatch(si, ub)
        n_kv = kv.get_n_kv(si)
        mask = kv.kq_mask(ub, n_kv, len(si.strm), causal=cfg.get("causal", True), f16=cfg.get("f16", False))
        out.append({**si.describe(), "n_kv": n_kv, "mask": mask.tobytes().hex(),
                    "log": canon_str("".join(kv.log))})
    res["ubatches"] = out
    return res


def ours(spec: dict[str, Any]) -> dict[str, Any]:
    cfg = spec["config"]
    kv = KVCache(kv_size=cfg["kv_size"], n_seq_max=cfg["n_seq_max"], unified=cfg.get("unified", True),
                 n_swa=cfg.get("n_swa", 0), swa_type=cfg.get("swa_type", 0), alibi=cfg.get("alibi", False))
    steps = []
    for op in spec["ops"]:
        name = op[0]
        r: Any = None
        if name == "decode":
            r = _decode(kv, cfg, op[1], op[2])
        elif name == "seq_rm":
            r = kv.seq_rm(*op[1:])
        elif name == "clear":
            kv.clear()
        else:
            getattr(kv, name)(*op[1:])
        steps.append({"result": r, "state": kv.describe()})
    return {"steps": steps}


CONFIGS = [
    {"unified": True, "n_seq_max": 1},
    {"unified": True, "n_seq_max": 4},
    {"unified": False, "n_seq_max": 4},
    {"unified": True, "n_seq_max": 16},
    {"unified": False, "n_seq_max": 16},
]


def random_config(rng: random.Random) -> dict[str, Any]:
    cfg = dict(rng.choice(CONFIGS))
    cfg["kv_size"] = rng.choice([8, 16, 32, 64, 300])
    swa_type = rng.choice([0, 0, 1, 2, 3])
    cfg["swa_type"] = swa_type
    cfg["n_swa"] = rng.choice([2, 4, 8, 16]) if swa_type else 0
    cfg["causal"] = rng.random() < 0.8
    cfg["f16"] = rng.random() < 0.3
    cfg["alibi"] = rng.random() < 0.1
    cfg["n_vocab"] = 1000
    return cfg


def random_program(rng: random.Random, cfg: dict[str, Any], n_steps: int) -> dict[str, Any]:
    """Mostly valid decodes continuing each sequence, mixed with sequence operations.  Only
    calls the reference accepts without aborting (seq ids in range, full-range cross-stream
    copies, seq_div by >= 1)."""
    n_seq = cfg["n_seq_max"]
    seqs = list(range(min(n_seq, 6)))
    kv = KVCache(kv_size=cfg["kv_size"], n_seq_max=n_seq, unified=cfg["unified"], n_swa=cfg["n_swa"],
                 swa_type=cfg["swa_type"], alibi=cfg["alibi"])
    ops: list[list] = []
    for _ in range(n_steps):
        r = rng.random()
        if r < 0.55:
            active = rng.sample(seqs, rng.randint(1, len(seqs)))
            toks, pos, sids = [], [], []
            nxt = {s: kv.seq_pos_max(s) + 1 for s in active}
            shared = cfg["unified"] and len(active) > 1 and rng.random() < 0.15
            for s in active:
                k = rng.choice([1, 1, 2, 3, 5, 8])
                for _ in range(k):
                    toks.append(rng.randrange(1000))
                    pos.append(nxt[s])
                    sids.append([s])
                    nxt[s] += 1
            if rng.random() < 0.3 and len(active) > 1:
                # interleave the sequences, each keeping its order
                queues = [[k for k in range(len(toks)) if sids[k] == [s]] for s in active]
                order = []
                while any(queues):
                    q = rng.choice([q for q in queues if q])
                    order.append(q.pop(0))
                toks, pos, sids = [toks[k] for k in order], [pos[k] for k in order], [sids[k] for k in order]
            if shared and all(kv.seq_pos_min(s) == kv.seq_pos_min(active[0]) and
                              kv.seq_pos_max(s) == kv.seq_pos_max(active[0]) for s in active):
                p = max(kv.seq_pos_max(s) for s in active) + 1
                toks, pos, sids = [rng.randrange(1000)], [p], [list(active)]
            if rng.random() < 0.05 and pos:
                # a rejected batch now and then; never a negative position: the reference accepts
                # -1 (a lone token of a fresh sequence) and then stores it as an "empty" cell that
                # still holds a sequence (corrupt state), where pyggml raises
                k = rng.randrange(len(pos))
                pos[k] = max(0, pos[k] + rng.choice([-1, 2]))
            lg = {"token": toks, "pos": None if rng.random() < 0.2 and len(active) == 1 else pos,
                  "seq_id": sids, "logits": None}
            op = ["decode", lg, rng.choice([1, 2, 3, 4, 8, 512])]
        elif r < 0.65:
            op = ["seq_rm", rng.choice(seqs + [-1]), rng.randrange(-1, 20), rng.randrange(-1, 30)]
        elif r < 0.72:
            a, b = rng.choice(seqs), rng.choice(seqs)
            if kv.seq_to_stream[a] != kv.seq_to_stream[b]:
                op = ["seq_cp", a, b, -1, -1]
            else:
                op = ["seq_cp", a, b, rng.randrange(-1, 10), rng.randrange(-1, 30)]
        elif r < 0.76:
            op = ["seq_keep", rng.choice(seqs)]
        elif r < 0.86:
            p0, p1 = rng.randrange(-1, 10), rng.randrange(-1, 30)
            op = ["seq_add", rng.choice(seqs), p0, p1, rng.randint(-8, 8)]
        elif r < 0.92:
            p0, p1 = rng.randrange(-1, 10), rng.randrange(-1, 30)
            op = ["seq_div", rng.choice(seqs), p0, p1, rng.randint(1, 4)]
        elif r < 0.94:
            op = ["clear"]
        else:
            # keep the cache from filling up for good
            op = ["seq_rm", -1, -1, -1] if rng.random() < 0.3 else ["seq_rm", rng.choice(seqs), -1, -1]
        _apply_for_generation(kv, cfg, op)
        ops.append(op)
    return {"config": cfg, "ops": ops}


def _apply_for_generation(kv: KVCache, cfg: dict[str, Any], op: list) -> None:
    if op[0] == "decode":
        _decode(kv, cfg, op[1], op[2])
    elif op[0] == "clear":
        kv.clear()
    else:
        getattr(kv, op[0])(*op[1:])


def cases(opts: Options) -> Iterator[Case]:
    from ..reference import memory as ref

    rng = random.Random(opts.seed)
    n_programs, n_steps = (600, 40) if opts.full else (25, 25)
    for k in range(n_programs):
        cfg = random_config(rng)
        spec = random_program(rng, cfg, n_steps)
        yield Case(f"kv/{opts.seed}/{k}", ours(spec), ref.kv_run(spec))

