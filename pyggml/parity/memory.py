"""Parity component "memory": model-based differential testing of the reference's memories.

Random programs of decodes (a llama_batch validated against the memory, split as its init_batch
does, slots found by prepare, then per ubatch the placement, n_kv and the KQ mask), sequence
operations (seq_rm, seq_cp, seq_keep, seq_add, seq_div, clear), updates (stream copies and the
K-shift bookkeeping, with their memory status) and can_shift run on pyggml and on the reference
(tools/paritychecker/probe/probe_kv.cpp), on three memory kinds built without model weights:

- ``kv``: llama_kv_cache (one cache, optionally with an SWA type);
- ``iswa``: llama_kv_cache_iswa (base + SWA caches sized by its constructor, swa_full on/off);
- ``recurrent``: llama_memory_recurrent (state cells, tails, rollback snapshots).

After every step the whole state is compared: every stream's cells (pos, shift, ext, seq sets,
used count and bounds, the per-seq (pos, cell) index), per-seq pos min/max, has_shift (recurrent:
every cell's pos/src/src0/tail/seq set, head, used, n, rs_z, rs_idx); for every decode the outcome,
log text, each ubatch's slots, n_kv and mask bytes.  ``layout`` cases compare the context sizing
(n_ctx, n_ctx_seq, n_batch, n_ubatch, KV cache size, streams) on a tiny real model, and the iSWA
cache sizes.

Configurations (``CONFIG_DIMS``): unified / per-sequence streams x n_seq_max 1, 4, 16 x SWA
none / standard / chunked / symmetric x swa_full off / on.  ``--full`` runs every configuration of
that product with >= 10,000 steps each (``FULL_STEPS_PER_CONFIG``).

Programs of the configuration product are compared in digest mode (``"digest": true``: each
step's state and each KQ mask as [length, crc32] of the packed words/bytes, the same packing on
both sides, see ``state_digest`` and probe_kv.cpp ``kv_words``); pyggml's outcome is recorded
while the program is generated.  A program whose digests differ is rerun with the full dumps on
both sides, so a mismatch is reported field by field.

Calls pyggml refuses while the recurrent programs and the context sizings are generated (where
the reference asserts) are left out of them and each compared on its own (``refused.*``): the
reference runs the program up to that call in a forked child and must abort on the assert
pyggml's error names; a reference that returns is a mismatch.
"""

from __future__ import annotations

import itertools
import random
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..batch import BatchAllocr, BatchExt, from_legacy
from ..errors import BatchError, PyggmlError
from ..memory.api import MemoryError_, context_sizes
from ..memory.iswa import KVCacheISWA, swa_size
from ..memory.kv_cache import KVCache
from ..memory.recurrent import MemoryRecurrent
from ..reference._canon import canon_str
from . import Case, Options

Mem = KVCache | KVCacheISWA | MemoryRecurrent
# calls pyggml refused while generating: (the spec up to and including the call, pyggml's error)
Refused = list[tuple[dict[str, Any], PyggmlError]]


# ---------------------------------------------------------------------------------------------
# pyggml side


def _alloc(mem: Mem, cfg: dict[str, Any], lg: dict[str, Any]) -> tuple[BatchAllocr, dict[str, Any]]:
    ext = BatchExt(n_tokens_max=4096, n_embd_inp=2, n_seq_max=cfg["n_seq_max"], mem=mem,
                   n_vocab=cfg.get("n_vocab", 32000))
    rows = lg["seq_id"]
    from_legacy(ext, n_tokens=len(lg["token"]), token=lg["token"], pos=lg["pos"],
                n_seq_id=None if rows is None else [len(r) for r in rows], seq_id=rows, logits=lg["logits"])
    ba = BatchAllocr(1)
    res: dict[str, Any] = {}
    try:
        ba.init(ext)
    except BatchError as e:
        res["init"] = False
        res["log"] = canon_str("".join(ba.log) + e.message)
        return ba, res
    res["init"] = True
    res["log"] = canon_str("".join(ba.log))
    return ba, res


def _mask_out(mask: np.ndarray, digest: bool) -> Any:
    """A KQ mask as the probe writes it: hex of its bytes, or [n_bytes, crc32] in digest mode."""
    if digest:
        return [mask.nbytes, zlib.crc32(mask)]
    return mask.tobytes().hex()


