"""Deterministic GGUF corpus for the ``gguf`` parity: tiny valid files and malformed mutants.

Valid seeds come from ``gguf.GGUFWriter`` (what converters write) and from ``encode``, a raw
writer that can also express what GGUFWriter refuses (duplicates, nested arrays, any type id,
wrong offsets).  Mutants are derived from a valid file by:

- truncation at every field boundary that ``pyggml.model.gguf.layout`` reports;
- overwriting each header field with the values that sit on or around a gguf.cpp limit;
- random byte flips (seeded);
- structural variants built with ``encode`` (duplicates, NUL in keys, alignment types...).

Everything is a pure function of the seed, so a mismatch reproduces by name.
"""

from __future__ import annotations

import random
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter

from ..model.gguf import (
    GGUF_MAX_ARRAY_ELEMENTS,
    GGUF_MAX_STRING_LENGTH,
    INT64_MAX,
    SIZE_MAX,
    SIZEOF_GGUF_KV,
    SIZEOF_GGUF_TENSOR_INFO,
    TYPE_TRAITS,
    Span,
    ggml_nbytes,
    layout,
)

T = GGUFValueType
Q = GGMLQuantizationType

_FMT = {T.UINT8: "<B", T.INT8: "<b", T.UINT16: "<H", T.INT16: "<h", T.UINT32: "<I", T.INT32: "<i",
        T.FLOAT32: "<f", T.BOOL: "<B", T.UINT64: "<Q", T.INT64: "<q", T.FLOAT64: "<d"}


@dataclass(frozen=True)
class Mutant:
    """A named malformed file; ``data`` is built on demand (mutants of a vocabulary are
    megabytes each, so a plan of thousands must not hold them all)."""

    name: str
    make: Callable[[], bytes]

    @property
    def data(self) -> bytes:
        return self.make()


def _const(data: bytes) -> Callable[[], bytes]:
    return lambda: data


# ---- a raw writer ---------------------------------------------------------------------------

@dataclass
class RawKV:
    key: bytes
    type: int                   # gguf_type id, any int32
    value: Any                  # int/float/bytes, list for arrays, or bytes payload (raw=True)
    arr_type: int | None = None
    raw: bool = False           # value is the already-encoded payload


@dataclass
class RawTensor:
    name: bytes
    type: int
    ne: list[int]               # n_dims = len(ne)
    offset: int | None = None   # None: the running padded offset


def _enc_str(b: bytes) -> bytes:
    return struct.pack("<Q", len(b)) + b


def _enc_scalar(t: int, v: Any) -> bytes:
    if t == T.STRING:
        return _enc_str(v)
    if isinstance(v, bytes):    # raw bit pattern (e.g. a signalling NaN)
        return v
    return struct.pack(_FMT[T(t)], v)


