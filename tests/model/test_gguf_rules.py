"""Each rejection rule of ggml/src/gguf.cpp gguf_init_from_reader, one test apiece.

Every malformed buffer is also given to the reference, which must reject it too: the rule
under test is the reference's, not a number typed here.
"""

from __future__ import annotations

import mmap
import struct

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as T

from pyggml.errors import GGUFError
from pyggml.model import gguf
from pyggml.parity.gguf import ours_outcome, reference_outcome, to_canonical
from pyggml.parity.mutate import RawKV, RawTensor, encode
from pyggml.reference import gguf as ref

ARCH = RawKV(b"general.architecture", T.STRING, b"llama")
F32 = [RawTensor(b"a", Q.F32, [8])]


def align(a: int, ty: int = T.UINT32) -> RawKV:
    return RawKV(b"general.alignment", ty, a)


def rejects(data: bytes, reason: str, *, with_data: bool = False) -> GGUFError:
    with pytest.raises(GGUFError) as e:
        gguf.parse(data, with_data=with_data)
    assert e.value.reason == reason, str(e.value)
    if reason != "abort":
        assert ref.parse_buffer(data, with_data=with_data) is None
    return e.value


def accepts(data: bytes, *, with_data: bool = False) -> gguf.GGUFFile:
    g = gguf.parse(data, with_data=with_data)
    assert to_canonical(g) == ref.parse_buffer(data, with_data=with_data)
    return g


def test_minimal_file():
    g = accepts(encode([]))
    assert (g.version, g.alignment, g.data_offset, g.kv, g.tensors) == (3, 32, 24, [], [])


@pytest.mark.parametrize("data", [b"", b"G", b"GGU"])
def test_short_magic(data):
    rejects(data, "eof")


def test_bad_magic():
    assert rejects(b"GGUX" + encode([])[4:], "bad-magic").offset == 0


@pytest.mark.parametrize("version", [0, 1, 4, 0x03000000, 0xFFFF0000, 2**32 - 1])
def test_bad_version(version):
    data = bytearray(encode([]))
    data[4:8] = struct.pack("<I", version)
    rejects(bytes(data), "bad-version")


def test_version_2_accepted():
    assert accepts(encode([ARCH], version=2)).version == 2


@pytest.mark.parametrize("cut", [8, 12, 16, 23])
def test_header_truncated(cut):
    rejects(encode([])[:cut], "eof")