def _decode(kv: KVCache, cfg: dict[str, Any], lg: dict[str, Any], n_ubatch: int,
            digest: bool = False) -> dict[str, Any]:
    ba, res = _alloc(kv, cfg, lg)
    if not res["init"]:
        return res
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
        out.append({**si.describe(), "n_kv": n_kv, "mask": _mask_out(mask, digest),
                    "log": canon_str("".join(kv.log))})
    res["ubatches"] = out
    return res


def _decode_iswa(mem: KVCacheISWA, cfg: dict[str, Any], lg: dict[str, Any], n_ubatch: int,
                 digest: bool = False) -> dict[str, Any]:
    ba, res = _alloc(mem, cfg, lg)
    if not res["init"]:
        return res
    # one list for the allocator's and both caches' messages: the reference logs them in order
    n0 = len(ba.log)
    mem.base.log = mem.swa.log = ba.log
    b = mem.init_batch(ba, n_ubatch)
    mem.base.log, mem.swa.log = [], []
    res["status"] = b.status.name.lower()
    res["prepare_log"] = canon_str("".join(ba.log[n0:]))
    if b.status.is_fail:
        return res
    causal, f16 = cfg.get("causal", True), cfg.get("f16", False)
    out = []
    while True:
        mem.base.log, mem.swa.log = [], []
        ub = mem.apply(b)
        ns = 1 if mem.unified else ub.n_seqs_unq
        masks = [_mask_out(c.kq_mask(ub, n, ns, causal=causal, f16=f16), digest)
                 for c, n in zip(mem.caches, b.n_kv, strict=True)]
        out.append({"n_tokens": ub.n_tokens, "n_kv": list(b.n_kv), "mask": masks,
                    "log": canon_str("".join(mem.base.log) + "".join(mem.swa.log))})
        if not mem.next(b):
            break
    res["ubatches"] = out
    return res


def _decode_rec(mem: MemoryRecurrent, cfg: dict[str, Any], lg: dict[str, Any], n_ubatch: int,
                embd_all: bool) -> dict[str, Any]:
    ba, res = _alloc(mem, cfg, lg)
    if not res["init"]:
        return res
    n0 = len(ba.log)
    mem.log = ba.log
    status, ubs = mem.init_batch(ba, n_ubatch, embd_all)
    mem.log = []
    res["status"] = status.name.lower()
    res["prepare_log"] = canon_str("".join(ba.log[n0:]))
    if status.is_fail:
        return res
    out = []
    for ub in ubs:
        mem.log = []
        mem.find_slot(ub)
        out.append({"n_tokens": ub.n_tokens, "head": mem.head, "n_rs": mem.n, "rs_z": mem.rs_z,
                    "log": canon_str("".join(mem.log))})
    res["ubatches"] = out
    mem.log = []
    return res


def _update(mem: Mem) -> dict[str, Any]:
    if isinstance(mem, MemoryRecurrent):
        return {"status": mem.init_update().name.lower()}
    up = mem.init_update()
    r: dict[str, Any] = {"status": up.status.name.lower()}
    if up.status.name == "SUCCESS":
        r["applied"] = up.apply()
    return r


def _cells_state(c) -> dict[str, Any]:
    """A cache stream's cells as the probe dumps them in programs: the used cells only, as
    [i, pos, shift, x, y, tok, [seqs]], plus the counts, bounds and per-seq (pos, cell) index
    (the full per-cell dump is checked by the kv_cells component)."""
    idx = np.flatnonzero(c.pos != -1)
    cols, rows = np.nonzero(c.seq_t[:, idx])  # (seq, used-cell rank) pairs, by seq then cell
    seqs: list[list[int]] = [[] for _ in range(idx.size)]
    for r, sq in zip(rows.tolist(), cols.tolist(), strict=True):
        seqs[r].append(sq)  # seq-major order: each cell's list comes out increasing
    il = idx.tolist()
    cells = [[i, p, sh, x, y, t, sq] for i, p, sh, x, y, t, sq in zip(
        il, c.pos[idx].tolist(), c.shift[idx].tolist(), c.ext_x[idx].tolist(), c.ext_y[idx].tolist(),
        c.ext_tok[idx].tolist(), seqs, strict=True)]
    seq_pos = []
    for sq in np.unique(cols).tolist():
        cs = idx[rows[cols == sq]]
        ps = c.pos[cs]
        o = np.lexsort((cs, ps))
        pairs = [[p, q] for p, q in zip(ps[o].tolist(), cs[o].tolist(), strict=True)]
        # the bounds as pyggml's own accessors answer them (the pairs are the cells' index)
        seq_pos.append([sq, c.seq_pos_min(sq), c.seq_pos_max(sq), pairs])
    # the used counters as pyggml keeps them (not recounted from the cells)
    return {"size": c.size, "used": c.get_used(), "used_min": c.used_min(),
            "used_max_p1": c.used_max_p1(), "has_shift": c.has_shift, "cells": cells,
            "seq_pos": seq_pos}


