"""Parity component ``decode``: ``pyggml.Context.decode`` against the reference's ``llama_decode``.

Both sides load the same model with the same parameters and run the same program (decodes with
memory operations, thread changes and abort callbacks in between).  Compared per program:
- weight placement: every tensor's buffer type and size (``use_extra_bufts`` on and off);
- per decode: the return code, the number of outputs, which batch indices have logits, and
  every logits row **bit for bit** (one case per row, a hash of its float32 bytes);
- the KV cells after every step (positions, shifts, sequences, heads, per-seq bounds);
- the graph of every successful decode, node for node (ops, names, shapes, strides, types, op
  params, flags, sources, views; ``pyggml.reference.decode.graph_dump`` dumps both sides);
- graph reuse: the reference's ``n_reused`` against pyggml's reused count.

Corpus: SmolLM2-135M Q4_1 on real text, and seeded tiny llama models (F32, F16 tied, Q8_0 with
biases, Q4_0 (repacked when extra buffer types are on), Q4_1, fused QKV, rope_freqs, MoE with
4 experts / 2 used (F32) and 8 / 2 (Q8_0)).  The
matrix covers prompt lengths, n_batch/n_ubatch splits that do not divide the prompt, 1/2/4
threads, flash attention auto/on/off, unified and per-sequence KV streams with seq_rm/cp/keep/
add/div between decodes (a K-shift after seq_add), outputs on all/some/last tokens, a KV cache
too small (1), an abort (2) and invalid batches (-1).

gemma3 (``_gemma3_programs``): gemma-3-270m Q4_K_M and tiny gemma3 models, iSWA memory.  Where the
real model's weights go, on this x86 host with extra buffer types on (the default): its 27 Q4_K
matmul weights (attn_output of every layer, ffn_down of 9 layers) to CPU_REPACK (q4_K_8x8), every
other weight (Q5_0/Q6_K/Q8_0 matmuls, F32 norms, the Q8_0 token_embd that doubles as the output:
same buffer type, so no copy) stays in the mmap (CPU_Mapped).  ``Model.placement`` equals the
reference's, tensor by tensor (the "placement/gemma3-x1" case).
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType as QT

from . import Case, Options, corpus
from . import tinymodels as tm
from .memory import state as kv_state

Program = dict[str, Any]


def _rowhash(row: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(row, np.float32).tobytes(), digest_size=12).hexdigest()


def _canon(v: Any) -> Any:
    return json.loads(json.dumps(v, sort_keys=True))


# ---- the two sides ------------------------------------------------------------------------


class _Side:
    """What both sides' wrappers share: the context's output rows and its lifetime."""

    ctx: Any

    def logits_all(self) -> np.ndarray:
        return self.ctx.logits_all()

    @property
    def n_outputs(self) -> int:
        return self.ctx.n_outputs

    def close(self) -> None:
        self.ctx.close()


class _Ours(_Side):
    def __init__(self, model: Any, cparams: dict[str, Any]) -> None:
        from ..context import Context

        self.ctx = Context(model, **_ours_params(cparams))
        self.n_vocab = self.ctx.n_vocab
        self._abort_left = -1

    def decode(self, step: dict[str, Any]) -> int:
        from ..batch import Batch
        from ..errors import DecodeError

        b = Batch(
            tokens=step["tokens"], pos=step.get("pos"), seq_ids=step.get("seq_ids"), output=step.get("output")
        )
        try:
            self.ctx.decode(b)
        except DecodeError as exc:
            if exc.abort:
                return -999
            return exc.code
        return 0

    def logits(self, i: int) -> np.ndarray | None:
        try:
            return self.ctx.logits(i)
        except IndexError:
            return None

    def memory(self, op: str, *args: int) -> int:
        mem = self.ctx.memory
        if op == "clear":
            mem.clear(bool(args[0]) if args else True)
            return 0
        r = getattr(mem, op)(*args)
        return int(r) if r is not None else 0

    def kv(self) -> Any:
        out = []
        for kv, _ in self.ctx.caches:  # one cache, or an iSWA pair (base, SWA)
            st = kv_state(kv)
            for s, stream in enumerate(st["streams"]):
                stream["head"] = kv.heads[s]
            out.append(_canon(st))
        return out[0] if len(out) == 1 else out

    def graph(self) -> Any:
        from ..reference.decode import graph_dump

        res = self.ctx._res_active
        return None if res is None else graph_dump(res.gf)

    def reused(self) -> int:
        return self.ctx.stats()["graphs_reused"]

    def set_abort(self, after: int) -> None:
        if after < 0:
            self.ctx.set_abort_callback(None)
            return
        calls = [0]

        def fn() -> bool:
            calls[0] += 1
            return calls[0] > after

        self.ctx.set_abort_callback(fn)

    def set_threads(self, n: int, nb: int) -> None:
        self.ctx.set_n_threads(n, nb)



class _Ref(_Side):
    def __init__(self, model: Any, cparams: dict[str, Any]) -> None:
        from ..reference.decode import RefContext

        self.ctx = RefContext(model, **cparams)
        self.n_vocab = self.ctx.n_vocab

    def decode(self, step: dict[str, Any]) -> int:
        seq = step.get("seq_ids")
        if isinstance(seq, int):
            seq = [[seq]] * len(step["tokens"])
        out = step.get("output")
        if isinstance(out, bool):
            out = [out] * len(step["tokens"])
        return self.ctx.decode(step["tokens"], pos=step.get("pos"), seq_ids=seq, logits=out)

    def logits(self, i: int) -> np.ndarray | None:
        return self.ctx.logits(i)

    def memory(self, op: str, *args: int) -> int:
        return self.ctx.memory(op, *args)

    def kv(self) -> Any:
        caches = [_canon(c["state"]) for c in self.ctx.kv_state().get("caches", [])]
        if not caches:
            return None
        return caches[0] if len(caches) == 1 else caches

    def graph(self) -> Any:
        return self.ctx.graph()

    def reused(self) -> int:
        return int(self.ctx.stats()["n_reused"])

    def set_abort(self, after: int) -> None:
        self.ctx.set_abort(after)

    def set_threads(self, n: int, nb: int) -> None:
        self.ctx.set_threads(n, nb)



def _ours_params(cp: dict[str, Any]) -> dict[str, Any]:
    out = dict(cp)
    fa = out.pop("flash_attn", "auto")
    out["flash_attn"] = {"auto": None, "on": True, "off": False}[fa]
    return out


# ---- running a program ----------------------------------------------------------------------


def _decode_outcome(side: Any, step: dict[str, Any], rc: int) -> tuple[dict[str, Any], list[str | None]]:
    n = len(step["tokens"])
    rows: list[str | None] = []
    if rc == 0:
        for i in range(n):
            r = side.logits(i)
            rows.append(None if r is None else _rowhash(r))
        allrows = side.logits_all()
        summary = {
            "rc": rc,
            "n_outputs": side.n_outputs,
            "last": _rowhash(side.logits(-1)) if side.n_outputs else None,
            "all": [_rowhash(r) for r in allrows],
        }
    else:
        summary = {"rc": rc}
    return summary, rows


def run_program(ours: Any, ref: Any, prog: Program, name: str, *, graphs: bool = True) -> Iterator[Case]:
    """Drive both sides through ``prog["steps"]``, yielding a case per compared fact (a decode
    step with ``"graph": False`` skips the graph comparison)."""
    for k, step in enumerate(prog["steps"]):
        kind = step["op"]
        tag = f"{name}/{k}:{kind}"
        if kind == "decode":
            tokens = step["tokens"]
            if step.get("greedy_from") is not None:  # next token = argmax of the previous output
                src = ref.logits(-1)
                tokens = [int(np.argmax(src))] if src is not None else [0]
                step = {**step, "tokens": tokens}
            ro, rr = _decode_outcome(ours, step, ours.decode(step))
            fo, fr = _decode_outcome(ref, step, ref.decode(step))
            yield Case(tag, ro, fo)
            for i, (a, b) in enumerate(zip(rr, fr, strict=True)):
                if a is not None or b is not None:
                    yield Case(f"row/{name}/{k}/{i}", a, b)
            if graphs and step.get("graph", True) and ro.get("rc") == 0 and fo.get("rc") == 0:
                yield Case(f"graph/{name}/{k}", ours.graph(), ref.graph())
        elif kind == "mem":
            a = ours.memory(step["name"], *step["args"])
            b = ref.memory(step["name"], *step["args"])
            yield Case(tag, a, b)
        elif kind == "abort":
            ours.set_abort(step["after"])
            ref.set_abort(step["after"])
            continue
        elif kind == "threads":
            ours.set_threads(*step["n"])
            ref.set_threads(*step["n"])
            continue
        yield Case(f"kv/{name}/{k}", ours.kv(), ref.kv())
    yield Case(f"reuse/{name}", ours.reused(), ref.reused())


# ---- corpus ----------------------------------------------------------------------------------

_TINY_SPECS = {
    "f32": tm.TinySpec(),
    "f16-tied": tm.TinySpec(qtype=QT.F16, tied=True),
    "q8_0-bias": tm.TinySpec(qtype=QT.Q8_0, bias=True),
    "q4_0-tied": tm.TinySpec(qtype=QT.Q4_0, tied=True, n_vocab=48),
    "q4_1": tm.TinySpec(qtype=QT.Q4_1, n_layer=3),
    "f16-qkv-bias": tm.TinySpec(qtype=QT.F16, fused_qkv=True, bias=True),
    "f32-qkv-ropefreqs": tm.TinySpec(fused_qkv=True, rope_freqs=True, n_head=2, n_head_kv=1),
    "q8_0-gqa4": tm.TinySpec(qtype=QT.Q8_0, n_embd=128, n_head=8, n_head_kv=2, n_ff=192),
    "f32-moe4x2": tm.TinySpec(n_expert=4, n_expert_used=2),
    "q8_0-moe8x2": tm.TinySpec(qtype=QT.Q8_0, n_expert=8, n_expert_used=2, n_layer=3),
}
_MOE_KEYS = [k for k, s in _TINY_SPECS.items() if s.n_expert]
# models only the fixed programs at the end of the matrix use (no random draws depend on them)
_ROPE_SPECS = {
    "f32-yarn4": tm.TinySpec(rope_scaling="yarn", rope_factor=4.0),
    "q8_0-linear2": tm.TinySpec(qtype=QT.Q8_0, rope_scaling="linear", rope_factor=2.0),
}
# tiny gemma3 models: sliding windows far shorter than the prompts, several SWA patterns, GQA,
# soft-capping, and one without a window (a plain KV cache); "g3-q4_0-p6" only in --full
_GEMMA3_SPECS = {
    "g3-f32-w8p2": tm.TinySpec(arch="gemma3", n_swa=8, swa_pattern=2, rope_base_swa=5000.0, softcap=15.0,
                               n_layer=3),
    "g3-q8_0-w16p3-gqa4": tm.TinySpec(arch="gemma3", qtype=QT.Q8_0, n_swa=16, swa_pattern=3, n_layer=4,
                                      n_embd=128, n_head=4, n_head_kv=1, n_ff=192),
    "g3-f16-tied-nowin": tm.TinySpec(arch="gemma3", qtype=QT.F16, tied=True),
    # the default pattern (6) over 2 layers: every layer slides, the base cache has no layers
    "g3-f32-allswa": tm.TinySpec(arch="gemma3", n_swa=8, n_layer=2, n_embd=32, n_head=2, n_ff=48),
    "g3-q4_0-p6": tm.TinySpec(arch="gemma3", qtype=QT.Q4_0, tied=True, n_swa=12, n_layer=6, n_embd=32,
                              n_head=2, n_head_kv=1, n_ff=64, softcap=30.0),
}

_TEXT = (
    "The quick brown fox jumps over the lazy dog. In 1969, Apollo 11 landed on the Moon; "
    "Neil Armstrong stepped out first. Python's `numpy` library vectorizes loops: "
    "for i in range(10): print(i ** 2). Der schnelle braune Fuchs springt über den faulen Hund. "
    "東京は日本の首都です。 Emojis 🎉🚀 and symbols ∑ ∫ ≠ also appear in real text. "
)


def tiny_path(key: str, seed: int = 0) -> Path:
    """The tiny model ``key`` of the corpus, written once into a temp folder named after its
    spec (a changed generator or spec gets a new file; concurrent writers never share one)."""
    spec = replace({**_TINY_SPECS, **_ROPE_SPECS, **_GEMMA3_SPECS}[key], seed=seed)
    digest = hashlib.blake2b(repr(spec).encode(), digest_size=6).hexdigest()
    root = Path(tempfile.gettempdir()) / "pyggml-decode-tiny"
    d = root / f"{key}-{seed}-{digest}"
    if not (d / "m.gguf").exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root))
        tm.write(tm.build(spec), tmp, "m")
        try:
            tmp.rename(d)
        except OSError:  # another process wrote it first
            shutil.rmtree(tmp, ignore_errors=True)
    return d / "m.gguf"


@functools.cache
def _smollm2_vocab() -> Any:
    from ..vocab import Vocab

    return Vocab.from_gguf(corpus.smollm2())


def _smollm2_tokens(n: int, offset: int = 0) -> list[int]:
    v = _smollm2_vocab()
    toks = v.tokenize(_TEXT * (1 + n // 40), add_special=False)
    toks = toks[offset:] + toks[:offset]
    return [v.bos, *toks][:n] if n else []


def _prompt_program(tokens: list[int], *, outputs: str, n_gen: int) -> Program:
    n = len(tokens)
    out: Any = {"all": True, "last": None, "some": [i % 3 == 0 or i == n - 1 for i in range(n)]}[outputs]
    steps: list[dict[str, Any]] = [{"op": "decode", "tokens": tokens, "output": out}]
    steps += [{"op": "decode", "tokens": [0], "greedy_from": True} for _ in range(n_gen)]
    return {"steps": steps}


def _multiseq_program(rng: random.Random, n_vocab: int, n_seq: int, unified: bool) -> Program:
    """Several sequences in one batch, sequence operations, then more decodes (K-shift)."""
    steps: list[dict[str, Any]] = []
    lens = [rng.randint(3, 12) for _ in range(n_seq)]
    toks, pos, seqs, out = [], [], [], []
    for s, n in enumerate(lens):
        for i in range(n):
            toks.append(rng.randrange(n_vocab))
            pos.append(i)
            seqs.append([s])
            out.append(i == n - 1 or rng.random() < 0.3)
    steps.append({"op": "decode", "tokens": toks, "pos": pos, "seq_ids": seqs, "output": out})
    nxt = list(lens)
    ops = [
        ("seq_rm", lambda s: [s, max(0, nxt[s] - 2), -1]),
        ("seq_add", lambda s: [s, 1, -1, 2]),
        ("seq_div", lambda s: [s, 0, -1, 2]),
        ("seq_cp", lambda s: [s, (s + 1) % n_seq, -1, -1]),
        ("seq_keep", lambda s: [s]),
    ]
    for _ in range(3):
        name, args = rng.choice(ops)
        s = rng.randrange(n_seq)
        steps.append({"op": "mem", "name": name, "args": args(s)})
        steps.append({"op": "mem", "name": "seq_pos_max", "args": [s]})
        # continue every sequence from its own max position (asked of the reference at run time)
        steps.append({"op": "decode_cont", "seqs": list(range(n_seq)), "n": rng.randint(1, 3)})
    return {"steps": steps}


def _programs(opts: Options) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any], Program]]:
    """(name, model key, load params, context params, program)."""
    rng = random.Random(opts.seed)
    full = opts.full
    # SmolLM2 on real text: prompt lengths, splits, threads, flash attention
    lens = [1, 7, 33, 130] + ([512, 1000, 2048] if full else [])
    for n in lens:
        for th in [1, 2, 4] if full else [2]:
            for fa in ["auto", "on", "off"] if full else (["auto", "off"] if n <= 33 else ["auto"]):
                nb, nub = (512, 512) if n <= 512 else (2048, 512)
                cp = {
                    "n_ctx": max(512, n + 64),
                    "n_batch": nb,
                    "n_ubatch": nub,
                    "n_threads": th,
                    "n_threads_batch": th,
                    "flash_attn": fa,
                }
                yield (
                    f"smollm2-p{n}-t{th}-fa{fa}",
                    "smollm2",
                    {},
                    cp,
                    _prompt_program(
                        _smollm2_tokens(n, rng.randrange(50)),
                        outputs="all" if full or n <= 33 else "last",
                        n_gen=4 if n <= 130 else 2,
                    ),
                )
    # greedy token streams: each next token is the argmax of the reference's last logits
    for i, n_gen in enumerate([256, 256, 256] if full else [32]):
        cp = {"n_ctx": 512, "n_threads": 2, "n_threads_batch": 2}
        yield (
            f"smollm2-greedy{i}-g{n_gen}",
            "smollm2",
            {},
            cp,
            _prompt_program(_smollm2_tokens(12 + 9 * i, rng.randrange(200)), outputs="last", n_gen=n_gen),
        )
    # ubatches that do not divide the prompt; outputs on some tokens
    for nb, nub, n in [(64, 24, 50), (32, 7, 30), (256, 100, 250)] + (
        [(512, 48, 400), (128, 1, 9)] if full else []
    ):
        cp = {"n_ctx": 512, "n_batch": nb, "n_ubatch": nub, "n_threads": 2, "n_threads_batch": 2}
        yield (
            f"smollm2-split{nb}x{nub}-p{n}",
            "smollm2",
            {},
            cp,
            _prompt_program(_smollm2_tokens(n, rng.randrange(50)), outputs="some", n_gen=2),
        )
    # tiny models: every weight type and layout, extra buffer types on and off
    keys = list(_TINY_SPECS)
    for key in keys:
        for extra in (True, False):
            for th in [1, 2, 4] if full else [1 if extra else 4]:
                cp = {
                    "n_ctx": 256,
                    "n_batch": 64,
                    "n_ubatch": 16,
                    "n_threads": th,
                    "n_threads_batch": th,
                    "flash_attn": rng.choice(["auto", "on", "off"]),
                }
                n_vocab = _TINY_SPECS[key].n_vocab
                toks = [rng.randrange(n_vocab) for _ in range(rng.randint(5, 40))]
                yield (
                    f"tiny-{key}-x{int(extra)}-t{th}-fa{cp['flash_attn']}",
                    key,
                    {"use_extra_bufts": extra},
                    cp,
                    _prompt_program(toks, outputs=rng.choice(["all", "some", "last"]), n_gen=3),
                )
    # several sequences: unified and per-sequence streams, sequence ops, K-shift; then the
    # MoE models (mul_mat_id over split ubatches)
    n_multi = 12 if full else 4
    multi = [(f"multi{i}", keys[i % len(keys)], i % 2 == 0, None) for i in range(n_multi)]
    multi += [(f"multi-moe{i}", key, i % 2 == 1, (3, 16)) for i, key in enumerate(_MOE_KEYS)]
    for tag, key, unified, fixed in multi:
        n_seq, n_ubatch = fixed or (rng.randint(2, 4), rng.choice([8, 16, 64]))
        cp = {"n_ctx": 256 * (1 if unified else n_seq), "n_batch": 64, "n_ubatch": n_ubatch,
              "n_seq_max": n_seq, "kv_unified": unified, "n_threads": 2, "n_threads_batch": 2,
              "flash_attn": rng.choice(["auto", "off"])}
        yield (f"{tag}-{key}-u{int(unified)}-s{n_seq}", key, {}, cp,
               _multiseq_program(rng, _TINY_SPECS[key].n_vocab, n_seq, unified))
    # failures: KV cache too small, abort, invalid batches
    cp = {"n_ctx": 256, "n_batch": 256, "n_ubatch": 64, "n_threads": 2, "n_threads_batch": 2}
    yield (
        "fail-noslot",
        "f32",
        {},
        cp,
        {
            "steps": [
                {"op": "decode", "tokens": [1] * 200},
                {"op": "decode", "tokens": [2] * 100},
                {"op": "decode", "tokens": [3] * 56},
            ]
        },
    )
    yield (
        "fail-abort",
        "f16-tied",
        {},
        cp,
        {
            "steps": [
                {"op": "decode", "tokens": [1, 2, 3, 4, 5, 6]},
                {"op": "abort", "after": 0},
                {"op": "decode", "tokens": [7, 8, 9]},
                {"op": "abort", "after": -1},
                {"op": "decode", "tokens": [7, 8, 9]},
            ]
        },
    )
    yield (
        "fail-invalid",
        "q8_0-bias",
        {},
        cp,
        {
            "steps": [
                {"op": "decode", "tokens": [1, 2, 3]},
                {"op": "decode", "tokens": [99999]},  # token out of range
                {"op": "decode", "tokens": [4], "pos": [7]},  # not consecutive
                {"op": "decode", "tokens": [4], "pos": [3], "seq_ids": [[5]]},  # seq_id >= n_seq_max
                {"op": "decode", "tokens": [4, 5], "pos": [3, 4]},
            ]
        },
    )
    yield (
        "threads-switch",
        "smollm2",
        {},
        {"n_ctx": 512, "n_threads": 1, "n_threads_batch": 4},
        {
            "steps": [
                {"op": "decode", "tokens": _smollm2_tokens(20)},
                {"op": "decode", "tokens": [0], "greedy_from": True},
                {"op": "threads", "n": [4, 1]},
                {"op": "decode", "tokens": [0], "greedy_from": True},
                {"op": "decode", "tokens": _smollm2_tokens(5, 7), "pos": list(range(22, 27))},
            ]
        },
    )
    # KV cache types (last, and without random draws: the programs above stay as they were)
    kv_types = [("f32", "f32", "auto"), ("bf16", "bf16", "off")]
    if full:
        kv_types = [(k, v, fa) for k, v in (("f32", "f32"), ("bf16", "bf16"), ("f16", "f32"), ("f32", "bf16"))
                    for fa in ("auto", "on", "off")]
    for i, (tk, tv, fa) in enumerate(kv_types):
        key = ("q8_0-bias", "f32", "f16-qkv-bias")[i % 3]
        cp = {"n_ctx": 256, "n_batch": 64, "n_ubatch": 16, "n_threads": 2, "n_threads_batch": 2,
              "flash_attn": fa, "type_k": tk, "type_v": tv}
        toks = [(7 * j + 3) % 37 + 1 for j in range(9 + i)]
        yield (f"kvtype-{tk}-{tv}-fa{fa}-{key}", key, {}, cp, _prompt_program(toks, outputs="all", n_gen=3))
    # rope scaling from the model (linear, YaRN) and from the context parameters
    rope: list[tuple[str, dict[str, Any]]] = [
        ("f32-yarn4", {}), ("q8_0-linear2", {}),
        ("f32-yarn4", {"yarn_ext_factor": 0.5, "rope_freq_scale": 0.5})]
    if full:
        rope += [("q8_0-linear2", {"rope_freq_scale": 0.25, "rope_freq_base": 5000.0}),
                 ("f32-yarn4", {"yarn_orig_ctx": 16, "yarn_beta_fast": 16.0, "yarn_attn_factor": 0.9}),
                 ("q8_0-linear2", {"rope_scaling_type": 2, "yarn_ext_factor": 1.0})]
    for i, (key, over) in enumerate(rope):
        cp = {"n_ctx": 256, "n_batch": 64, "n_ubatch": 16, "n_threads": 2, "n_threads_batch": 2, **over}
        toks = [(5 * j + 2) % 37 + 1 for j in range(40 + 3 * i)]   # past the original context
        yield (f"rope{i}-{key}", key, {}, cp, _prompt_program(toks, outputs="some", n_gen=3))
    yield from _gemma3_programs(opts)


@functools.cache
def _gemma3_vocab() -> Any:
    from ..vocab import Vocab

    return Vocab.from_gguf(corpus.gemma3())


def _gemma3_tokens(n: int, offset: int = 0) -> list[int]:
    v = _gemma3_vocab()
    toks = v.tokenize(_TEXT * (1 + n // 40), add_special=False)
    return [v.bos, *(toks[offset:] + toks[:offset])][:n]


def _gemma3_programs(opts: Options) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any], Program]]:
    """gemma3 and its iSWA memory: the real 270M model (window 512) on prompts past the window and
    greedy streams, tiny models with windows of 8-16 tokens; swa_full on and off, flash
    attention, extra buffer types, several sequences with sequence operations (K-shift of both
    caches).  Drawn from their own seed, so the programs above stay as they were."""
    rng = random.Random(opts.seed + 13)
    full = opts.full
    # the real model; with n_ctx 1024 the base cache's n_kv reaches 1024 (the split-KV FA path)
    base = {"n_ctx": 1024, "n_threads": 2, "n_threads_batch": 2}
    for n, swa_full, fa, nub in [(530, False, "auto", 512)] + (
            [(530, True, "off", 512), (1000, False, "auto", 256), (700, True, "on", 100)] if full else []):
        cp = {**base, "swa_full": swa_full, "flash_attn": fa, "n_ubatch": nub}
        yield (f"gemma3-p{n}-swafull{int(swa_full)}-fa{fa}-ub{nub}", "gemma3", {}, cp,
               _prompt_program(_gemma3_tokens(n, rng.randrange(50)), outputs="last", n_gen=3))
    for i, n_gen in enumerate([256, 256] if full else [16]):
        cp = {**base, "swa_full": i % 2 == 1}
        prog = _prompt_program(_gemma3_tokens(10 + 7 * i, rng.randrange(200)), outputs="last", n_gen=n_gen)
        for st in prog["steps"][9:]:  # a reused graph: compared for the first 8 tokens only
            st["graph"] = False
        yield (f"gemma3-greedy{i}-g{n_gen}", "gemma3", {}, cp, prog)
    # tiny models: prompts 2-6 windows long, every option
    keys = [k for k in _GEMMA3_SPECS if full or k != "g3-q4_0-p6"]
    for key in keys:
        spec = _GEMMA3_SPECS[key]
        options = [(True, False), (False, True)] + ([(True, True), (False, False)] if full else [])
        for extra, swa_full in options:
            cp = {"n_ctx": 256, "n_batch": 64, "n_ubatch": rng.choice([7, 16, 64]), "n_threads": 2,
                  "n_threads_batch": 2, "swa_full": swa_full, "flash_attn": rng.choice(["auto", "on", "off"])}
            toks = [rng.randrange(spec.n_vocab) for _ in range(rng.randint(2 * max(spec.n_swa, 8), 60))]
            yield (f"tiny-{key}-x{int(extra)}-swafull{int(swa_full)}-fa{cp['flash_attn']}", key,
                   {"use_extra_bufts": extra}, cp,
                   _prompt_program(toks, outputs=rng.choice(["all", "some", "last"]), n_gen=4))
    # several sequences, sequence operations between decodes (not over a layerless base cache:
    # the reference aborts on its K-shift, whose k_shift input is then unallocated)
    keys = [k for k in keys if k != "g3-f32-allswa"]
    for i in range(8 if full else 3):
        key = keys[i % len(keys)]
        unified = i % 2 == 0
        n_seq = rng.randint(2, 4)
        cp = {"n_ctx": 256 * (1 if unified else n_seq), "n_batch": 64, "n_ubatch": rng.choice([8, 16, 64]),
              "n_seq_max": n_seq, "kv_unified": unified, "n_threads": 2, "n_threads_batch": 2,
              "flash_attn": rng.choice(["auto", "off"]), "swa_full": rng.random() < 0.5}
        yield (f"multi{i}-{key}-u{int(unified)}-s{n_seq}-swafull{int(cp['swa_full'])}", key, {}, cp,
               _multiseq_program(rng, _GEMMA3_SPECS[key].n_vocab, n_seq, unified))
    # a K-shift of both caches: drop a span, pull the rest back, continue past the window
    for swa_full in (False, True):
        cp = {"n_ctx": 256, "n_batch": 64, "n_ubatch": 16, "n_threads": 2, "n_threads_batch": 2,
              "swa_full": swa_full}
        toks = [(5 * j + 2) % 37 + 1 for j in range(30)]
        steps = _prompt_program(toks, outputs="last", n_gen=0)["steps"] + [
            {"op": "mem", "name": "seq_rm", "args": [0, 20, 25]},
            {"op": "mem", "name": "seq_add", "args": [0, 25, -1, -5]},
            {"op": "decode_cont", "seqs": [0], "n": 12},
        ]
        yield (f"kshift-g3-f32-w8p2-swafull{int(swa_full)}", "g3-f32-w8p2", {}, cp, {"steps": steps})


_REAL = {"smollm2": corpus.smollm2, "gemma3": corpus.gemma3}


def cases(opts: Options) -> Iterator[Case]:
    from ..model import Model
    from ..reference.decode import RefModel

    models: dict[tuple[str, bool], tuple[Any, Any]] = {}
    try:
        for name, key, load, cp, prog in _programs(opts):
            extra = load.get("use_extra_bufts", True)
            if (key, extra) not in models:
                path = _REAL[key]() if key in _REAL else tiny_path(key, opts.seed)
                om = Model.load(path, use_extra_bufts=extra)
                rm = RefModel(str(path), use_extra_bufts=extra)
                models[(key, extra)] = om, rm
                yield Case(f"placement/{key}-x{int(extra)}", sorted([n, b, s] for n, b, s in om.placement),
                           sorted([t["name"], t["buft"], t["nbytes"]] for t in rm.placement))
            om, rm = models[(key, extra)]
            ours, ref = _Ours(om, cp), _Ref(rm, cp)
            try:
                yield from run_program(ours, ref, _resolve(prog, ref), name)
            finally:
                ours.close()
                ref.close()
    finally:
        for om, rm in models.values():
            om.close()
            rm.close()


def _resolve(prog: Program, ref: Any) -> Program:
    """The program with its "decode_cont" steps expanded when reached: they continue each
    sequence from the reference's seq_pos_max at that point, one token per sequence per round."""
    return {"steps": _expand(prog["steps"], ref)}


def _expand(steps: list[dict[str, Any]], ref: Any) -> Iterator[dict[str, Any]]:
    for st in steps:
        if st["op"] != "decode_cont":
            yield st
            continue
        for r in range(st["n"]):
            toks, pos, seqs = [], [], []
            for s in st["seqs"]:
                p = ref.memory("seq_pos_max", s) + 1
                toks.append((7 * s + 3 * r + p) % 37 + 1)
                pos.append(p)
                seqs.append([s])
            yield {"op": "decode", "tokens": toks, "pos": pos, "seq_ids": seqs, "output": True}