@pytest.mark.parametrize("n", [-1, -(2**63), 2**64 // 344 + 1])
def test_n_tensors_range(n):
    rejects(encode([], n_tensors=n), "n-tensors")


def test_n_tensors_in_range_but_absent():
    rejects(encode([], n_tensors=2**64 // 344), "eof")


@pytest.mark.parametrize("n", [-1, 2**64 // 88 + 1])
def test_n_kv_range(n):
    rejects(encode([], n_kv=n), "n-kv")


def test_empty_key():
    rejects(encode([RawKV(b"", T.UINT8, 1)]), "key-empty")


def test_duplicate_key():
    rejects(encode([RawKV(b"x", T.UINT8, 1), RawKV(b"x", T.STRING, b"s")]), "key-duplicate")


def test_keys_equal_up_to_nul_are_distinct():
    g = accepts(encode([RawKV(b"k\0a", T.UINT8, 1), RawKV(b"k\0b", T.UINT8, 2)]))
    assert [kv.key for kv in g.kv] == [b"k\0a", b"k\0b"]


def test_string_too_long():
    raw = struct.pack("<Q", gguf.GGUF_MAX_STRING_LENGTH + 1) + b"x" * 16
    rejects(encode([RawKV(b"s", T.STRING, raw, raw=True)]), "string-too-long")


def test_string_past_eof():
    raw = struct.pack("<Q", 5) + b"abcd"
    rejects(encode([RawKV(b"s", T.STRING, raw, raw=True)]), "string-past-eof")


def test_string_exactly_to_eof():
    g = accepts(encode([RawKV(b"s", T.STRING, b"abcd")]))
    assert g.kv[0].value == b"abcd" and g.data_offset == len(encode([RawKV(b"s", T.STRING, b"abcd")]))


@pytest.mark.parametrize("ty", [13, 14, -1, 2**31 - 1])
def test_invalid_value_type(ty):
    rejects(encode([RawKV(b"k", ty, b"\0" * 8, raw=True)]), "kv-type")
    rejects(encode([RawKV(b"k", T.ARRAY, struct.pack("<iQ", ty, 1) + b"\0" * 8, raw=True)]), "kv-type")


def test_nested_array():
    raw = struct.pack("<iQ", T.ARRAY, 1) + struct.pack("<iQ", T.UINT8, 1) + b"\1"
    rejects(encode([RawKV(b"n", T.ARRAY, raw, raw=True)]), "kv-type")
    rejects(encode([RawKV(b"n", T.ARRAY, struct.pack("<iQ", T.ARRAY, 0), raw=True)]), "kv-type")


@pytest.mark.parametrize("at", [T.UINT8, T.STRING, T.FLOAT64])
def test_array_too_long(at):
    raw = struct.pack("<iQ", at, gguf.GGUF_MAX_ARRAY_ELEMENTS + 1) + b"\0" * 64
    rejects(encode([RawKV(b"a", T.ARRAY, raw, raw=True)]), "array-too-long")


@pytest.mark.parametrize(("at", "n", "payload"), [(T.UINT32, 3, 11), (T.STRING, 2, 15), (T.BOOL, 9, 8)])
def test_array_past_eof(at, n, payload):
    raw = struct.pack("<iQ", at, n) + b"\0" * payload
    rejects(encode([RawKV(b"a", T.ARRAY, raw, raw=True)]), "array-past-eof")


def test_string_array_element_past_eof():
    raw = struct.pack("<iQ", T.STRING, 2) + struct.pack("<Q", 1) + b"x" + struct.pack("<Q", 9) + b"abc"
    rejects(encode([RawKV(b"a", T.ARRAY, raw, raw=True)]), "string-past-eof")


def test_values_are_exact():
    g = accepts(encode([RawKV(b"b", T.BOOL, 7), RawKV(b"f", T.FLOAT32, b"\x01\x00\x80\x7f"),
                        RawKV(b"ba", T.ARRAY, [0, 2], T.BOOL), RawKV(b"i", T.INT64, -5)]))
    assert g.kv[0].value is True
    assert np.asarray(g.kv[1].value).view(np.uint32) == 0x7F800001     # the signalling NaN
    assert g.kv[2].value.tolist() == [False, True] and g.kv[3].value == -5


@pytest.mark.parametrize("kv", [align(32, T.UINT8), align(32, T.INT32), align(32, T.UINT64),
                                align(b"32", T.STRING), RawKV(b"general.alignment", T.ARRAY, [32], T.UINT32)])
def test_alignment_wrong_type(kv):
    rejects(encode([kv]), "alignment-type")


@pytest.mark.parametrize("a", [0, 3, 48, 2**32 - 1])
def test_alignment_not_power_of_2(a):
    rejects(encode([align(a)]), "alignment-value")


def test_alignment_found_as_c_string():
    # gguf_find_key uses strcmp: the first key equal up to its NUL is general.alignment
    g = accepts(encode([RawKV(b"general.alignment\0x", T.UINT32, 64), align(3, T.UINT8)], F32, alignment=64))
    assert g.alignment == 64 and g.data_offset % 64 == 0


def test_tensor_name_length():
    accepts(encode([ARCH], [RawTensor(b"n" * 63, Q.F32, [2])]))
    rejects(encode([ARCH], [RawTensor(b"n" * 64, Q.F32, [2])]), "tensor-name-too-long")


def test_duplicate_tensor_name():
    rejects(encode([ARCH], [RawTensor(b"a", Q.F32, [1]), RawTensor(b"a", Q.F32, [1])]),
            "tensor-name-duplicate")


def test_tensor_n_dims():
    accepts(encode([ARCH], [RawTensor(b"s", Q.F32, [])]))
    rejects(encode([ARCH], [RawTensor(b"a", Q.F32, [1] * 5)]), "tensor-n-dims")


def test_tensor_ne_negative():
    rejects(encode([ARCH], [RawTensor(b"a", Q.F32, [2, -1])]), "tensor-ne-negative")


def test_tensor_ne_overflow_boundary():
    edge = gguf.INT64_MAX // 3
    accepts(encode([ARCH], [RawTensor(b"a", Q.I8, [edge, 3])], data=False))
    rejects(encode([ARCH], [RawTensor(b"a", Q.I8, [edge + 1, 3])], data=False), "tensor-ne-overflow")


def test_zero_dimension_resets_the_count():
    g = accepts(encode([ARCH], [RawTensor(b"a", Q.I8, [2**40, 0, 2**40])]))
    assert g.tensors[0].size == 0


@pytest.mark.parametrize("t", [-1, 43, 1000])
def test_tensor_type_range(t):
    rejects(encode([ARCH], [RawTensor(b"a", t, [256])], data=False), "tensor-type")


@pytest.mark.parametrize("t", [4, 5, 31, 32, 33, 36, 37, 38])
def test_removed_tensor_type(t):
    rejects(encode([ARCH], [RawTensor(b"a", t, [256])], data=False), "tensor-block-size")


def test_row_not_multiple_of_block():
    rejects(encode([ARCH], [RawTensor(b"a", Q.Q8_0, [33])], data=False), "tensor-block-size")


def test_tensor_nbytes_overflow():
    rejects(encode([ARCH], [RawTensor(b"a", Q.F32, [2**62])], data=False), "tensor-nbytes-overflow")


def test_nbytes_wraps_like_size_t():
    # ne0 * type_size wraps around 2^64 inside ggml_nbytes: the reference reports the
    # wrapped size, and so do we
    g = accepts(encode([ARCH], [RawTensor(b"a", Q.Q4_0, [2**60])], data=False))
    assert g.tensors[0].size == 2**56


def test_tensor_size_overflows_when_padded():
    rejects(encode([ARCH], [RawTensor(b"a", Q.F64, [2**61 - 1])], data=False), "tensor-size-overflow")


def test_data_size_sum_overflow():
    big = [RawTensor(b"%d" % i, Q.I8, [gguf.INT64_MAX]) for i in range(3)]
    rejects(encode([ARCH], big, data=False), "data-size-overflow")


@pytest.mark.parametrize("offset", [1, 31, 64])
def test_tensor_offset_must_be_running_sum(offset):
    rejects(encode([ARCH], [RawTensor(b"a", Q.F32, [8]), RawTensor(b"b", Q.F32, [8], offset)]),
            "tensor-offset")


def test_data_section_start_past_eof():
    data = encode([ARCH], [RawTensor(b"a", Q.F32, [8])], pad=False, data=False)
    assert len(data) % 32 != 0
    rejects(data, "data-seek")
    accepts(data + bytes(-len(data) % 32))


def test_no_padding_without_tensors():
    data = encode([ARCH, align(64)])
    assert accepts(data).data_offset == len(data)


def test_with_data_reads_the_blob():
    data = encode([ARCH], [RawTensor(b"a", Q.F32, [8]), RawTensor(b"b", Q.I8, [3])], fill=7)
    g = accepts(data, with_data=True)
    assert g.data is not None and g.data_size == 64 and bytes(g.data[:4]) == b"\7" * 4
    rejects(data[:-1], "data-eof", with_data=True)
    accepts(data[:-1])      # without the data step nothing reads the blob


def test_with_data_new_tensor_abort():
    # gguf.cpp lets a zero-size tensor with huge other dimensions through; ggml_new_tensor
    # then asserts in the reference.  We raise; the reference runs isolated.
    data = encode([ARCH], [RawTensor(b"a", Q.I8, [2**62, 0, 4])])
    accepts(data)
    rejects(data, "abort", with_data=True)
    assert ours_outcome(data, True) == reference_outcome(data, True) == "abort"


def test_input_kinds(tmp_path):
    data = encode([ARCH, RawKV(b"t", T.ARRAY, [b"a", b"bc"], T.STRING)], F32)
    path = tmp_path / "f.gguf"
    path.write_bytes(data)
    want = to_canonical(gguf.parse(data))
    assert to_canonical(gguf.parse(memoryview(data))) == want
    assert to_canonical(gguf.parse(bytearray(data))) == want
    assert to_canonical(gguf.parse_file(path)) == want == ref.parse_file(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert to_canonical(gguf.parse(m)) == want
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(GGUFError):
        gguf.parse_file(tmp_path / "empty.gguf")


def test_type_traits_match_ggml():
    from pyggml._native import ggml

    lib = ggml()
    for t in range(gguf.GGML_TYPE_COUNT):
        want = (lib.ggml_blck_size(t), lib.ggml_type_size(t))
        assert gguf.TYPE_TRAITS.get(t, (0, 0)) == want, t


def test_layout_covers_the_header():
    data = encode([ARCH, RawKV(b"a", T.ARRAY, [1, 2], T.INT16)], F32)
    spans = [s for s in gguf.layout(data) if s.label != "data"]
    pos = 0
    for s in spans:
        assert s.offset == pos, s
        pos += s.size
    assert pos == gguf.parse(data).data_offset


# ---- the numpy path of string arrays (vocabularies) -----------------------------------------

def _str_array(strings: list[bytes]) -> bytes:
    return encode([ARCH, RawKV(b"tokens", T.ARRAY, strings, T.STRING), RawKV(b"after", T.UINT8, 9)])


def _both_paths(data: bytes, monkeypatch) -> object:
    fast = ours_outcome(data, False)
    monkeypatch.setattr(gguf, "_VECTOR_MIN", 10**12)
    slow = ours_outcome(data, False)
    monkeypatch.undo()
    assert fast == slow
    assert fast == ref.parse_buffer(data)
    return fast


@pytest.mark.parametrize("kind", ["short", "empty", "nul", "long", "huge", "window"])
def test_string_array_paths(kind, monkeypatch):
    rng = np.random.default_rng(len(kind))
    strings = [bytes(rng.integers(1, 256, rng.integers(1, 12), dtype=np.uint8)) for _ in range(700)]
    if kind == "empty":
        strings[0] = strings[5] = strings[-1] = b""
    elif kind == "nul":
        strings[3] = b"a\0b"
    elif kind == "long":
        strings[10], strings[11], strings[-1] = b"x" * 255, b"y" * 256, b"z" * 300
    elif kind == "huge":
        strings[100] = b"w" * 70000
    elif kind == "window":
        strings[1] = bytes(range(1, 256)) * 1200          # longer than one numpy window
    got = _both_paths(_str_array(strings), monkeypatch)
    assert got["kv"][1]["value"][:2] == ["s:" + s.hex() for s in strings[:2]] or kind == "nul"


@pytest.mark.parametrize("length", [2**30 + 1, 2**40, 10**6, 20])
def test_string_array_bad_length_in_the_middle(length, monkeypatch):
    strings = [b"tok%d" % i for i in range(600)]
    data = bytearray(_str_array(strings))
    at = data.index(struct.pack("<Q", 6) + b"tok300")
    data[at:at + 8] = struct.pack("<Q", length)
    assert _both_paths(bytes(data), monkeypatch) is None or length == 20


def test_string_array_truncated(monkeypatch):
    data = _str_array([b"tok%d" % i for i in range(600)])
    for cut in (len(data) - 12, len(data) - 20, len(data) // 2):
        assert _both_paths(data[:cut], monkeypatch) is None