def _kv_state(kv: KVCache) -> dict[str, Any]:
    streams = [_cells_state(c) for c in kv.cells]
    return {"streams": streams,
            "seq_pos": [[kv.seq_pos_min(s), kv.seq_pos_max(s)] for s in range(kv.n_seq_max)],
            "has_shift": kv.has_shift}


def state(mem: Mem) -> dict[str, Any]:
    """The probe's state dump of a memory."""
    if isinstance(mem, KVCacheISWA):
        return {"base": _kv_state(mem.base), "swa": _kv_state(mem.swa),
                "seq_pos": [[mem.seq_pos_min(s), mem.seq_pos_max(s)] for s in range(mem.n_seq_max)]}
    if isinstance(mem, KVCache):
        return _kv_state(mem)
    return mem.describe()


# ---- digest mode: the state packed as int32 words (probe_kv.cpp cells_words / kv_words), compared
# as [n_words, crc32]; the same information as the dumps above, without building them

def _cells_words(c) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """One stream with used cells: its words (as parts to concatenate), and the present seqs with
    their min/max."""
    pos = c.pos
    idx = np.flatnonzero(pos != -1)
    n = idx.size
    head = np.array([c.size, n, idx[0], idx[-1] + 1, c.has_shift, n], np.int32)
    rows = c.seqs_present()
    if rows.size == 1:
        # one sequence in the stream (per-sequence streams, n_seq_max 1): every used cell holds
        # it, or the general path below finds the one that does not
        s = int(rows[0])
        if c.seq_t[s, idx].all():
            pu = pos[idx]
            o = np.argsort(pu, kind="stable")  # (pos, cell): the cells are increasing already
            pp = pu[o]
            mins, maxs = pp[:1], pp[-1:]
            parts = [head, idx, pu, c.shift[idx], c.ext_x[idx], c.ext_y[idx], c.ext_tok[idx],
                     np.ones(n, np.int32), np.full(n, s, np.int32),
                     np.array([1, s, mins[0], maxs[0], n], np.int32), pp, idx[o]]
            return parts, rows, mins, maxs
    sub = c.seq_t[rows][:, idx]  # [n_rows, n_used]
    if rows.size > 1:
        keep = sub.any(axis=1)
        if not keep.all():
            rows, sub = rows[keep], sub[keep]
    ci, si = np.nonzero(sub.T)  # cell-major: each cell's seqs in increasing order
    sj, cj = np.nonzero(sub)  # seq-major, cells increasing: a stable sort by (seq, pos) keeps them so
    pu = pos[idx]
    pp = pu[cj]
    o = np.argsort((sj.astype(np.int64) << 32) + pp, kind="stable")
    pp, pc = pp[o], idx[cj[o]]
    counts = np.bincount(sj, minlength=rows.size)
    ends = np.cumsum(counts)
    mins, maxs = pp[ends - counts], pp[ends - 1]
    parts = [head, idx, pu, c.shift[idx], c.ext_x[idx], c.ext_y[idx], c.ext_tok[idx],
             np.bincount(ci, minlength=n), rows[si], np.array([rows.size]), rows, mins, maxs, counts, pp, pc]
    return parts, rows, mins, maxs


def _kv_words(kv: KVCache) -> tuple[list[np.ndarray], list[int]]:
    """A cache's words (parts) and its (min, max) per seq < n_seq_max, interleaved."""
    parts: list[np.ndarray] = []
    ns = kv.n_seq_max
    bounds = [-1] * (2 * ns)
    to_stream = kv.seq_to_stream
    cells = kv.cells
    if len(cells) > 1:
        # per-sequence streams: most are empty, and an empty one's words are a constant
        busy = (np.concatenate([c.pos for c in cells]) != -1).reshape(len(cells), -1).any(axis=1).tolist()
    else:
        busy = [bool(cells[0].pos.max() != -1)]
    for st, c in enumerate(cells):
        if not busy[st]:
            parts.append(np.array([c.size, 0, 0, 0, c.has_shift, 0, 0], np.int32))
            continue
        p, rows, mins, maxs = _cells_words(c)
        parts += p
        for s, lo, hi in zip(rows.tolist(), mins.tolist(), maxs.tolist(), strict=True):
            if s < ns and to_stream[s] == st:
                bounds[2 * s], bounds[2 * s + 1] = lo, hi
    parts += [np.array(bounds + [kv.has_shift], np.int32)]
    return parts, bounds


