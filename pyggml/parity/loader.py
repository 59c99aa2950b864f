"""Parity component ``loader``: pyggml.Model.load against llama_model_load_from_file.

Per case both sides load the same file(s) and report a canonical outcome:
``outcome`` (ok / error / cancelled / aborted), the error message (the reference's text after
"error loading model: "), the progress values, and on success the model name, the vocab
fields the loader owns (vocab type, token count), every hparam and every tensor's
name/type/ne and the sha256 of its bytes in memory.  Reference loads run in
``pyggml.reference.isolated`` because some abort the process.

Corpus: SmolLM2-135M Q4_1, seeded tiny llama models (``tinymodels.spec_grid``), the reference
vocab files (vocab_only) and broken variants of a tiny model.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

from ..errors import LoadAbortError, LoadError
from ..reference._canon import canon_str, f32
from . import Case, Options, corpus
from . import mutate as gguf_mutate
from . import tinymodels as tm

# hparams the probe reports, in its order; floats compare as float32 bits
_HP_FLOATS = ("f_norm_rms_eps", "rope_freq_base_train", "rope_freq_scale_train", "rope_attn_factor",
              "rope_scaling_alpha")
_HP_KEYS = ("n_ctx_train", "n_embd", "n_layer", "n_expert", "n_expert_used", "n_head", "n_head_kv", "n_ff",
            "n_rot", "n_embd_head_k", "n_embd_head_v", "n_rot_swa", "n_embd_head_k_swa", "n_embd_head_v_swa",
            *_HP_FLOATS, "rope_scaling_type_train", "rope_finetuned", "n_ctx_orig_yarn", "causal_attn",
            "pooling_type", "rope_type", "use_alibi", "n_cls_out")
_HP_ORDER = {k: i for i, k in enumerate(_HP_KEYS)}


def _canon_hparams(hp: Any) -> dict[str, Any]:
    d = asdict(hp)
    out: dict[str, Any] = {}
    for k in _HP_KEYS:
        v = d[k]
        out[k] = f32(v) if k in _HP_FLOATS else list(v) if isinstance(v, tuple) else v
    return out


def ours(path: Path | str, *, vocab_only: bool = False, use_mmap: bool = True, check_tensors: bool = False,
         cancel_after: int = -1) -> dict[str, Any]:
    """pyggml's canonical outcome of one load."""
    from ..model import Model

    progress: list[str] = []

    def cb(p: float) -> bool:
        progress.append(f32(p))
        return cancel_after < 0 or len(progress) <= cancel_after

    res: dict[str, Any] = {"progress": progress}
    try:
        # the probe loads with use_extra_bufts=false: tensor bytes compare in plain CPU buffers
        model = Model.load(path, vocab_only=vocab_only, use_mmap=use_mmap, use_extra_bufts=False,
                           check_tensors=check_tensors,
                           progress=cb)
    except LoadAbortError:
        return {"outcome": "aborted", "message": None}
    except LoadError as exc:
        cancelled = exc.status == LoadError.CANCELLED
        res.update(outcome="cancelled" if cancelled else "error", message=str(exc))
        return _ordered(res)
    except Exception as exc:  # a bug on our side: a mismatch to report, not a crash of the run
        return {"outcome": "raised", "message": f"{type(exc).__name__}: {exc}"}
    try:
        # the vocabulary Model.load built (as llama_model_load does): its type and size
        res.update(outcome="ok", message=None, name=canon_str(model.name),
                   vocab={"type": model._vocab.type, "n_tokens": model._vocab.n_tokens})
        if not vocab_only:
            assert model.hparams is not None
            res["hparams"] = _canon_hparams(model.hparams)
            res["tensors"] = [{"name": t.name, "type": int(t.type), "ne": list(t.ne),
                               "sha256": hashlib.sha256(model.tensor_data(t.name)).hexdigest()}
                              for t in model.tensors]
    finally:
        model.close()
    return _ordered(res)


