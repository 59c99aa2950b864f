"""pyggml's GGUF parser against the running reference (gguf_init_from_buffer / _from_file).

Real files (the reference tree's vocabularies, SmolLM2) and a hypothesis-driven differential
test over random structures and random mutations of them.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyggml.model import gguf
from pyggml.parity import Options, run_component
from pyggml.parity.gguf import ours_outcome, reference_outcome, to_canonical
from pyggml.parity.mutate import RawKV, RawTensor, encode
from pyggml.reference import gguf as ref

T = gguf.GGUFValueType


def test_vocab_files(vocab_ggufs):
    # the vocabularies under 2 MiB, summary for summary (headers and arrays); the probe's JSON
    # of the big ones takes seconds each: `pyggml parity gguf --full` compares all of them
    small = [p for p in vocab_ggufs if p.stat().st_size < (2 << 20)]
    assert len(small) >= 5
    for path in small:
        want = ref.parse_file(path)
        assert want is not None, path
        assert to_canonical(gguf.parse_file(path)) == want, path.name


def test_smollm2(smollm2_path):
    data = smollm2_path.read_bytes()
    assert to_canonical(gguf.parse_file(smollm2_path)) == ref.parse_file(smollm2_path)
    assert ours_outcome(data, True) == reference_outcome(data, True)


def test_component_default_slice():
    report = run_component("gguf", Options(limit=40))
    assert report.cases == 40 and report.mismatches == 0, report.first_mismatch


# ---- differential: random structures, random damage ----------------------------------------

_SCALARS = [t for t in T if t not in (T.ARRAY, T.STRING)]
_FMT = {T.UINT8: "<B", T.INT8: "<b", T.UINT16: "<H", T.INT16: "<h", T.UINT32: "<I", T.INT32: "<i",
        T.FLOAT32: "<I", T.BOOL: "<B", T.UINT64: "<Q", T.INT64: "<q", T.FLOAT64: "<Q"}


@st.composite
def values(draw, t: int):
    if t == T.STRING:
        return draw(st.binary(max_size=12))
    fmt = _FMT[T(t)]
    bits = struct.calcsize(fmt) * 8
    v = draw(st.integers(0, 2**bits - 1))
    return struct.pack(fmt.upper(), v)  # any bit pattern, encoded raw


@st.composite
def kvs(draw):
    key = draw(st.sampled_from([b"general.alignment", b"a", b"b", b"", b"a\0x", b"general.alignment\0"])
               | st.binary(min_size=1, max_size=8))
    t = draw(st.sampled_from(list(T) + [13, -1]))
    if key.startswith(b"general.alignment") and draw(st.booleans()):
        return RawKV(key, T.UINT32, struct.pack("<I", draw(st.sampled_from([0, 1, 3, 8, 32, 64, 2**31]))))
    if t == T.ARRAY:
        at = draw(st.sampled_from(list(T) + [13]))
        if at in (T.ARRAY, 13):
            return RawKV(key, t, struct.pack("<iQ", at, draw(st.integers(0, 3))), raw=True)
        vals = draw(st.lists(values(at), max_size=4))
        payload = b"".join(struct.pack("<Q", len(v)) + v if at == T.STRING else v for v in vals)
        return RawKV(key, t, struct.pack("<iQ", at, len(vals)) + payload, raw=True)
    if t not in list(T):
        return RawKV(key, t, draw(st.binary(max_size=8)), raw=True)
    v = draw(values(t))
    return RawKV(key, t, struct.pack("<Q", len(v)) + v if t == T.STRING else v, raw=True)


@st.composite
def tensors(draw):
    name = draw(st.sampled_from([b"a", b"b", b"", b"x" * 63, b"x" * 64, b"a\0z"]))
    t = draw(st.sampled_from(sorted(gguf.TYPE_TRAITS) + [-1, 4, 31, 43]))
    blck = gguf.TYPE_TRAITS.get(t, (1, 1))[0]
    dims = draw(st.lists(st.sampled_from([0, 1, 2, 3, blck, 2 * blck, blck + 1, -1, 2**40, 2**62]),
                         max_size=5))
    offset = draw(st.sampled_from([None, None, None, 0, 32, 1]))
    return RawTensor(name, t, dims, offset)


@st.composite
def files(draw):
    data = encode(draw(st.lists(kvs(), max_size=5)), draw(st.lists(tensors(), max_size=4)),
                  version=draw(st.sampled_from([3, 3, 3, 2, 1])),
                  alignment=draw(st.sampled_from([32, 32, 1, 8, 64])), fill=draw(st.integers(0, 255)))
    how = draw(st.sampled_from(["none", "truncate", "overwrite", "flip"]))
    if how == "truncate" and data:
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif how == "overwrite":
        spans = [s for s in gguf.layout(data) if s.size in (4, 8)]
        if spans:
            s = draw(st.sampled_from(spans))
            v = draw(st.sampled_from([0, 1, 2**30, 2**30 + 1, 2**63, 2**64 - 1, 2**31, 9, 13])
                     | st.integers(0, 2**64 - 1))
            raw = struct.pack("<Q", v)[: s.size]
            data = data[:s.offset] + raw + data[s.offset + s.size:]
    elif how == "flip" and data:
        pos = draw(st.integers(0, len(data) - 1))
        data = data[:pos] + bytes([draw(st.integers(0, 255))]) + data[pos + 1:]
    return data


@settings(derandomize=True, max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(files(), st.booleans())
def test_differential(data, with_data):
    want = reference_outcome(data, with_data)
    if want is ...:      # the reference would malloc beyond SAFE_ALLOC (and may abort)
        return
    assert ours_outcome(data, with_data) == want