def _digest(parts: list[np.ndarray]) -> list[int]:
    w = np.concatenate(parts, dtype=np.int32, casting="unsafe")
    return [int(w.size), zlib.crc32(w)]


def state_digest(mem: Mem) -> Any:
    """``state(mem)`` in the probe's digest mode: [n_words, crc32] of the packed state (the
    recurrent memory's state is small and stays a dump)."""
    if isinstance(mem, KVCacheISWA):
        pb, _ = _kv_words(mem.base)
        ps, bounds = _kv_words(mem.swa)
        # then seq_pos_min/max of the iSWA pair: the SWA cache's
        return _digest(pb + ps + [np.array(bounds, np.int32)])
    if isinstance(mem, KVCache):
        return _digest(_kv_words(mem)[0])
    return mem.describe()


def make_memory(spec: dict[str, Any]) -> Mem:
    cfg = spec["config"]
    kind = spec.get("kind", "kv")
    if kind == "recurrent":
        return MemoryRecurrent(mem_size=cfg["mem_size"], n_seq_max=cfg["n_seq_max"],
                               n_rs_seq=cfg.get("n_rs_seq", 0))
    # M-RoPE / interleaved M-RoPE (GGML_ROPE_TYPE_MROPE / _IMROPE): 4 positions per token
    n_pos = 4 if cfg.get("rope_type") in (8, 40) else 1
    common = {"n_seq_max": cfg["n_seq_max"], "unified": cfg.get("unified", True),
              "n_swa": cfg.get("n_swa", 0), "swa_type": cfg.get("swa_type", 0),
              "alibi": cfg.get("alibi", False), "n_pos_per_embd": n_pos}
    if kind == "iswa":
        return KVCacheISWA(kv_size=cfg["kv_size"], n_ubatch=cfg["n_ubatch"],
                           swa_full=cfg.get("swa_full", False), **common)
    return KVCache(kv_size=cfg["kv_size"], **common)


def apply_op(mem: Mem, cfg: dict[str, Any], op: list, *, digest: bool = False) -> Any:
    """Run one program step on pyggml's memory; the step's result (masks as digests with
    ``digest``)."""
    name = op[0]
    if name == "decode":
        if isinstance(mem, KVCacheISWA):
            return _decode_iswa(mem, cfg, op[1], op[2], digest)
        if isinstance(mem, MemoryRecurrent):
            return _decode_rec(mem, cfg, op[1], op[2], len(op) > 3 and op[3])
        return _decode(mem, cfg, op[1], op[2], digest)
    if name == "update":
        return _update(mem)
    if name == "can_shift":
        return mem.can_shift
    if name == "clear":
        mem.clear()
        return None
    if name == "seq_rm":
        return mem.seq_rm(*op[1:])
    getattr(mem, name)(*op[1:])
    return None


def ours(spec: dict[str, Any], _digest_default: bool = False) -> Any:
    """pyggml's side of ``reference.memory.kv_run(spec)`` (``"digest": true`` in the spec, or in
    a batch around it: states and masks as digests, as the probe writes them)."""
    kind = spec.get("kind", "kv")
    digest = spec.get("digest", _digest_default)
    if kind == "layout":
        return [_layout(c) for c in spec["cases"]]
    if kind == "batch":
        return [ours(p, digest) for p in spec["programs"]]
    cfg = spec["config"]
    mem = make_memory(spec)
    steps = []
    for op in spec["ops"]:
        steps.append(_step(mem, cfg, op, digest))
    return _finish(mem, kind, steps, digest)


def _step(mem: Mem, cfg: dict[str, Any], op: list, digest: bool) -> dict[str, Any]:
    r = apply_op(mem, cfg, op, digest=digest)
    step: dict[str, Any] = {"result": r}
    if isinstance(mem, MemoryRecurrent):
        step["log"] = canon_str("".join(mem.log))
        mem.log = []
    step["state"] = state_digest(mem) if digest else state(mem)
    return step