def reference(path: Path | str, *, vocab_only: bool = False, use_mmap: bool = True,
              check_tensors: bool = False, cancel_after: int = -1) -> dict[str, Any]:
    """The reference's canonical outcome (in the isolated worker)."""
    from ..reference import isolated

    r = isolated.call("model.load_outcome", str(path), vocab_only=vocab_only, use_mmap=use_mmap,
                      check_tensors=check_tensors, cancel_after=cancel_after)
    if r.get("aborted"):
        return {"outcome": "aborted", "message": None}
    if r["outcome"] == "ok":
        v = r["vocab"]
        r["vocab"] = {"type": v["type"], "n_tokens": v["n_tokens"]}
        if "hparams" in r:
            r["hparams"] = {k: r["hparams"][k] for k in _HP_KEYS}
    return _ordered(r)


_KEY_ORDER = ("outcome", "message", "progress", "name", "vocab", "hparams", "tensors")


def _ordered(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in _KEY_ORDER if k in d}


# ---- broken variants --------------------------------------------------------------------

Mutation = Callable[[tm.TinyModel], None]


def _set(key: str, vtype: VT, value: Any, arr_type: VT | None = None) -> Mutation:
    return lambda m: m.set_kv(key, vtype, value, arr_type)


def _drop(key: str) -> Mutation:
    return lambda m: m.drop_kv(key)


