"""Parity of the GGUF parser: ``pyggml.model.gguf.parse`` against ``gguf_init_from_buffer``.

Corpus: every ``ggml-vocab-*.gguf`` of the reference tree, SmolLM2, tiny valid files
(``mutate.writer_seeds`` / ``raw_seeds``) and malformed mutants of them.  Each file is parsed
twice, without and with the tensor data (``params.ctx`` set).  A case's outcome is the
canonical summary on accept, ``None`` on reject (the reference gives no reason) and
``"abort"`` where the reference process dies.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import GGUFError
from ..model import gguf as ours
from ..model.gguf_types import KV, GGUFFile
from ..reference._canon import canon_str
from . import Case, Options, corpus, mutate

# The reference mallocs the whole data section before it reads it and aborts (ggml_init's
# GGML_ASSERT) when malloc fails; with_data cases that would ask for more than this are not
# sent to it (they are counted in ``skipped``).
SAFE_ALLOC = 256 << 20
# --full: mutants per vocabulary (each costs a parse of megabytes and, when accepted, the
# probe's JSON of the whole vocabulary); the vocabularies hold no tensors, so without data only
VOCAB_MUTANTS = 12

def _canon_scalar(t: int, v: Any) -> Any:
    if t == ours.GGUFValueType.STRING:
        return canon_str(v)
    if t == ours.GGUFValueType.FLOAT32:
        return f"f32:{int(np.asarray(v, dtype='<f4').view('<u4')):08x}"
    if t == ours.GGUFValueType.FLOAT64:
        return f"f64:{int(np.asarray(v, dtype='<f8').view('<u8')):016x}"
    if t == ours.GGUFValueType.BOOL:
        return bool(v)
    return int(v)


def _canon_array(at: int, v: Any) -> list[Any]:
    if at == ours.GGUFValueType.STRING:
        if b"\0" in b"".join(v):
            return [canon_str(s) for s in v]
        return ["s:" + s.hex() for s in v]     # canon_str without the NUL cut (a vocabulary)
    if at == ours.GGUFValueType.FLOAT32:
        return [f"f32:{x:08x}" for x in np.asarray(v, dtype="<f4").view("<u4").tolist()]
    if at == ours.GGUFValueType.FLOAT64:
        return [f"f64:{x:016x}" for x in np.asarray(v, dtype="<f8").view("<u8").tolist()]
    return np.asarray(v).tolist()


def _canon_kv(kv: KV) -> dict[str, Any]:
    e: dict[str, Any] = {"key": canon_str(kv.key), "type": int(kv.type)}
    if kv.arr_type is not None:
        e["arr_type"] = int(kv.arr_type)
        e["value"] = _canon_array(int(kv.arr_type), kv.value)
    else:
        e["value"] = _canon_scalar(int(kv.type), kv.value)
    return e


def to_canonical(g: GGUFFile) -> dict[str, Any]:
    """The probe's summary (tools/paritychecker/probe/probe_gguf.cpp ``summarize``) of ``g``."""
    return {
        "version": g.version,
        "alignment": g.alignment,
        "data_offset": g.data_offset,
        "kv": [_canon_kv(kv) for kv in g.kv],
        "tensors": [{"name": canon_str(t.name), "type": int(t.type), "ne": list(t.ne),
                     "offset": t.offset, "size": t.size} for t in g.tensors],
    }


def ours_outcome(data: bytes, with_data: bool) -> Any:
    try:
        return to_canonical(ours.parse(data, with_data=with_data))
    except GGUFError as e:
        return "abort" if e.reason == "abort" else None


def _predicted_abort(summary: dict[str, Any], size: int) -> bool:
    return size <= SAFE_ALLOC and any(ours.new_tensor_aborts(t["ne"]) for t in summary["tensors"])


def reference_outcome(data: bytes, with_data: bool, stats: dict[str, int] | None = None,
                      head: Any = ...) -> Any:
    """The reference's outcome, or ``...`` (Ellipsis) when it cannot be asked safely.

    ``head``: the reference's outcome without data for the same buffer, if already known."""
    from ..reference import gguf as ref
    from ..reference import isolated

    if not with_data:
        return ref.parse_buffer(data, with_data=False)
    # Decide from the reference's own header verdict whether the with_data call is safe.
    if head is ...:
        head = ref.parse_buffer(data, with_data=False)
    if head is None:
        return ref.parse_buffer(data, with_data=True)   # rejects before allocating anything
    n = len(head["tensors"])
    size = sum(ours.ggml_pad(t["size"], head["alignment"]) for t in head["tensors"])
    mem = (n + 1) * ours.GGML_TENSOR_OVERHEAD + size
    if SAFE_ALLOC < mem <= ours.SIZE_MAX:
        if stats is not None:
            stats["skipped"] = stats.get("skipped", 0) + 1
        return ...
    if _predicted_abort(head, size):
        res = isolated.call("gguf.parse_buffer", data, with_data=True)
        return "abort" if isinstance(res, dict) and res.get("aborted") else res
    return ref.parse_buffer(data, with_data=True)