def _finish(mem: Mem, kind: str, steps: list, digest: bool) -> Any:
    if kind == "iswa":
        return {"sizes": [mem.base.size, mem.swa.size], "steps": steps}
    if kind == "recurrent":
        return {"steps": steps}
    return {"steps": steps, "final": state_digest(mem) if digest else state(mem)}


def _layout(c: dict[str, Any]) -> dict[str, Any]:
    s = context_sizes(n_ctx=c["n_ctx"], n_ctx_train=c["n_ctx_train"], n_seq_max=c["n_seq_max"],
                      kv_unified=c["kv_unified"], n_batch=c["n_batch"], n_ubatch=c["n_ubatch"])
    return {"ok": True, "n_ctx": s.n_ctx, "n_ctx_seq": s.n_ctx_seq, "n_batch": s.n_batch,
            "n_ubatch": s.n_ubatch, "kv_size": s.kv_size, "n_stream": s.n_stream}


# ---------------------------------------------------------------------------------------------
# program generation (each program is generated by running it on pyggml, so that every call is
# one the reference accepts without aborting)

CONFIGS = [
    {"unified": True, "n_seq_max": 1},
    {"unified": True, "n_seq_max": 4},
    {"unified": False, "n_seq_max": 4},
    {"unified": True, "n_seq_max": 16},
    {"unified": False, "n_seq_max": 16},
]

CONFIG_DIMS = {
    "unified": [True, False],
    "n_seq_max": [1, 4, 16],
    "swa_type": [0, 1, 2, 3],
    "swa_full": [False, True],
}


def config_for(rng: random.Random, unified: bool, n_seq_max: int, swa_type: int,
               swa_full: bool) -> tuple[str, dict]:
    """A concrete memory for one point of the configuration product.  SWA none is a plain KV
    cache; with an SWA type, swa_full off is either an iSWA pair or (one time in three) a single
    SWA cache with few cells (wraparound, SWA cell reuse), and swa_full on an iSWA pair with a
    full-size SWA cache."""
    cfg: dict[str, Any] = {"unified": unified, "n_seq_max": n_seq_max, "swa_type": swa_type,
                           "n_swa": rng.choice([2, 4, 8, 16]) if swa_type else 0,
                           "causal": rng.random() < 0.8,
                           "f16": rng.random() < 0.3, "alibi": rng.random() < 0.1, "n_vocab": 1000,
                           "swa_full": swa_full}
    if swa_type and (swa_full or rng.random() < 0.67):
        cfg["kv_size"] = rng.choice([16, 64, 256, 300, 512])
        cfg["n_ubatch"] = rng.choice([1, 2, 4, 8, 64, 512])
        return "iswa", cfg
    cfg["kv_size"] = rng.choice([8, 16, 32, 64, 300])
    return "kv", cfg


def random_config(rng: random.Random) -> dict[str, Any]:
    """A plain KV cache configuration (kept for the unit tests)."""
    base = rng.choice(CONFIGS)
    swa_type = rng.choice([0, 0, 1, 2, 3])
    for _ in range(100):
        kind, cfg = config_for(rng, base["unified"], base["n_seq_max"], swa_type, False)
        if kind == "kv":
            return cfg
    return cfg


def _random_decode(rng: random.Random, mem: Mem, seqs: list[int], shared_ok: bool) -> list:
    active = rng.sample(seqs, rng.randint(1, len(seqs)))
    toks, pos, sids = [], [], []
    nxt = {s: mem.seq_pos_max(s) + 1 for s in active}
    for s in active:
        for _ in range(rng.choice([1, 1, 2, 3, 5, 8])):
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
    if shared_ok and len(active) > 1 and rng.random() < 0.15 and all(
            mem.seq_pos_min(s) == mem.seq_pos_min(active[0])
            and mem.seq_pos_max(s) == mem.seq_pos_max(active[0])
            for s in active):
        p = max(mem.seq_pos_max(s) for s in active) + 1
        toks, pos, sids = [rng.randrange(1000)], [p], [list(active)]
    if rng.random() < 0.05 and pos:
        # a rejected batch now and then; never a negative position: the reference accepts -1 (a
        # lone token of a fresh sequence) and then stores it as an "empty" cell that still holds
        # a sequence (corrupt state), where pyggml raises
        k = rng.randrange(len(pos))
        pos[k] = max(0, pos[k] + rng.choice([-1, 2]))
    if min(pos) < 0:
        # a recurrent state's position can be shifted below 0; continuing it is outside what
        # both sides validate the same way, so drop the sequence instead
        return ["seq_rm", active[0], -1, -1]
    lg = {"token": toks, "pos": None if rng.random() < 0.2 and len(active) == 1 else pos,
          "seq_id": sids, "logits": None}
    return ["decode", lg, rng.choice([1, 2, 3, 4, 8, 512])]