def encode(kvs: list[RawKV], tensors: list[RawTensor] = (), *, version: int = 3,  # type: ignore[assignment]
           alignment: int = 32, n_kv: int | None = None, n_tensors: int | None = None,
           pad: bool = True, data: bool = True, fill: int = 0x5A) -> bytes:
    """A GGUF file from parts; ``alignment`` is the layout's (write the key yourself).

    ``pad``: the padding before the data section; ``data``: the tensors' bytes (filled with
    ``fill``; shapes of 16 MiB or more get none)."""
    out = bytearray(b"GGUF")
    out += struct.pack("<Iqq", version, len(tensors) if n_tensors is None else n_tensors,
                       len(kvs) if n_kv is None else n_kv)
    for kv in kvs:
        out += _enc_str(kv.key) + struct.pack("<i", kv.type)
        if kv.raw:
            out += kv.value
        elif kv.type == T.ARRAY:
            out += struct.pack("<iQ", kv.arr_type, len(kv.value))
            out += b"".join(_enc_scalar(kv.arr_type, v) for v in kv.value)
        else:
            out += _enc_scalar(kv.type, kv.value)
    running, sizes = 0, []
    for t in tensors:
        out += _enc_str(t.name) + struct.pack("<I", len(t.ne))
        out += b"".join(struct.pack("<q", x) for x in t.ne)
        out += struct.pack("<iQ", t.type, (running if t.offset is None else t.offset) & SIZE_MAX)
        blck, tsize = TYPE_TRAITS.get(t.type, (0, 0))
        ne = (list(t.ne) + [1] * 4)[:4]
        nbytes = ggml_nbytes(ne, blck, tsize) if blck and len(t.ne) <= 4 else 0
        sizes.append(nbytes if nbytes < (1 << 24) else 0)      # nonsense shapes get no data
        running += -(-nbytes // alignment) * alignment
    if tensors and pad:
        out += bytes(-len(out) % alignment)
    if tensors and data:
        for size in sizes:
            out += bytes([fill]) * size + bytes(-size % alignment)
    return bytes(out)


# ---- valid seeds ----------------------------------------------------------------------------

def _writer_file(build) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "seed.gguf"
        w = GGUFWriter(path, arch="llama")
        build(w)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path.read_bytes()


def _rand_tensor(rng: random.Random, w: GGUFWriter, name: str) -> None:
    qt = rng.choice([Q.F32, Q.F16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q6_K, Q.BF16, Q.I8, Q.I32, Q.Q5_K])
    blck, tsize = TYPE_TRAITS[int(qt)]
    n_dims = rng.randint(1, 4)
    shape = [rng.choice([1, 2, 3]) for _ in range(n_dims - 1)][::-1]   # numpy order
    row = blck * rng.choice([1, 2, 3])
    nbytes_row = row // blck * tsize
    arr = np.frombuffer(rng.randbytes(int(np.prod(shape, dtype=int)) * nbytes_row), dtype=np.uint8)
    arr = arr.reshape(*shape, nbytes_row)
    w.add_tensor(name, arr, raw_dtype=qt)


def writer_seeds(seed: int) -> list[tuple[str, bytes]]:
    """Tiny valid files written by gguf.GGUFWriter."""
    rng = random.Random(seed)
    seeds = []

    def kv_all(w: GGUFWriter) -> None:
        w.add_uint8("t.u8", 255)
        w.add_int8("t.i8", -128)
        w.add_uint16("t.u16", 65535)
        w.add_int16("t.i16", -32768)
        w.add_uint32("t.u32", 2**32 - 1)
        w.add_int32("t.i32", -(2**31))
        w.add_uint64("t.u64", 2**64 - 1)
        w.add_int64("t.i64", -(2**63))
        w.add_float32("t.f32", float("nan"))
        w.add_float32("t.f32b", -0.0)
        w.add_float64("t.f64", float("inf"))
        w.add_bool("t.bool", True)
        w.add_string("t.str", "h\u00e9llo \U0001f600")
        w.add_array("t.arr.str", ["a", "", "\u00e9", "x" * 100])
        w.add_array("t.arr.i32", [1, -2, 3])
        w.add_array("t.arr.f32", [0.5, -1.25, 1e30])
        w.add_array("t.arr.bool", [True, False, True])
        w.add_key_value("t.arr.u8", [0, 1, 255], T.ARRAY, sub_type=T.UINT8)
        w.add_key_value("t.arr.f64", [1.5, -0.0], T.ARRAY, sub_type=T.FLOAT64)
        w.add_key_value("t.arr.u64", [2**64 - 1, 0], T.ARRAY, sub_type=T.UINT64)
        w.add_key_value("t.arr.i16", [-1, 7], T.ARRAY, sub_type=T.INT16)

    seeds.append(("writer-kv-all", _writer_file(kv_all)))

    for k in range(4):
        def tensors(w: GGUFWriter, k: int = k) -> None:
            w.add_uint32("llama.block_count", k)
            if k == 2:
                w.add_custom_alignment(64)
            if k == 3:
                w.add_custom_alignment(8)
            for i in range(rng.randint(1, 5)):
                _rand_tensor(rng, w, f"blk.{i}.w{k}")
        seeds.append((f"writer-tensors-{k}", _writer_file(tensors)))
    return seeds


def raw_seeds(seed: int) -> list[tuple[str, bytes]]:
    """Valid files GGUFWriter does not write: v2, no KV, odd alignments, zero-size tensors."""
    rng = random.Random(seed + 1)
    arch = RawKV(b"general.architecture", T.STRING, b"llama")
    align = lambda a: RawKV(b"general.alignment", T.UINT32, a)  # noqa: E731
    t = lambda name, typ, ne, off=None: RawTensor(name, typ, ne, off)  # noqa: E731
    seeds = [
        ("raw-empty", encode([])),
        ("raw-v2", encode([arch], [t(b"a", Q.F32, [4])], version=2)),
        ("raw-no-kv-tensor", encode([], [t(b"x", Q.F16, [3, 2])])),
        ("raw-align1", encode([align(1)], [t(b"a", Q.I8, [3]), t(b"b", Q.I8, [5])], alignment=1)),
        ("raw-align2-nt0", encode([arch, align(2)])),
        ("raw-align256", encode([align(256), arch], [t(b"a", Q.F32, [1]), t(b"b", Q.Q8_0, [32, 2])],
                                alignment=256)),
        ("raw-zero-dims", encode([arch], [t(b"z", Q.F32, [0, 5]), t(b"y", Q.Q4_0, [0]),
                                          t(b"w", Q.F32, [2, 3, 0, 7])])),
        ("raw-n-dims-0", encode([arch], [t(b"s", Q.F32, [])])),
        ("raw-empty-name", encode([arch], [t(b"", Q.F32, [2])])),
        ("raw-name-63", encode([arch], [t(b"n" * 63, Q.F32, [2])])),
        ("raw-nul-names", encode([RawKV(b"k\0a", T.UINT8, 1), RawKV(b"k\0b", T.UINT8, 2)],
                                 [t(b"a\0x", Q.F32, [1]), t(b"a\0y", Q.F32, [1])])),
        ("raw-nul-align-key", encode([RawKV(b"general.alignment\0zz", T.UINT32, 64),
                                      RawKV(b"general.alignment", T.UINT8, 3)],
                                     [t(b"a", Q.F32, [3])], alignment=64)),
        ("raw-bool-bytes", encode([RawKV(b"b2", T.BOOL, 2), RawKV(b"bff", T.BOOL, 255),
                                   RawKV(b"ba", T.ARRAY, [0, 7, 128], T.BOOL)])),
        ("raw-snan", encode([RawKV(b"f", T.FLOAT32, b"\x01\x00\x80\x7f"),
                             RawKV(b"d", T.FLOAT64, b"\x01\x00\x00\x00\x00\x00\xf0\x7f"),
                             RawKV(b"fa", T.ARRAY, [b"\x01\x00\x80\xff", 1.0], T.FLOAT32)])),
        ("raw-str-nul", encode([RawKV(b"s", T.STRING, b"ab\0cd"),
                                RawKV(b"sa", T.ARRAY, [b"\0", b"x\0y", b"\xff\xfe"], T.STRING)])),
        ("raw-empty-arrays", encode([RawKV(b"e%d" % i, T.ARRAY, [], i) for i in range(13) if i != 9])),
        ("raw-all-new-types", encode([arch], [t(b"t%d" % q, q, [TYPE_TRAITS[q][0] * 2, 2])
                                              for q in sorted(TYPE_TRAITS)])),
        ("raw-huge-sparse", encode([arch], [t(b"h", Q.I8, [2**40, 0, 2**20])])),
        ("raw-ne-product-edge", encode([arch], [t(b"e", Q.I8, [INT64_MAX // 3, 3])], data=False)),
        ("raw-no-data", encode([arch], [t(b"a", Q.F32, [1024])], data=False)),
    ]
    for k in range(6):  # random structures
        kvs = []
        for i in range(rng.randint(0, 6)):
            ty = rng.choice([x for x in T if x != T.ARRAY] + [T.ARRAY] * 3)
            kvs.append(_rand_kv(rng, b"r.%d" % i, ty))
        ts = []
        for i in range(rng.randint(0, 4)):
            q = rng.choice(sorted(TYPE_TRAITS))
            ne = [TYPE_TRAITS[q][0] * rng.randint(0, 2)]
            ne += [rng.randint(0, 3) for _ in range(rng.randint(0, 3))]
            ts.append(t(b"t.%d" % i, q, ne))
        al = rng.choice([None, 1, 4, 16, 32, 128])
        if al is not None:
            kvs.insert(rng.randint(0, len(kvs)), align(al))
        seeds.append((f"raw-random-{k}", encode(kvs, ts, alignment=al or 32)))
    return seeds


def _rand_kv(rng: random.Random, key: bytes, ty: int) -> RawKV:
    def val(t: int) -> Any:
        if t == T.STRING:
            return rng.randbytes(rng.randint(0, 12))
        if t in (T.FLOAT32, T.FLOAT64):
            return rng.randbytes(4 if t == T.FLOAT32 else 8)
        if t == T.BOOL:
            return rng.randint(0, 255)
        fmt = _FMT[T(t)]
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, rng.randbytes(size))[0]

    if ty == T.ARRAY:
        at = rng.choice([x for x in T if x != T.ARRAY])
        return RawKV(key, ty, [val(at) for _ in range(rng.randint(0, 5))], at)
    return RawKV(key, ty, val(ty))


# ---- malformed variants ---------------------------------------------------------------------

def structural_mutants() -> list[Mutant]:
    """Malformed files that need a structure change rather than a byte change."""
    arch = RawKV(b"general.architecture", T.STRING, b"llama")
    t = lambda name, typ, ne, off=None: RawTensor(name, typ, ne, off)  # noqa: E731
    f32 = [t(b"a", Q.F32, [8])]
    cases: list[tuple[str, bytes]] = [
        ("dup-key", encode([arch, RawKV(b"x", T.UINT8, 1), RawKV(b"x", T.UINT8, 1)])),
        ("dup-key-diff-type", encode([RawKV(b"x", T.UINT8, 1), RawKV(b"x", T.STRING, b"s")])),
        ("empty-key", encode([RawKV(b"", T.UINT8, 1)])),
        ("dup-tensor", encode([arch], [t(b"a", Q.F32, [1]), t(b"a", Q.F32, [1])])),
        ("name-64", encode([arch], [t(b"n" * 64, Q.F32, [2])])),
        ("name-1000", encode([arch], [t(b"n" * 1000, Q.F32, [2])])),
        ("nested-array", encode([RawKV(b"n", T.ARRAY, struct.pack("<iQ", T.ARRAY, 1)
                                       + struct.pack("<iQ", T.UINT8, 1) + b"\x01", raw=True)])),
        ("nested-array-empty", encode([RawKV(b"n", T.ARRAY, struct.pack("<iQ", T.ARRAY, 0), raw=True)])),
        ("n-dims-5", encode([arch], [t(b"a", Q.F32, [1, 1, 1, 1, 1])])),
        ("ne-negative", encode([arch], [t(b"a", Q.F32, [-1])])),
        ("ne-overflow", encode([arch], [t(b"a", Q.I8, [2**62, 4])])),
        ("ne-overflow-edge", encode([arch], [t(b"a", Q.I8, [INT64_MAX // 3 + 1, 3])], data=False)),
        ("nbytes-too-big", encode([arch], [t(b"a", Q.F32, [2**62])], data=False)),
        ("nbytes-pad-wrap", encode([arch], [t(b"a", Q.F64, [2**61 - 1])], data=False)),
        ("nbytes-pad-wrap-align", encode([RawKV(b"general.alignment", T.UINT32, 2**31)],
                                         [t(b"a", Q.I8, [INT64_MAX])], data=False)),
        ("nbytes-wrap-q4", encode([arch], [t(b"a", Q.Q4_0, [2**60])], data=False)),
        ("size-sum-overflow", encode([arch], [t(b"a", Q.I8, [INT64_MAX]), t(b"b", Q.I8, [INT64_MAX]),
                                              t(b"c", Q.I8, [INT64_MAX])], data=False)),
        ("new-tensor-abort", encode([arch], [t(b"a", Q.I8, [2**62, 0, 4])])),
        ("overlap", encode([arch], [t(b"a", Q.F32, [8]), t(b"b", Q.F32, [8], 0)])),
        ("misaligned", encode([arch], [t(b"a", Q.F32, [8]), t(b"b", Q.F32, [8], 33)])),
        ("first-offset-1", encode([arch], [t(b"a", Q.F32, [8], 1)])),
        ("data-truncated", encode([arch], [t(b"a", Q.F32, [4096])])[:-100]),
        ("n-kv-short", encode([arch, RawKV(b"x", T.UINT8, 1)], n_kv=1)),
        ("n-tensors-short", encode([arch], f32, n_tensors=0)),
        ("string-eq-remaining", encode([RawKV(b"s", T.STRING, b"abc")])),
    ]
    for name, ty, val in [("u8", T.UINT8, 32), ("u16", T.UINT16, 32), ("i32", T.INT32, 32),
                          ("u64", T.UINT64, 32), ("f32", T.FLOAT32, 32.0), ("str", T.STRING, b"32"),
                          ("bool", T.BOOL, 1)]:
        cases.append((f"align-type-{name}", encode([RawKV(b"general.alignment", ty, val)], f32)))
    cases.append(("align-type-arr", encode([RawKV(b"general.alignment", T.ARRAY, [32], T.UINT32)], f32)))
    for a in (0, 3, 48, 2**31 + 1, 2**32 - 1):
        cases.append((f"align-{a}", encode([RawKV(b"general.alignment", T.UINT32, a)], f32)))
    for a in (0, 3):
        cases.append((f"align-{a}-no-tensors", encode([RawKV(b"general.alignment", T.UINT32, a)])))
    cases.append(("align-2^31", encode([RawKV(b"general.alignment", T.UINT32, 2**31)], f32, data=False)))
    for ty in (13, 14, -1, 2**31 - 1):
        cases.append((f"kv-type-{ty}", encode([RawKV(b"k", ty, b"\0" * 8, raw=True)])))
        cases.append((f"arr-type-{ty}", encode([RawKV(b"k", T.ARRAY, struct.pack("<iQ", ty, 1) + b"\0" * 8,
                                                       raw=True)])))
    for q in (-1, 4, 5, 31, 32, 33, 36, 37, 38, 43, 44, 1000):
        cases.append((f"tensor-type-{q}", encode([arch], [t(b"a", q, [256])], data=False)))
    for q in sorted(TYPE_TRAITS):
        if TYPE_TRAITS[q][0] > 1:
            cases.append((f"block-{q}", encode([arch], [t(b"a", q, [TYPE_TRAITS[q][0] + 1])], data=False)))
    return [Mutant(f"struct/{n}", _const(d)) for n, d in cases]


def _interesting(span: Span, data: bytes, orig: int) -> list[int]:
    """Values worth writing into a field: the limits gguf.cpp checks, and their neighbours."""
    rem = len(data) - span.offset - span.size
    label = span.label
    if label == "version":
        return [0, 1, 2, 4, 0x03000000, 0x00030000, 0xFFFF0000, 0x10003, 2**32 - 1]
    if label == "n_tensors":
        lim = SIZE_MAX // SIZEOF_GGUF_TENSOR_INFO
        return [-1, 0, orig - 1, orig + 1, lim, lim + 1, 2**32, INT64_MAX, -(2**63)]
    if label == "n_kv":
        lim = SIZE_MAX // SIZEOF_GGUF_KV
        return [-1, 0, orig - 1, orig + 1, lim, lim + 1, 2**32, INT64_MAX]
    if label.endswith(".len"):
        return [0, 1, orig - 1, orig + 1, rem, rem + 1, GGUF_MAX_STRING_LENGTH,
                GGUF_MAX_STRING_LENGTH + 1, 2**63, SIZE_MAX]
    if label.endswith(".type") and label.startswith("kv"):
        return [-1, 9, 13, 8, 0, 10, 6, 12, 2**31 - 1]
    if label.endswith(".arr_type"):
        return [-1, 9, 13, 8, 0, 10, 7, 2**31 - 1]
    if label.endswith(".n"):
        return [0, orig - 1, orig + 1, rem // 8, rem // 8 + 1, rem + 1, GGUF_MAX_ARRAY_ELEMENTS,
                GGUF_MAX_ARRAY_ELEMENTS + 1, 2**61, SIZE_MAX]
    if label.endswith(".n_dims"):
        return [0, 1, 2, 3, 4, 5, 2**31, 2**32 - 1]
    if ".ne[" in label:
        return [-1, 0, 1, 2, 31, 33, orig - 1, orig * 2, 2**31, 2**32, 2**62, INT64_MAX // 3,
                INT64_MAX, -(2**63)]
    if label.endswith(".type"):
        return [-1, 0, 1, 2, 4, 5, 8, 24, 30, 31, 36, 39, 41, 42, 43, 44, 2**31 - 1]
    if label.endswith(".offset"):
        return [0, orig + 1, orig - 1, orig + 32, orig - 32, 2**63, SIZE_MAX, 1]
    if label.endswith(".value") and span.size in (1, 2, 4, 8):
        return [0, 1, 3, 64, 2**(8 * span.size) - 1]
    return []


_PACK = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
_SIGNED = {"n_tensors", "n_kv"}


def _encode_field(span: Span, value: int) -> bytes:
    """``value`` in the field's width, wrapped into its range (signed for counts, dims, types)."""
    size = span.size
    signed = span.label in _SIGNED or ".ne[" in span.label or span.label.endswith("type")
    value &= (1 << 8 * size) - 1
    if signed and value >= 1 << (8 * size - 1):
        value -= 1 << 8 * size
    return struct.pack(_PACK[size].lower() if signed else _PACK[size], value)


def _cut(data: bytes, n: int) -> bytes:
    return data[:n]


def _patch(data: bytes, edits: tuple[tuple[int, bytes], ...]) -> bytes:
    b = bytearray(data)
    for pos, new in edits:
        b[pos:pos + len(new)] = new
    return bytes(b)


def mutants(base: str, data: bytes, rng: random.Random, *, flips: int = 20) -> Iterator[Mutant]:
    """Every targeted mutant of ``data`` (truncations, field overwrites) plus ``flips`` random
    byte-flip mutants, in a deterministic order."""
    spans = layout(data)
    header_end = max((s.offset + s.size for s in spans if s.label != "data"), default=len(data))
    cuts = sorted({c for s in spans for c in (s.offset, s.offset + s.size) if c < len(data)}
                  | {len(data) - 1} - {-1})
    for c in cuts:
        yield Mutant(f"{base}/trunc@{c}", partial(_cut, data, c))
    for s in spans:
        if s.label in ("pad", "data"):
            continue
        if s.label == "magic":
            for i in range(4):
                yield Mutant(f"{base}/magic[{i}]", partial(_patch, data, ((i, b"X"),)))
            yield Mutant(f"{base}/magic-lower", partial(_patch, data, ((0, b"gguf"),)))
            continue
        if s.size not in _PACK:
            continue
        fmt = _PACK[s.size]
        if s.label in _SIGNED or ".ne[" in s.label:
            fmt = fmt.lower()
        orig = struct.unpack_from(fmt, data, s.offset)[0]
        for v in dict.fromkeys(_interesting(s, data, orig)):
            if v != orig:
                edit = ((s.offset, _encode_field(s, v)),)
                yield Mutant(f"{base}/{s.label}={v}", partial(_patch, data, edit))
    for k in range(flips):
        edits = []
        for _ in range(rng.choice([1, 1, 2, 4, 8])):
            pos = rng.randrange(max(header_end, 1))
            byte = rng.randrange(256) if rng.random() < 0.5 else data[pos] ^ (1 << rng.randrange(8))
            edits.append((pos, bytes([byte])))
        yield Mutant(f"{base}/flip{k}", partial(_patch, data, tuple(edits)))


# ---- tokenizer metadata mutants (the ``gguf`` and ``loader`` corpora) ---------------------

KVMutant = tuple[str, list[Any]]

# tokenizer keys the reference's vocab load reads that a minimal SPM model leaves out, each
# with a valid value (mutated below like the keys the model has)
TOKENIZER_OPTIONAL: list[tuple[str, GGUFValueType, Any, GGUFValueType | None]] = [
    ("tokenizer.ggml.pre", T.STRING, "default", None),
    ("tokenizer.ggml.token_type_count", T.UINT32, 2, None),
    ("tokenizer.ggml.add_bos_token", T.BOOL, True, None),
    ("tokenizer.ggml.add_eos_token", T.BOOL, False, None),
    ("tokenizer.ggml.add_sep_token", T.BOOL, False, None),
    ("tokenizer.ggml.add_space_prefix", T.BOOL, True, None),
    ("tokenizer.ggml.remove_extra_whitespaces", T.BOOL, False, None),
    ("tokenizer.ggml.padding_token_id", T.UINT32, 0, None),
    ("tokenizer.ggml.eot_token_id", T.UINT32, 2, None),
    ("tokenizer.ggml.prefix_token_id", T.UINT32, 3, None),
    ("tokenizer.ggml.normalizer.lowercase", T.BOOL, True, None),
    ("tokenizer.ggml.normalizer.strip_accents", T.BOOL, False, None),
    ("tokenizer.ggml.suppress_tokens", T.ARRAY, [1, 2, 99], T.INT32),
    ("tokenizer.ggml.merges", T.ARRAY, ["a b", "ab c"], T.STRING),
    ("tokenizer.chat_template", T.STRING, "{{ messages }}", None),
]

_MODEL_NAMES = ["cpt2", "", "LLAMA", b"\xffllama", b"llama\0x", b"lla\xc3", "gpt2", "bert", "t5", "rwkv",
                "plamo2", "none", "no_vocab", "hybriddna", "whitespace", "gemma4", "test"]
# another GGUF type for a value of each type: (name, type, value, arr_type)
_RETYPE: list[tuple[str, GGUFValueType, Any, GGUFValueType | None]] = [
    ("u8", T.UINT8, 1, None), ("i32", T.INT32, 1, None), ("u32", T.UINT32, 1, None),
    ("u64", T.UINT64, 1, None), ("f32", T.FLOAT32, 1.0, None), ("bool", T.BOOL, True, None),
    ("str", T.STRING, "1", None), ("arr-u32", T.ARRAY, [1], T.UINT32), ("arr-str", T.ARRAY, ["1"], T.STRING),
]


def tokenizer_kv_mutants(kv: list[Any], make: Callable[[Any, GGUFValueType, Any, GGUFValueType | None], Any]
                         ) -> list[KVMutant]:
    """Named variants of a model's metadata ``kv`` (entries with ``key``, ``type``, ``value``,
    ``arr_type``; ``make(key, type, value, arr_type)`` builds one): for every ``tokenizer.*``
    key it has and each of ``TOKENIZER_OPTIONAL`` added to it, the key dropped, renamed,
    with invalid UTF-8 or a NUL in its name, its value of each other GGUF type, and values
    that sit on the vocab loader's checks (unknown tokenizer names, short arrays, duplicate
    or invalid-UTF-8 tokens, ids out of range...)."""
    out: list[KVMutant] = []
    idx = {e.key: i for i, e in enumerate(kv)}

    def with_entry(i: int | None, entry: Any, name: str) -> None:
        new = list(kv)
        if i is None:
            new.append(entry)
        elif entry is None:
            del new[i]
        else:
            new[i] = entry
        out.append((name, new))

    targets: list[tuple[int | None, Any]] = [(i, e) for i, e in enumerate(kv)
                                             if str(e.key).startswith("tokenizer.")]
    for key, ty, val, at in TOKENIZER_OPTIONAL:
        if key not in idx:
            targets.append((None, make(key, ty, val, at)))
    for i, e in targets:
        k = e.key if isinstance(e.key, str) else e.key.decode("utf-8", "surrogateescape")
        short = k.removeprefix("tokenizer.ggml.").removeprefix("tokenizer.")
        base = f"{short}"
        if i is None:
            with_entry(None, e, f"{base}/added")
        else:
            with_entry(i, None, f"{base}/dropped")
        kb = k.encode()
        renamed = [("renamed", kb[:-1] + (b"X" if kb[-1:] != b"X" else b"Y")),
                   ("key-bad-utf8", kb[:15] + b"\xff" + kb[16:]),  # the byte after "tokenizer.ggml."
                   ("key-nul-tail", kb + b"\0x"),
                   ("key-upper", kb.upper())]
        for what, nk in renamed:
            with_entry(i, make(nk, e.type, e.value, e.arr_type), f"{base}/{what}")
        for tname, ty, val, at in _RETYPE:
            if ty == e.type and at == e.arr_type:
                continue
            if ty == T.ARRAY and e.type == T.ARRAY and at == e.arr_type:
                continue
            with_entry(i, make(e.key, ty, val, at), f"{base}/type-{tname}")
        for vname, ty, val, at in _value_variants(k, e):
            with_entry(i, make(e.key, ty, val, at), f"{base}/{vname}")
    return out


def _b(s: str | bytes) -> bytes:
    return s.encode() if isinstance(s, str) else s


def _value_variants(key: str, e: Any) -> list[tuple[str, GGUFValueType, Any, GGUFValueType | None]]:
    out: list[tuple[str, GGUFValueType, Any, GGUFValueType | None]] = []
    if key == "tokenizer.ggml.model":
        for m in _MODEL_NAMES:
            label = m if isinstance(m, str) else m.hex()
            out.append((f"value={label or 'empty'}", T.STRING, m, None))
    elif key == "tokenizer.ggml.pre":
        for p in ["bogus", "", "smollm", "llama3", b"\xffdefault", b"default\0x"]:
            out.append((f"value={(p if isinstance(p, str) else p.hex()) or 'empty'}", T.STRING, p, None))
    elif e.type == T.ARRAY and e.arr_type == T.STRING and key == "tokenizer.ggml.tokens":
        toks = list(e.value)
        dup = toks[:]
        dup[-1] = dup[-2]
        bad = toks[:]
        bad[-1] = b"\xff\xfe"
        empty = toks[:]
        empty[-1] = ""
        out += [("empty-array", T.ARRAY, [], T.STRING), ("duplicate-token", T.ARRAY, dup, T.STRING),
                ("bad-utf8-token", T.ARRAY, bad, T.STRING), ("empty-token", T.ARRAY, empty, T.STRING),
                ("nul-in-token", T.ARRAY, toks[:-1] + [b"t\0x"], T.STRING),
                ("nul-makes-duplicate", T.ARRAY, toks[:-1] + [_b(toks[-2]) + b"\0x"], T.STRING),
                ("3-tokens", T.ARRAY, toks[:3], T.STRING), ("one-more", T.ARRAY, toks + ["extra"], T.STRING),
                ("as-i32", T.ARRAY, list(range(len(toks))), T.INT32)]
    elif e.type == T.ARRAY and e.arr_type in (T.FLOAT32, T.INT32) and e.value:
        vals = list(e.value)
        out += [("short", T.ARRAY, vals[:-1], e.arr_type), ("empty-array", T.ARRAY, [], e.arr_type)]
        if key == "tokenizer.ggml.token_type":
            out += [("out-of-range", T.ARRAY, [-1, 99] + vals[2:], T.INT32),
                    ("all-undefined", T.ARRAY, [0] * len(vals), T.INT32),
                    ("as-u32", T.ARRAY, vals, T.UINT32)]
        elif key == "tokenizer.ggml.scores":
            out += [("as-i32", T.ARRAY, [int(v) for v in vals], T.INT32),
                    ("as-f64", T.ARRAY, vals, T.FLOAT64),
                    ("nan", T.ARRAY, [float("nan")] * len(vals), T.FLOAT32)]
        elif key == "tokenizer.ggml.suppress_tokens":
            out += [("as-u32", T.ARRAY, [1, 2], T.UINT32)]
    elif e.type == T.UINT32:
        out += [("value=0", T.UINT32, 0, None), ("value=n", T.UINT32, 40, None),
                ("value=max", T.UINT32, 2**32 - 1, None)]
    elif e.type == T.STRING:
        out += [("value=bad-utf8", T.STRING, b"\xff\xfe", None), ("value=empty", T.STRING, "", None)]
    elif key == "tokenizer.ggml.merges":
        out += [("bad-utf8", T.ARRAY, [b"\xff \xfe"], T.STRING), ("no-space", T.ARRAY, ["ab"], T.STRING)]
    return out