def _reshape(name: str) -> Mutation:
    def f(m: tm.TinyModel) -> None:
        t = m.tensor(name)
        t.ne = (t.ne[1], t.ne[0]) if len(t.ne) == 2 else (t.ne[0] // 2, 2)
    return f


def _extra_tensor(m: tm.TinyModel) -> None:
    m.tensors.append(tm.TensorEntry("blk.0.mystery.weight", QT.F32, (4,), bytes(16)))


def _poison(name: str) -> Mutation:
    """Make the first value (or block scale) of a tensor non-finite (check_tensors cases)."""
    def f(m: tm.TinyModel) -> None:
        t = m.tensor(name)
        b = bytearray(t.data)
        if t.type == QT.F32:
            b[0:4] = np.float32(np.nan).tobytes()
        else:  # F16 values and Q8_0/Q4_0 block scales start with an f16
            b[0:2] = np.float16(np.inf).tobytes()
        t.data = bytes(b)
    return f


def _fuse_qkv(m: tm.TinyModel) -> None:
    """Layer 0 with one fused attn_qkv.weight instead of attn_q/k/v (create_tensor_qkv)."""
    q, k, v = (m.tensor(f"blk.0.attn_{x}.weight") for x in "qkv")
    fused = tm.TensorEntry("blk.0.attn_qkv.weight", q.type, (q.ne[0], q.ne[1] + k.ne[1] + v.ne[1]),
                           q.data + k.data + v.data)
    i = m.tensors.index(q)
    m.tensors = [t for t in m.tensors if t not in (q, k, v)]
    m.tensors.insert(i, fused)


def _poison_scale(name: str, field: int) -> Mutation:
    """An inf in the ``field``-th f16 scale of the last block of a block-quantized tensor."""
    from ..model.weights import _BLOCK_F16_SCALES

    def f(m: tm.TinyModel) -> None:
        t = m.tensor(name)
        offs = _BLOCK_F16_SCALES[t.type]
        size = tm.GGML_QUANT_SIZES[t.type][1]
        o = len(t.data) - size + offs[min(field, len(offs) - 1)]
        t.data = t.data[:o] + np.float16(np.inf).tobytes() + t.data[o + 2:]
    return f


A = "llama."
BROKEN: dict[str, tuple[Mutation, dict[str, Any]]] = {
    "missing-context_length": (_drop(A + "context_length"), {}),
    "missing-embedding_length": (_drop(A + "embedding_length"), {}),
    "missing-block_count": (_drop(A + "block_count"), {}),
    "missing-rms_eps": (_drop(A + "attention.layer_norm_rms_epsilon"), {}),
    "missing-tokenizer_model": (_drop("tokenizer.ggml.model"), {}),
    "type-context_length-i32": (_set(A + "context_length", VT.INT32, 128), {}),
    "type-freq_base-f64": (_set(A + "rope.freq_base", VT.FLOAT64, 10000.0), {}),
    "type-name-u32": (_set("general.name", VT.UINT32, 7), {}),
    "type-name-u32-vocab_only": (_set("general.name", VT.UINT32, 7), {"vocab_only": True}),
    "type-causal-u8": (_set(A + "attention.causal", VT.UINT8, 1), {}),
    "type-arch-u32": (_set("general.architecture", VT.UINT32, 1), {}),
    "type-file_type-i32": (_set("general.file_type", VT.INT32, 1), {}),
    "type-head_count-f32": (_set(A + "attention.head_count", VT.FLOAT32, 4.0), {}),
    "arr-head_count-length": (_set(A + "attention.head_count", VT.ARRAY, [4, 4, 4], VT.UINT32), {}),
    "arr-head_count_kv-length": (_set(A + "attention.head_count_kv", VT.ARRAY, [2], VT.INT32), {}),
    "arr-head_count-f32": (_set(A + "attention.head_count", VT.ARRAY, [4.0, 4.0], VT.FLOAT32), {}),
    "arr-head_count-i8": (_set(A + "attention.head_count", VT.ARRAY, [4, 4], VT.INT8), {}),
    "arr-ff-bool": (_set(A + "feed_forward_length", VT.ARRAY, [True, True], VT.BOOL), {}),
    "bad-n_rot": (_set(A + "rope.dimension_count", VT.UINT32, 8), {}),
    "key_length-mismatch": (_set(A + "attention.key_length", VT.UINT32, 8), {}),
    "block_count-0": (_set(A + "block_count", VT.UINT32, 0), {}),
    "block_count-600": (_set(A + "block_count", VT.UINT32, 600), {}),
    "rope_scaling-bogus": (_set(A + "rope.scaling.type", VT.STRING, "bogus"), {}),
    "rope_scaling-yarn": (_set(A + "rope.scaling.type", VT.STRING, "yarn"), {}),
    "rope_scaling-longrope": (_set(A + "rope.scaling.type", VT.STRING, "longrope"), {}),
    "head_count-0": (_set(A + "attention.head_count", VT.UINT32, 0), {}),
    "head_count-3": (_set(A + "attention.head_count", VT.UINT32, 3), {}),
    "rope_scaling-factor": (_set(A + "rope.scaling.factor", VT.FLOAT32, 3.0), {}),
    "rope_scale_linear": (_set(A + "rope.scale_linear", VT.FLOAT32, 0.25), {}),
    "pooling-type": (_set(A + "pooling_type", VT.UINT32, 2), {}),
    "expert_used-no-experts": (_set(A + "expert_used_count", VT.UINT32, 2), {}),
    "classifier-labels": (_set(A + "classifier.output_labels", VT.ARRAY, ["a", "b", "c"], VT.STRING), {}),
    "classifier-labels-u32": (_set(A + "classifier.output_labels", VT.ARRAY, [1, 2], VT.UINT32), {}),
    "unknown-arch": (_set("general.architecture", VT.STRING, "no-such-arch"), {}),
    "missing-arch": (_drop("general.architecture"), {}),
    "nul-in-name": (_set("general.name", VT.STRING, b"tiny\0tail"), {}),
    "nul-in-arch": (_set("general.architecture", VT.STRING, b"llama\0x"), {}),
    "nul-in-rope_scaling": (_set(A + "rope.scaling.type", VT.STRING, b"yarn\0x"), {}),
    "fused-qkv": (_fuse_qkv, {}),
    "wrong-shape-output": (_reshape("output.weight"), {}),
    "missing-tensor": (lambda m: m.drop_tensor("blk.0.attn_k.weight"), {}),
    "missing-output_norm": (lambda m: m.drop_tensor("output_norm.weight"), {}),
    "wrong-shape": (_reshape("blk.1.ffn_up.weight"), {}),
    "wrong-shape-1d": (_reshape("blk.0.attn_norm.weight"), {}),
    "extra-tensor": (_extra_tensor, {}),
    "invalid-f32-check": (_poison("blk.0.attn_norm.weight"), {"check_tensors": True}),
    "invalid-f32-nocheck": (_poison("blk.0.attn_norm.weight"), {}),
    "invalid-f32-check-nommap": (_poison("output_norm.weight"), {"check_tensors": True, "use_mmap": False}),
}

BROKEN_Q: dict[str, tuple[Mutation, dict[str, Any]]] = {
    "invalid-scale-check": (_poison("blk.0.ffn_down.weight"), {"check_tensors": True}),
}


def _write_case(m: tm.TinyModel, d: Path, stem: str) -> Path:
    return tm.write(m, d, stem)


def _truncated(m: tm.TinyModel, d: Path, stem: str, cut: int) -> Path:
    p = tm.write(m, d, stem)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - cut])
    return p