def random_program(rng: random.Random, cfg: dict[str, Any], n_steps: int, kind: str = "kv") -> dict[str, Any]:
    """Mostly valid decodes continuing each sequence, mixed with sequence operations and updates.
    Only calls the reference accepts without aborting (seq ids in range, full-range cross-stream
    copies, seq_div by >= 1)."""
    return _generate(rng, cfg, n_steps, kind, None)[0]


def random_program_digest(rng: random.Random, cfg: dict[str, Any], n_steps: int,
                          kind: str = "kv") -> tuple[dict[str, Any], Any]:
    """``random_program`` with ``"digest": true`` in the spec, and pyggml's outcome of it
    (``ours(spec)``) recorded while generating: the program runs once on pyggml instead of
    twice."""
    spec, out = _generate(rng, cfg, n_steps, kind, [])
    spec["digest"] = True
    return spec, out


def _generate(rng: random.Random, cfg: dict[str, Any], n_steps: int, kind: str,
              record: list | None) -> tuple[dict[str, Any], Any]:
    n_seq = cfg["n_seq_max"]
    seqs = list(range(min(n_seq, 6)))
    spec = {"kind": kind, "config": cfg, "ops": []}
    mem = make_memory(spec)
    kv = mem.base if isinstance(mem, KVCacheISWA) else mem
    size = max(c.size for c in mem.caches) if isinstance(mem, KVCacheISWA) else mem.size
    ops: list[list] = spec["ops"]
    for _ in range(n_steps):
        r = rng.random()
        if r < 0.52:
            op = _random_decode(rng, mem, seqs, cfg["unified"])
        elif r < 0.61:
            op = ["seq_rm", rng.choice(seqs + [-1]), rng.randrange(-1, 20), rng.randrange(-1, 30)]
        elif r < 0.68:
            a, b = rng.choice(seqs), rng.choice(seqs)
            if kv.seq_to_stream[a] != kv.seq_to_stream[b]:
                op = ["seq_cp", a, b, rng.choice([-1, 0]), rng.choice([-1, size - 1, size + 5])]
            else:
                op = ["seq_cp", a, b, rng.randrange(-1, 10), rng.randrange(-1, 30)]
        elif r < 0.72:
            op = ["seq_keep", rng.choice(seqs)]
        elif r < 0.81:
            op = ["seq_add", rng.choice(seqs), rng.randrange(-1, 10), rng.randrange(-1, 30),
                  rng.randint(-8, 8)]
        elif r < 0.86:
            op = ["seq_div", rng.choice(seqs), rng.randrange(-1, 10), rng.randrange(-1, 30),
                  rng.randint(1, 4)]
        elif r < 0.92:
            op = ["update"]
        elif r < 0.93:
            op = ["can_shift"]
        elif r < 0.95:
            op = ["clear"]
        else:
            # keep the cache from filling up for good
            op = ["seq_rm", -1, -1, -1] if rng.random() < 0.3 else ["seq_rm", rng.choice(seqs), -1, -1]
        if record is None:
            apply_op(mem, cfg, op)
        else:
            record.append(_step(mem, cfg, op, True))
        ops.append(op)
    return spec, (None if record is None else _finish(mem, kind, record, True))


