"""Seeded tiny llama models as GGUF files (single file or ``-0000k-of-0000N.gguf`` shards).

A model is a list of key/values and a list of tensors (raw bytes), written by a small GGUF v3
writer so that broken variants (a key with the wrong type, a tensor duplicated across
shards, truncated data) can be made as easily as valid ones.  Quantized weights come from
``gguf.quants``; constants from the ``gguf`` package.  Shards carry the split.* keys the way
gguf-split writes them (split.no u16, split.count u16, split.tensors.count i32).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, quants
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

ALIGNMENT = 32


@dataclass(frozen=True)
class TinySpec:
    n_embd: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 96
    n_vocab: int = 40
    n_ctx: int = 128
    qtype: QT = QT.F32          # type of the 2-D weights; norms and biases stay F32
    tied: bool = False          # no output.weight: token_embd doubles as the output
    bias: bool = False          # attention/FFN biases
    rope_freqs: bool = False
    head_arrays: bool = False   # head counts as per-layer arrays instead of scalars
    fused_qkv: bool = False     # one attn_qkv projection instead of attn_q/k/v
    n_split: int = 1
    seed: int = 0
    n_expert: int = 0           # > 0: MoE FFN (ffn_gate_inp + ffn_*_exps) instead of ffn_gate/up/down
    n_expert_used: int = 0
    rope_scaling: str = ""      # "linear"/"yarn"/"none": rope.scaling.* keys (original ctx n_ctx/4)
    rope_factor: float = 1.0
    arch: str = "llama"         # "gemma3": Q/K norms, post-norms, GELU FFN, sliding window
    n_swa: int = 0              # gemma3: attention.sliding_window (0: key absent, no SWA)
    swa_pattern: int = 0        # gemma3: attention.sliding_window_pattern (0: key absent, default 6)
    rope_base_swa: float = 0.0  # gemma3: rope.freq_base_swa (0: key absent)
    softcap: float = 0.0        # gemma3: final_logit_softcapping (0: key absent)

    @property
    def tag(self) -> str:
        parts = [f"e{self.n_embd}l{self.n_layer}h{self.n_head}kv{self.n_head_kv}", self.qtype.name]
        if self.arch != "llama":
            parts.insert(0, f"{self.arch}-swa{self.n_swa}p{self.swa_pattern}")
        parts += [p for p, on in (("tied", self.tied), ("bias", self.bias), ("ropefreqs", self.rope_freqs),
                                  ("arr", self.head_arrays), ("qkv", self.fused_qkv)) if on]
        if self.n_expert:
            parts.append(f"moe{self.n_expert}x{self.n_expert_used}")
        if self.rope_scaling:
            parts.append(f"rope{self.rope_scaling}{self.rope_factor:g}")
        if self.n_split > 1:
            parts.append(f"split{self.n_split}")
        return "-".join(parts)


@dataclass
class KVEntry:
    key: str
    type: VT
    value: Any
    arr_type: VT | None = None


@dataclass
class TensorEntry:
    name: str
    type: QT
    ne: tuple[int, ...]   # ggml order
    data: bytes


@dataclass
class TinyModel:
    spec: TinySpec
    kv: list[KVEntry]
    tensors: list[TensorEntry]

    def set_kv(self, key: str, vtype: VT, value: Any, arr_type: VT | None = None) -> None:
        for e in self.kv:
            if e.key == key:
                e.type, e.value, e.arr_type = vtype, value, arr_type
                return
        self.kv.append(KVEntry(key, vtype, value, arr_type))

    def drop_kv(self, key: str) -> None:
        self.kv = [e for e in self.kv if e.key != key]

    def drop_tensor(self, name: str) -> None:
        self.tensors = [t for t in self.tensors if t.name != name]

    def tensor(self, name: str) -> TensorEntry:
        return next(t for t in self.tensors if t.name == name)


# ---- building --------------------------------------------------------------------------

def _tokens(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    toks = ["<unk>", "<s>", "</s>", "<0x0A>"] + [f"\u2581t{i}" for i in range(n_vocab - 4)]
    scores = [0.0, 0.0, 0.0, 0.0] + [-float(i) for i in range(n_vocab - 4)]
    types = [2, 3, 3, 6] + [1] * (n_vocab - 4)
    return toks, scores, types


def _weight(rng: np.random.Generator, ne: tuple[int, ...], qtype: QT) -> tuple[QT, bytes]:
    shape = tuple(reversed(ne))  # numpy order
    x = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    if len(ne) == 1 or qtype == QT.F32:
        return QT.F32, x.tobytes()
    if qtype == QT.F16:
        return QT.F16, x.astype(np.float16).tobytes()
    try:
        return qtype, np.ascontiguousarray(quants.quantize(x, qtype)).tobytes()
    except NotImplementedError:
        return qtype, _random_blocks(rng, ne, qtype)


def _random_blocks(rng: np.random.Generator, ne: tuple[int, ...], qtype: QT) -> bytes:
    """Random blocks of a type gguf.quants cannot quantize, with finite f16 block scales
    (what the loader needs: the bytes are copied, and check_tensors reads the scales)."""
    from ..model.weights import _BLOCK_F16_SCALES

    blck, size = GGML_QUANT_SIZES[qtype]
    n_blocks = int(np.prod(ne)) // blck
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in _BLOCK_F16_SCALES.get(qtype, ()):
        raw[:, off:off + 2] = np.full(n_blocks, 0.01, np.float16).view(np.uint8).reshape(-1, 2)
    return raw.tobytes()


def build(spec: TinySpec) -> TinyModel:
    """A valid llama model for ``spec`` (an SPM vocab of ``n_vocab`` tokens)."""
    rng = np.random.default_rng(spec.seed)
    head_dim = spec.n_embd // spec.n_head
    n_q, n_kv = head_dim * spec.n_head, head_dim * spec.n_head_kv
    a = spec.arch
    toks, scores, types = _tokens(spec.n_vocab)
    L = spec.n_layer
    heads: tuple[VT, Any, VT | None] = (VT.ARRAY, [spec.n_head] * L, VT.INT32) if spec.head_arrays \
        else (VT.UINT32, spec.n_head, None)
    heads_kv: tuple[VT, Any, VT | None] = (VT.ARRAY, [spec.n_head_kv] * L, VT.UINT32) if spec.head_arrays \
        else (VT.UINT32, spec.n_head_kv, None)
    kv = [
        KVEntry("general.architecture", VT.STRING, a),
        KVEntry("general.name", VT.STRING, f"tiny-{spec.tag}"),
        KVEntry(f"{a}.context_length", VT.UINT32, spec.n_ctx),
        KVEntry(f"{a}.embedding_length", VT.UINT32, spec.n_embd),
        KVEntry(f"{a}.block_count", VT.UINT32, L),
        KVEntry(f"{a}.feed_forward_length", VT.UINT32, spec.n_ff),
        KVEntry(f"{a}.attention.head_count", *heads),
        KVEntry(f"{a}.attention.head_count_kv", *heads_kv),
        KVEntry(f"{a}.attention.layer_norm_rms_epsilon", VT.FLOAT32, 1e-5),
        KVEntry(f"{a}.rope.freq_base", VT.FLOAT32, 10000.0 + spec.seed),
        KVEntry(f"{a}.rope.dimension_count", VT.UINT32, head_dim),
        *([KVEntry(f"{a}.expert_count", VT.UINT32, spec.n_expert),
           KVEntry(f"{a}.expert_used_count", VT.UINT32, spec.n_expert_used)] if spec.n_expert else []),
        *([KVEntry(f"{a}.rope.scaling.type", VT.STRING, spec.rope_scaling),
           KVEntry(f"{a}.rope.scaling.factor", VT.FLOAT32, spec.rope_factor),
           KVEntry(f"{a}.rope.scaling.original_context_length", VT.UINT32, spec.n_ctx // 4)]
          if spec.rope_scaling else []),
        *_gemma3_kv(spec),
        KVEntry("tokenizer.ggml.model", VT.STRING, "llama"),
        KVEntry("tokenizer.ggml.tokens", VT.ARRAY, toks, VT.STRING),
        KVEntry("tokenizer.ggml.scores", VT.ARRAY, scores, VT.FLOAT32),
        KVEntry("tokenizer.ggml.token_type", VT.ARRAY, types, VT.INT32),
        KVEntry("tokenizer.ggml.bos_token_id", VT.UINT32, 1),
        KVEntry("tokenizer.ggml.eos_token_id", VT.UINT32, 2),
        KVEntry("tokenizer.ggml.unknown_token_id", VT.UINT32, 0),
    ]
    tensors: list[TensorEntry] = []

    def add(name: str, ne: tuple[int, ...], qtype: QT = spec.qtype) -> None:
        t, data = _weight(rng, ne, qtype)
        tensors.append(TensorEntry(name, t, ne, data))

    add("token_embd.weight", (spec.n_embd, spec.n_vocab))
    add("output_norm.weight", (spec.n_embd,))
    if not spec.tied:
        add("output.weight", (spec.n_embd, spec.n_vocab))
    if spec.rope_freqs:
        add("rope_freqs.weight", (head_dim // 2,))
    for i in range(L):
        b = f"blk.{i}."
        add(b + "attn_norm.weight", (spec.n_embd,))
        if spec.fused_qkv:
            add(b + "attn_qkv.weight", (spec.n_embd, n_q + 2 * n_kv))
        else:
            add(b + "attn_q.weight", (spec.n_embd, n_q))
            add(b + "attn_k.weight", (spec.n_embd, n_kv))
            add(b + "attn_v.weight", (spec.n_embd, n_kv))
        add(b + "attn_output.weight", (n_q, spec.n_embd))
        add(b + "ffn_norm.weight", (spec.n_embd,))
        if spec.arch == "gemma3":
            for name, n in (("post_attention_norm", spec.n_embd), ("attn_k_norm", head_dim),
                            ("attn_q_norm", head_dim), ("post_ffw_norm", spec.n_embd)):
                add(b + name + ".weight", (n,))
        if spec.n_expert:
            # the router stays F32, as llama-quantize leaves ffn_gate_inp
            add(b + "ffn_gate_inp.weight", (spec.n_embd, spec.n_expert), QT.F32)
            add(b + "ffn_gate_exps.weight", (spec.n_embd, spec.n_ff, spec.n_expert))
            add(b + "ffn_down_exps.weight", (spec.n_ff, spec.n_embd, spec.n_expert))
            add(b + "ffn_up_exps.weight", (spec.n_embd, spec.n_ff, spec.n_expert))
        else:
            add(b + "ffn_gate.weight", (spec.n_embd, spec.n_ff))
            add(b + "ffn_down.weight", (spec.n_ff, spec.n_embd))
            add(b + "ffn_up.weight", (spec.n_embd, spec.n_ff))
        if spec.bias:
            qkv = (("attn_qkv", n_q + 2 * n_kv),) if spec.fused_qkv else (
                ("attn_q", n_q), ("attn_k", n_kv), ("attn_v", n_kv))
            ffn = () if spec.n_expert else (("ffn_gate", spec.n_ff), ("ffn_down", spec.n_embd),
                                            ("ffn_up", spec.n_ff))
            for name, n in (*qkv, ("attn_output", spec.n_embd), *ffn):
                add(b + name + ".bias", (n,))
    return TinyModel(spec, kv, tensors)


def _gemma3_kv(spec: TinySpec) -> list[KVEntry]:
    """The gemma3 keys of ``spec`` that are set (an absent key keeps the reference's default)."""
    a = spec.arch
    if a != "gemma3":
        return []
    out = []
    for key, vtype, value in (("attention.sliding_window", VT.UINT32, spec.n_swa),
                              ("attention.sliding_window_pattern", VT.UINT32, spec.swa_pattern),
                              ("rope.freq_base_swa", VT.FLOAT32, spec.rope_base_swa),
                              ("final_logit_softcapping", VT.FLOAT32, spec.softcap)):
        if value:
            out.append(KVEntry(f"{a}.{key}", vtype, value))
    return out


# ---- writing ---------------------------------------------------------------------------

_SCALAR = {VT.UINT8: "<B", VT.INT8: "<b", VT.UINT16: "<H", VT.INT16: "<h", VT.UINT32: "<I",
           VT.INT32: "<i", VT.FLOAT32: "<f", VT.BOOL: "<?", VT.UINT64: "<Q", VT.INT64: "<q",
           VT.FLOAT64: "<d"}


def _str(s: str | bytes) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def _value(vtype: VT, value: Any, arr_type: VT | None) -> bytes:
    if vtype == VT.STRING:
        return _str(value)
    if vtype == VT.ARRAY:
        assert arr_type is not None
        return struct.pack("<IQ", arr_type, len(value)) + b"".join(_value(arr_type, v, None) for v in value)
    return struct.pack(_SCALAR[vtype], value)


def _pad(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


def gguf_bytes(kv: list[KVEntry], tensors: list[TensorEntry]) -> bytes:
    """One GGUF v3 file."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)))
    for e in kv:
        out += _str(e.key) + struct.pack("<I", e.type) + _value(e.type, e.value, e.arr_type)
    offset = 0
    for t in tensors:
        out += _str(t.name) + struct.pack("<I", len(t.ne)) + struct.pack(f"<{len(t.ne)}Q", *t.ne)
        out += struct.pack("<IQ", t.type, offset)
        offset += _pad(len(t.data))
    if tensors:
        out += b"\0" * (_pad(len(out)) - len(out))
    for t in tensors:
        out += t.data + b"\0" * (_pad(len(t.data)) - len(t.data))
    return bytes(out)


def shard_groups(model: TinyModel, n_split: int) -> list[list[TensorEntry]]:
    """Tensors split into ``n_split`` contiguous groups (the first holds at least one)."""
    ts = model.tensors
    size = -(-len(ts) // n_split)
    return [ts[i * size:(i + 1) * size] for i in range(n_split)]


def write(model: TinyModel, directory: Path, stem: str, *,
          groups: list[list[TensorEntry]] | None = None) -> Path:
    """Write ``model``; with ``spec.n_split > 1`` (or explicit ``groups``) as shards named
    ``<stem>-%05d-of-%05d.gguf``, the metadata in the first.  Returns the path to load."""
    directory.mkdir(parents=True, exist_ok=True)
    if groups is None:
        if model.spec.n_split <= 1:
            path = directory / f"{stem}.gguf"
            path.write_bytes(gguf_bytes(model.kv, model.tensors))
            return path
        groups = shard_groups(model, model.spec.n_split)
    n = len(groups)
    total = sum(len(g) for g in groups)
    paths = [directory / f"{stem}-{i + 1:05d}-of-{n:05d}.gguf" for i in range(n)]
    for i, (g, p) in enumerate(zip(groups, paths, strict=True)):
        split_kv = [KVEntry("split.no", VT.UINT16, i), KVEntry("split.count", VT.UINT16, n),
                    KVEntry("split.tensors.count", VT.INT32, total)]
        # gguf-split: the first shard holds the model's keys then the split keys; the others
        # hold only the split keys
        kv = [e for e in model.kv if not e.key.startswith("split.")] if i == 0 else []
        p.write_bytes(gguf_bytes(kv + split_kv, g))
    return paths[0]


def spec_grid(seed: int = 0) -> list[TinySpec]:
    """The representative shapes of the default parity slice."""
    base = TinySpec(seed=seed)
    return [
        base,
        replace(base, qtype=QT.F16, tied=True),
        replace(base, qtype=QT.Q8_0, bias=True),
        replace(base, qtype=QT.Q4_0, n_layer=3, n_head=8, n_head_kv=8, head_arrays=True),
        replace(base, n_embd=32, n_head=2, n_head_kv=1, n_ff=48, n_layer=1, rope_freqs=True),
        replace(base, qtype=QT.Q8_0, n_split=2),
        replace(base, qtype=QT.F16, n_split=3, n_layer=3, tied=True),
        replace(base, n_embd=96, n_head=3, n_head_kv=3, n_ff=160, n_vocab=50, qtype=QT.Q4_0, bias=True),
        replace(base, n_embd=256, n_ff=256, qtype=QT.Q4_K),
    ]


def spec_grid_full(seed: int = 0) -> list[TinySpec]:
    """More types for the full sweep (K/IQ blocks are random bytes with finite scales)."""
    base = TinySpec(seed=seed)
    return [replace(base, n_embd=256, n_ff=256, qtype=t, tied=i % 2 == 1)
            for i, t in enumerate((QT.Q2_K, QT.Q3_K, QT.Q5_K, QT.Q6_K, QT.IQ4_XS, QT.BF16))] + [
        replace(base, qtype=t) for t in (QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.IQ4_NL)]