def _split_cases(d: Path, seed: int) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    spec = replace(tm.TinySpec(seed=seed), n_split=3, n_layer=3)
    m = tm.build(spec)
    groups = tm.shard_groups(m, 3)
    yield "split3-ok-nommap", tm.write(m, d / "s-ok", "m"), {"use_mmap": False}
    dup = [g[:] for g in groups]
    dup[2].append(groups[1][0])  # the same tensor in two shards
    yield "split-duplicate-tensor", tm.write(m, d / "s-dup", "m", groups=dup), {}
    first = tm.write(m, d / "s-missing", "m", groups=groups)
    (d / "s-missing" / "m-00003-of-00003.gguf").unlink()
    yield "split-missing-shard", first, {}
    yield "split-not-first", d / "s-ok" / "m-00002-of-00003.gguf", {}
    p = tm.write(m, d / "s-count", "m", groups=groups)
    yield "split-tensor-count", _patch_split_count(p, len(m.tensors)), {}
    bad = tm.write(m, d / "s-name", "m", groups=groups)
    renamed = bad.with_name("m.gguf")
    bad.rename(renamed)
    yield "split-bad-name", renamed, {}


def _patch_split_count(p: Path, real: int) -> Path:
    """split.tensors.count one more than the tensors the shards hold."""
    data = p.read_bytes()
    key = b"split.tensors.count"
    i = data.index(key) + len(key) + 4  # past the key and its type
    p.write_bytes(data[:i] + np.int32(real + 1).tobytes() + data[i + 4:])
    return p


def cases(opts: Options) -> Iterator[Case]:
    with tempfile.TemporaryDirectory(prefix="pyggml-loader-") as tmp:
        d = Path(tmp)
        yield from _cases(opts, d)


def _case(name: str, path: Path | str, **kw: Any) -> Case:
    return Case(name, ours(path, **kw), reference(path, **kw))


def _cases(opts: Options, d: Path) -> Iterator[Case]:
    # real model
    smol = corpus.smollm2()
    yield _case("smollm2/mmap", smol)
    yield _case("smollm2/vocab_only", smol, vocab_only=True)
    yield _case("smollm2/cancel-5", smol, cancel_after=5)
    if opts.full:
        yield _case("smollm2/nommap-check", smol, use_mmap=False, check_tensors=True)

    # tiny models: every spec with mmap, and (alternating) without mmap / with check_tensors
    specs = tm.spec_grid(opts.seed)
    if opts.full:
        specs += [replace(s, seed=opts.seed + 1000 + i) for i, s in enumerate(tm.spec_grid(opts.seed + 1))]
        specs += tm.spec_grid_full(opts.seed)
    for i, spec in enumerate(specs):
        p = tm.write(tm.build(spec), d / "tiny", f"{spec.tag}-s{spec.seed}")
        yield _case(f"tiny/{spec.tag}/mmap", p)
        if opts.full or i % 2 == 0:
            yield _case(f"tiny/{spec.tag}/nommap", p, use_mmap=False)
        if opts.full or i % 2 == 1:
            yield _case(f"tiny/{spec.tag}/check", p, check_tensors=True)

    # vocab_only loads of every reference vocab file
    # (the reference builds its tokenizer caches on each: ~2 s a file, so the default slice
    # takes a seed-rotated half of them)
    for i, vf in enumerate(corpus.vocab_ggufs()):
        if opts.full or (i + opts.seed) % 2 == 0:
            yield _case(f"vocab/{vf.name}", vf, vocab_only=True)

    # broken variants of the base tiny model
    base = tm.TinySpec(seed=opts.seed)
    for name, (mutate, kw) in BROKEN.items():
        m = tm.build(base)
        mutate(m)
        yield _case(f"broken/{name}", _write_case(m, d / "broken", name), **kw)
    qspec = replace(base, qtype=QT.Q8_0)
    for name, (mutate, kw) in BROKEN_Q.items():
        m = tm.build(qspec)
        mutate(m)
        yield _case(f"broken/{name}", _write_case(m, d / "broken", name), **kw)
    ktypes = [QT.Q6_K] + ([QT.Q2_K, QT.Q3_K, QT.Q4_K, QT.Q5_K, QT.IQ4_XS, QT.Q5_1] if opts.full else [])
    for qt in ktypes:
        for field in (0, 1) if opts.full else (1,):
            m = tm.build(replace(base, n_embd=256, n_ff=256, qtype=qt))
            _poison_scale("blk.1.ffn_gate.weight", field)(m)
            p = _write_case(m, d / "broken", f"poison-{qt.name}-{field}")
            yield _case(f"broken/invalid-scale-{qt.name}-{field}", p, check_tensors=True)
    for cut in (1, 100, 5000):
        yield _case(f"broken/truncated-{cut}", _truncated(tm.build(base), d / "broken", f"trunc{cut}", cut))
    for name, p, kw in _split_cases(d / "splits", opts.seed):
        yield _case(f"split/{name}", p, **kw)

    # the tokenizer metadata mutated (every tokenizer.* key: dropped, renamed, retyped, values on
    # the vocab loader's checks): the vocabulary is part of the load on both sides
    yield from _tokenizer_cases(opts, d / "tokenizer", base)

    # cancellation at progress call k (k = n_tensors + 1 is the final 1.0 call)
    p = tm.write(tm.build(base), d / "cancel", "base")
    n = len(tm.build(base).tensors)
    for k in (0, 1, 7, n, n + 1):
        yield _case(f"cancel/{k}", p, cancel_after=k)
    yield _case("cancel/nommap-3", p, cancel_after=3, use_mmap=False)