def random_recurrent_program(rng: random.Random, n_steps: int,
                             refused: Refused | None = None) -> dict[str, Any]:
    """A recurrent-memory program; an op pyggml refuses (the reference asserts or crashes on it)
    is left out of it and, with ``refused``, appended there as the program up to and including
    it, with pyggml's error."""
    n_seq = rng.choice([1, 2, 4, 16])
    cfg = {"n_seq_max": n_seq, "mem_size": max(1, n_seq) + rng.choice([0, 0, 0, 2]),
           "n_rs_seq": rng.choice([0, 0, 1, 3]), "n_vocab": 1000}
    seqs = list(range(min(n_seq, 6)))
    spec = {"kind": "recurrent", "config": cfg, "ops": []}
    mem = make_memory(spec)
    for _ in range(n_steps):
        r = rng.random()
        if r < 0.45:
            op = _random_decode(rng, mem, seqs, True)
            if op[0] == "decode":
                op.append(rng.random() < 0.2)  # embd_all: split by sequence
        elif r < 0.65:
            op = ["seq_rm", rng.choice(seqs + [-1, n_seq]), rng.randrange(-1, 20), rng.randrange(-1, 30)]
        elif r < 0.73:
            op = ["seq_cp", rng.choice(seqs + [-1]), rng.choice(seqs + [n_seq + 3]), -1, -1]
        elif r < 0.78:
            op = ["seq_keep", rng.choice(seqs)]
        elif r < 0.86:
            op = ["seq_add", rng.choice(seqs), rng.randrange(-1, 10), rng.randrange(-1, 30),
                  rng.randint(-8, 8)]
        elif r < 0.91:
            op = ["seq_div", rng.choice(seqs), rng.randrange(-1, 10), rng.randrange(-1, 30),
                  rng.randint(1, 4)]
        elif r < 0.94:
            op = ["update"] if rng.random() < 0.5 else ["can_shift"]
        elif r < 0.96:
            op = ["clear"]
        else:
            op = ["seq_rm", rng.choice(seqs), -1, -1]
        try:
            apply_op(mem, cfg, op)
        except PyggmlError as e:  # never a Python-internal error: those fail the run
            if refused is not None:
                refused.append(({**spec, "ops": spec["ops"] + [op]}, e))
            mem = make_memory({**spec, "ops": []})
            for o in spec["ops"]:
                apply_op(mem, cfg, o)
            continue
        spec["ops"].append(op)
    return spec


def layout_cases(rng: random.Random, n: int,
                 refused: Refused | None = None) -> list[dict[str, Any]]:
    """``n`` context sizings pyggml accepts; those it refuses (the reference aborts) go to
    ``refused`` as one-case layout specs with pyggml's error."""
    out: list[dict[str, Any]] = []
    while len(out) < n:
        c = {"n_ctx": rng.choice([0, 1, 100, 255, 256, 257, 512, 1000, 2048, 4097]),
                    "n_ctx_train": rng.choice([256, 512, 4096]),
                    "n_seq_max": rng.choice([1, 2, 3, 4, 7, 16, 64]), "kv_unified": rng.random() < 0.5,
                    "n_batch": rng.choice([1, 32, 100, 512, 2048, 8192]),
                    "n_ubatch": rng.choice([0, 1, 16, 512, 4096])}
        try:
            _layout(c)
        except MemoryError_ as e:
            if refused is not None:
                refused.append(({"kind": "layout", "cases": [c]}, e))
            continue
        out.append(c)
    return out


# ---------------------------------------------------------------------------------------------
# ops pyggml refuses: every such refusal stands for an abort of the reference (an assert, a
# crash, or a state it corrupts and then trips over); compared as the assert text when there is one


def _assert_text(text: str) -> str | None:
    m = re.search(r"GGML_ASSERT\((.*)\) failed", text)
    return m.group(1) if m else None


def refused_outcome(err: PyggmlError) -> dict[str, Any]:
    """pyggml's outcome for a call it refuses: the reference aborts, on the assert its message
    names (if any)."""
    return {"outcome": "aborted", "assert": _assert_text(str(err))}


def reference_outcome(r: Any) -> dict[str, Any]:
    """The reference's outcome for the same call (``reference.memory.kv_run_isolated``): the
    abort and its assert, or what the refused (last) call returned."""
    if isinstance(r, dict) and r.get("aborted"):
        return {"outcome": "aborted", "assert": _assert_text(r.get("stderr", ""))}
    return {"outcome": "returned", "result": r[-1] if isinstance(r, list) else r["steps"][-1]}


# ---------------------------------------------------------------------------------------------
# cases


# --full: steps per configuration point (the issue asks >= 10,000 for each configuration); the
# programs are generated in pieces of <= 40 steps, each compared after every step
FULL_STEPS_PER_CONFIG = 10_000


def _schedule(opts: Options, rng: random.Random) -> list[tuple[tuple, int]]:
    """(configuration point, steps) for every program.  Default: a seeded slice of the product;
    --full: every point of the product (48), ``FULL_STEPS_PER_CONFIG`` steps each."""
    points = list(itertools.product(*CONFIG_DIMS.values()))
    if opts.full:
        return [(p, FULL_STEPS_PER_CONFIG) for p in points]
    return [(rng.choice(points), 20) for _ in range(20)]