def _file_cases(name: str, data: bytes, stats: dict[str, int], *, with_data: bool = True
                ) -> Iterator[Case]:
    head = reference_outcome(data, False)
    yield Case(f"{name}/wd0", ours_outcome(data, False), head)
    if not with_data:
        return
    ref = reference_outcome(data, True, stats, head)
    if ref is not ...:
        yield Case(f"{name}/wd1", ours_outcome(data, True), ref)


def corpus_files(opts: Options) -> Iterator[tuple[str, bytes]]:
    """The real files: every vocab GGUF of the reference tree and SmolLM2 (``--full``), or
    SmolLM2 and a seeded pick of the smaller vocabularies (the default run; the probe's
    JSON of a 256k-token vocabulary alone takes seconds)."""
    vocabs = corpus.vocab_ggufs()
    if not opts.full:
        small = [p for p in vocabs if p.stat().st_size < (2 << 20)]
        vocabs = sorted(random.Random(opts.seed).sample(small, min(3, len(small))))
    for path in vocabs:
        yield path.name, path.read_bytes()
    yield "smollm2", corpus.smollm2().read_bytes()


def malformed(opts: Options) -> Iterator[mutate.Mutant]:
    """The mutants, in a deterministic order; the default run takes a seeded sample."""
    rng = random.Random(opts.seed)
    seeds = mutate.writer_seeds(opts.seed) + mutate.raw_seeds(opts.seed)
    every: list[mutate.Mutant] = list(mutate.structural_mutants())
    vocab: list[mutate.Mutant] = []
    for name, data in seeds:
        every.extend(mutate.mutants(name, data, rng, flips=40 if opts.full else 10))
    if opts.full:
        # header mutants of the real vocabularies (their arrays make each parse cost ms)
        for path in corpus.vocab_ggufs():
            muts = list(mutate.mutants(path.name, path.read_bytes(), rng, flips=4))
            vocab.extend(rng.sample(muts, min(len(muts), VOCAB_MUTANTS)))
        yield from every
        yield from vocab
        return
    structural = [m for m in every if m.name.startswith("struct/")]
    rest = [m for m in every if not m.name.startswith("struct/")]
    yield from structural
    yield from rng.sample(rest, min(len(rest), 300))


TOKENIZER_SAMPLE = 40  # tokenizer mutants in the default run (all with --full)


def tokenizer_files(opts: Options) -> Iterator[tuple[str, bytes]]:
    from . import tinymodels as tm
    from .loader import tokenizer_mutants

    muts = tokenizer_mutants(tm.TinySpec(seed=opts.seed))
    if not opts.full:
        muts = random.Random(opts.seed).sample(muts, min(TOKENIZER_SAMPLE, len(muts)))
    for name, m in muts:
        yield name, tm.gguf_bytes(m.kv, m.tensors)


def cases(opts: Options) -> Iterator[Case]:
    stats: dict[str, int] = {}
    for name, data in mutate.writer_seeds(opts.seed) + mutate.raw_seeds(opts.seed):
        yield from _file_cases(f"seed/{name}", data, stats)
    for name, data in corpus_files(opts):
        # the vocabularies hold no tensors: their data step is the same empty one every time,
        # so the default run checks it on SmolLM2 and the seeds only
        yield from _file_cases(f"file/{name}", data, stats,
                               with_data=opts.full or name == "smollm2")
    for m in malformed(opts):
        yield from _file_cases(f"mut/{m.name}", m.data, stats, with_data=not m.name.startswith("ggml-vocab"))
    # the tokenizer metadata mutants of the loader corpus (keys dropped, renamed, with invalid
    # UTF-8 or a NUL, values retyped...): files the parser must read exactly as the reference does
    for name, data in tokenizer_files(opts):
        yield from _file_cases(f"mut/tokenizer/{name}", data, stats)
    if stats.get("skipped"):
        print(f"gguf: {stats['skipped']} with-data cases not sent to the reference (it would malloc "
              f"more than {SAFE_ALLOC >> 20} MiB for the data section and may abort)", file=sys.stderr)