# tokenizer mutants every run takes (the examples), also as full loads
TOKENIZER_ALWAYS = ("model/value=cpt2", "model/key-bad-utf8", "tokens/renamed", "tokens/dropped",
                    "tokens/duplicate-token", "model/value=gpt2", "pre/value=bogus", "bos_token_id/type-i32")
TOKENIZER_SAMPLE = 60  # the default run's seeded sample of the others


def tokenizer_mutants(base: tm.TinySpec) -> list[tuple[str, tm.TinyModel]]:
    """The tokenizer mutants of the base tiny model (SPM), then those of its BPE twin
    (``gpt2`` with merges) that touch the BPE-only keys."""
    m = tm.build(base)
    out = [(name, tm.TinyModel(m.spec, kv, m.tensors))
           for name, kv in gguf_mutate.tokenizer_kv_mutants(m.kv, tm.KVEntry)]
    bpe = tm.build(base)
    bpe.set_kv("tokenizer.ggml.model", VT.STRING, "gpt2")
    bpe.set_kv("tokenizer.ggml.merges", VT.ARRAY, ["\u2581 t", "t 1"], VT.STRING)
    bpe.set_kv("tokenizer.ggml.pre", VT.STRING, "default")
    out += [(f"bpe/{name}", tm.TinyModel(bpe.spec, kv, bpe.tensors))
            for name, kv in gguf_mutate.tokenizer_kv_mutants(bpe.kv, tm.KVEntry)
            if name.split("/")[0] in ("model", "pre", "merges", "tokens", "token_type")]
    return out


def _tokenizer_cases(opts: Options, d: Path, base: tm.TinySpec) -> Iterator[Case]:
    import random

    muts = tokenizer_mutants(base)
    if not opts.full:
        always = [x for x in muts if x[0] in TOKENIZER_ALWAYS]
        rest = [x for x in muts if x[0] not in TOKENIZER_ALWAYS]
        muts = always + random.Random(opts.seed).sample(rest, min(TOKENIZER_SAMPLE, len(rest)))
    for i, (name, m) in enumerate(muts):
        p = _write_case(m, d, f"t{i}")
        yield _case(f"tokenizer/{name}", p, vocab_only=True)
        if name in TOKENIZER_ALWAYS:
            yield _case(f"tokenizer/{name}/full-load", p)