def cases(opts: Options) -> Iterator[Case]:
    from ..reference import memory as ref

    rng = random.Random(opts.seed)
    steps: Counter = Counter()
    per_config: Counter = Counter()
    for k, (point, n_steps) in enumerate(_schedule(opts, rng)):
        done = 0
        while done < n_steps:
            kind, cfg = config_for(rng, *point)
            spec, o = random_program_digest(rng, cfg, min(40, n_steps - done), kind)
            done += len(spec["ops"])
            r = ref.kv_run(spec)
            if o != r:
                # the digests differ: rerun both sides with the full dumps, so that the report
                # says which field of which step differs
                DIGEST_FALLBACKS[0] += 1
                spec = {k2: v for k2, v in spec.items() if k2 != "digest"}
                o, r = ours(spec), ref.kv_run(spec)
            yield Case(f"{kind}/{opts.seed}/{k}/{'u' if point[0] else 's'}{point[1]}-swa{point[2]}"
                       f"{'-full' if point[3] else ''}", o, r)
        per_config[point] += done
        for dim, v in zip(CONFIG_DIMS, point, strict=True):
            steps[(dim, v)] += done
    for rope_type, kind in itertools.product([-1, 8, 40], ["kv", "iswa"]):
        # can_shift per position layout (the stub caches have rope_type NONE otherwise)
        cfg = {"kv_size": 256, "n_seq_max": 2, "unified": True, "rope_type": rope_type, "swa_type": 1,
               "n_swa": 4, "n_ubatch": 8, "swa_full": rope_type == -1}
        spec = {"kind": kind, "config": cfg, "ops": [["can_shift"], ["update"], ["clear"], ["can_shift"]]}
        yield Case(f"can_shift/{kind}/rope{rope_type}", ours(spec), ref.kv_run(spec))
    n_rec, rec_steps = (250, 40) if opts.full else (6, 20)
    refused: Refused = []
    for k in range(n_rec):
        spec = random_recurrent_program(rng, rec_steps, refused)
        yield Case(f"recurrent/{opts.seed}/{k}", ours(spec), ref.kv_run(spec))
    layout = {"kind": "layout", "cases": layout_cases(rng, 200 if opts.full else 30, refused)}
    yield Case(f"layout/{opts.seed}", ours(layout), ref.kv_run(layout))
    # the ops pyggml refused, each against the reference's outcome for the same call
    for k, ((spec, err), r) in enumerate(zip(refused, ref.kv_run_isolated([s for s, _ in refused]),
                                             strict=True)):
        yield Case(f"refused.{spec['kind']}/{opts.seed}/{k}", refused_outcome(err), reference_outcome(r))
    sizes = []
    for kv_size, n_swa, n_seq, n_ub, unified, full in itertools.product(
            [16, 256, 300, 4096], [1, 128, 4096], [1, 4], [1, 512], [True, False], [False, True]):
        sizes.append([kv_size, n_swa, n_seq, n_ub, unified, full])
    if not opts.full:
        sizes = rng.sample(sizes, 8)
    ours_sizes, ref_sizes = [], []
    for kv_size, n_swa, n_seq, n_ub, unified, full in sizes:
        ours_sizes.append([kv_size, swa_size(kv_size, n_swa, n_seq_max=n_seq, n_ubatch=n_ub, unified=unified,
                                             swa_full=full)])
        spec = {"kind": "iswa", "config": {"kv_size": kv_size, "n_swa": n_swa, "swa_type": 1,
                                           "n_seq_max": n_seq, "n_ubatch": n_ub, "unified": unified,
                                           "swa_full": full}, "ops": []}
        ref_sizes.append(ref.kv_run(spec)["sizes"])
    yield Case(f"iswa_sizes/{opts.seed}", ours_sizes, ref_sizes)
    STEPS_PER_VALUE.clear()
    STEPS_PER_VALUE.update(steps)
    STEPS_PER_CONFIG.clear()
    STEPS_PER_CONFIG.update(per_config)


# steps per configuration value of the last run (read by the tests and the report)
STEPS_PER_VALUE: Counter = Counter()
# steps per configuration point (unified, n_seq_max, swa_type, swa_full) of the last run
STEPS_PER_CONFIG: Counter = Counter()
# programs whose digests differed and were rerun with the full dumps (a mismatch, or a digest
# packing that disagrees with the probe's)
DIGEST_FALLBACKS = [0]
