"""GGUF parsing, rule for rule as ggml/src/gguf.cpp ``gguf_init_from_reader`` does it.

``parse`` accepts exactly the buffers that ``gguf_init_from_buffer`` accepts and raises
``GGUFError`` (``reason`` = a short stable name of the rule, ``offset`` = where reading
stopped) wherever the reference returns NULL.  The reference's reader is a bounds-checked
sequential reader over ``[0, size)``: every read fails when fewer bytes remain than it needs,
so "past EOF" below always means "more than what is left after the current position".

Reasons: ``eof`` (a fixed-size field, or the magic, past the end), ``bad-magic``,
``bad-version`` (0, 1, > 3, or the low 16 bits zero: the other endianness), ``n-tensors``,
``n-kv``, ``string-too-long`` (> 1 GiB), ``string-past-eof``, ``key-empty``,
``key-duplicate``, ``kv-type`` (unknown type, nested array), ``array-too-long`` (> 1 Gi
elements), ``array-past-eof``, ``alignment-type`` (general.alignment not a u32 scalar),
``alignment-value`` (0 or not a power of 2), ``tensor-name-too-long`` (>= 64 bytes),
``tensor-name-duplicate``, ``tensor-n-dims``, ``tensor-ne-negative``, ``tensor-ne-overflow``,
``tensor-type``, ``tensor-block-size`` (also the removed types), ``tensor-nbytes-overflow``,
``data-seek`` (the aligned data section starts past the end), ``tensor-offset`` (not the
running padded sum), ``tensor-size-overflow``, ``data-size-overflow``; with data:
``data-mem-overflow``, ``data-eof`` and ``abort`` (where the reference process aborts).

Limits that depend on ``sizeof`` of reference structs are the x86-64 / libstdc++ values; they
only bound the header counts, which a real file can never approach anyway.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from ..errors import GGUFError
from .gguf_types import KV, GGUFFile, TensorInfo

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
GGUF_DEFAULT_ALIGNMENT = 32
GGUF_KEY_GENERAL_ALIGNMENT = b"general.alignment"
GGUF_MAX_STRING_LENGTH = 1024 * 1024 * 1024
GGUF_MAX_ARRAY_ELEMENTS = 1024 * 1024 * 1024
GGML_MAX_NAME = 64
GGML_MAX_DIMS = 4
GGML_TYPE_COUNT = 43             # ggml.h enum ggml_type at the pinned commit
SIZE_MAX = (1 << 64) - 1
INT64_MAX = (1 << 63) - 1
SIZEOF_GGUF_TENSOR_INFO = 344    # sizeof(ggml_tensor) 336 + uint64 offset
SIZEOF_GGUF_KV = 88              # std::string 32 + bool/enum 8 + two std::vector 48
GGML_TENSOR_OVERHEAD = 368       # ggml_tensor_overhead(): ggml_object 32 + ggml_tensor 336

# (block size, type size) where the gguf package disagrees with ggml at the pinned commit
# (llama.cpp: ggml/src/ggml-common.h): types newer than the package, and Q8_1, whose block
# (two halfs + 32 quants = 36 bytes) gguf 0.19 lists as 40.  tests/model check the whole
# table against libggml's ggml_blck_size / ggml_type_size.
_GGML_TRAITS = {9: (32, 2 + 2 + 32), 39: (32, 1 + 16), 40: (64, 4 + 32), 41: (128, 2 + 16),
                42: (64, 2 + 16)}


def _type_traits() -> dict[int, tuple[int, int]]:
    # In [0, GGML_TYPE_COUNT) but absent (removed types 4, 5, 31-33, 36-38): ggml's type_traits
    # has blck_size 0 there, which gguf.cpp rejects like a bad row size.
    traits = {int(t): bs for t, bs in GGML_QUANT_SIZES.items()}
    traits.update(_GGML_TRAITS)
    return traits


TYPE_TRAITS = _type_traits()

_GT = GGUFValueType
# element struct format, element size, numpy dtype of each fixed-size value type
_SCALAR: dict[int, tuple[str, int, str]] = {
    _GT.UINT8: ("<B", 1, "<u1"), _GT.INT8: ("<b", 1, "<i1"),
    _GT.UINT16: ("<H", 2, "<u2"), _GT.INT16: ("<h", 2, "<i2"),
    _GT.UINT32: ("<I", 4, "<u4"), _GT.INT32: ("<i", 4, "<i4"),
    _GT.FLOAT32: ("<f", 4, "<f4"), _GT.BOOL: ("<b", 1, "<i1"),
    _GT.UINT64: ("<Q", 8, "<u8"), _GT.INT64: ("<q", 8, "<i8"),
    _GT.FLOAT64: ("<d", 8, "<f8"),
}
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")


@dataclass(frozen=True)
class Span:
    """One field of a GGUF file (``layout``): where it starts, how long, what it is."""

    offset: int
    size: int
    label: str          # e.g. "n_kv", "kv[3].key.len", "ti[0].ne[1]", "kv[5].value[2].len"


def ggml_pad(x: int, n: int) -> int:
    # GGML_PAD on size_t
    return ((x + n - 1) & ~(n - 1)) & SIZE_MAX


class _Reader:
    """gguf_reader over a buffer: sequential, bounds-checked reads of ``buf[pos:end]``."""

    __slots__ = ("buf", "pos", "end", "spans", "as_bytes")

    def __init__(self, buf: Any, spans: list[Span] | None) -> None:
        self.buf = buf
        self.pos = 0
        self.end = len(buf)
        self.spans = spans
        # slices of bytes / mmap are bytes already; other buffers (memoryview) need a copy
        self.as_bytes = not isinstance(buf, bytes | mmap.mmap)

    def fail(self, reason: str, message: str, offset: int | None = None) -> GGUFError:
        return GGUFError(message, reason=reason, offset=self.pos if offset is None else offset)

    def mark(self, label: str, offset: int, size: int) -> None:
        if self.spans is not None:
            self.spans.append(Span(offset, size, label))

    def fixed(self, st: struct.Struct, what: str, label: str) -> Any:
        pos = self.pos
        if self.end - pos < st.size:
            raise self.fail("eof", f"unexpected end of data reading {what} at offset {pos}")
        self.mark(label, pos, st.size)
        self.pos = pos + st.size
        return st.unpack_from(self.buf, pos)[0]

    def string(self, what: str, label: str) -> bytes:
        # gguf_reader::read(std::string &): u64 length, then the bytes
        n = self.fixed(_U64, f"the length of {what}", label + ".len")
        if n > GGUF_MAX_STRING_LENGTH:
            raise self.fail("string-too-long", f"{what}: string length {n} exceeds maximum "
                            f"{GGUF_MAX_STRING_LENGTH}", self.pos - 8)
        if n > self.end - self.pos:
            raise self.fail("string-past-eof", f"{what}: string length {n} exceeds remaining "
                            f"size {self.end - self.pos} bytes", self.pos - 8)
        pos = self.pos
        self.mark(label, pos, n)
        self.pos = pos + n
        s = self.buf[pos:pos + n]
        return bytes(s) if self.as_bytes else s

    def array_count(self, n: int, elem_size: int, what: str, at: int) -> None:
        # gguf_reader::read(std::vector<T> &, n): element-count limit, then the bytes that
        # must remain (8 per string: its length prefix)
        if n > GGUF_MAX_ARRAY_ELEMENTS:
            raise self.fail("array-too-long", f"{what}: array of {n} elements exceeds maximum "
                            f"{GGUF_MAX_ARRAY_ELEMENTS}", at)
        if n * elem_size > self.end - self.pos:
            raise self.fail("array-past-eof", f"{what}: array of {n} elements needs at least "
                            f"{n * elem_size} bytes, {self.end - self.pos} remain", at)

    def numeric_array(self, t: int, n: int) -> np.ndarray:
        _, size, dtype = _SCALAR[t]
        pos = self.pos
        self.pos = pos + n * size
        if n == 0:
            arr = np.empty(0, dtype=dtype)
        else:
            arr = np.frombuffer(self.buf, dtype=dtype, count=n, offset=pos).copy()
        if t == _GT.BOOL:
            arr = arr != 0      # read(bool &): any non-zero byte is true
        return arr

    def string_array(self, n: int, what: str, label: str) -> list[bytes]:
        buf, start = self.buf, self.pos
        if self.spans is not None:
            # the careful path records each element; only the first few matter for mutation
            out = []
            for j in range(n):
                lab = f"{label}[{j}]" if j < 4 or j == n - 1 else None
                out.append(self.string(f"{what}[{j}]", lab) if lab else self._quiet_string(what, j))
            return out
        if n >= _VECTOR_MIN and not self.as_bytes:
            got = _string_array_vectorized(buf, start, n, self.end)
            if got is not None:
                self.pos, out = got
                return out
        out = [b""] * n
        unpack, pos = _U64.unpack_from, start
        try:
            # The hot loop of a vocabulary: no per-element checks.  A bad length shows up as an
            # overrun at the end (pos only grows) and is then located by the careful path.
            for j in range(n):
                ln = unpack(buf, pos)[0]
                pos += 8
                out[j] = buf[pos:pos + ln]
                pos += ln
        except (struct.error, OverflowError):   # a length ran past the end of the buffer
            pos = self.end + 1
        if pos > self.end or pos - start > GGUF_MAX_STRING_LENGTH:
            # an overrun (or a span too long to rule out one over-long string): redo carefully,
            # which raises exactly where the reference stops
            self.pos = start
            return [self._quiet_string(what, j) for j in range(n)]
        self.pos = pos
        if self.as_bytes:
            out = [bytes(s) for s in out]
        return out

    def _quiet_string(self, what: str, j: int) -> bytes:
        spans, self.spans = self.spans, None
        try:
            return self.string(f"{what}[{j}]", "")
        finally:
            self.spans = spans


_VECTOR_MIN = 512          # string arrays at least this long go through the numpy path
_WINDOW = 1 << 18


def _string_chain(buf: Any, pos: int, n: int, end: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions of the ``n`` length prefixes of a string array starting at ``pos``, and the
    lengths, found with numpy instead of one Python step per string.

    Within a window, a position whose bytes 1..7 are zero may be a prefix of a string shorter
    than 256 bytes ("candidate"); each candidate's successor is ``c + 8 + byte c``.  Following
    successors from the window's first prefix by pointer doubling gives the true chain, exact
    by construction: it stops where a successor is no candidate (a longer string, or the window
    edge), and that one prefix is read with struct.  None: the array overruns ``end`` (the
    caller's careful path then reports where).
    """
    heads: list[np.ndarray] = []
    lens: list[np.ndarray] = []
    count = 0
    while count < n:
        if end - pos < 8:
            return None
        hi = min(end, pos + _WINDOW)
        R = np.frombuffer(buf, dtype=np.uint8, count=hi - pos, offset=pos)   # (L,)
        L = R.size
        chain = None
        if L >= 8:
            z = R == 0
            ok = z[1:L - 6].copy()
            for j in range(2, 8):
                ok &= z[j:L - 7 + j]
            C = np.flatnonzero(ok)                                           # candidates
            if C.size and C[0] == 0:
                nxt = C + 8 + R[C]
                idx = np.searchsorted(C, nxt)
                hit = idx < C.size
                hit[hit] = C[idx[hit]] == nxt[hit]
                step = np.append(np.where(hit, idx, C.size), C.size)         # sentinel: C.size
                reach = np.zeros(1, dtype=np.int64)
                while reach[-1] != C.size and reach.size < n - count:
                    reach = np.concatenate((reach, step[reach]))
                    step = step[step]
                reach = reach[:n - count]
                cut = np.searchsorted(reach, C.size)  # chain indices increase, sentinel last
                chain = C[reach[:cut]]
        if chain is not None and chain.size:
            ln = R[chain].astype(np.int64)
            heads.append(chain + pos)
            lens.append(ln)
            count += chain.size
            pos = int(chain[-1] + 8 + ln[-1]) + pos
            if count >= n or pos + 8 > hi:
                continue        # done, or the next prefix straddles the window: next window
        # one string the windows cannot see (>= 256 bytes, or at the window's edge)
        if end - pos < 8:
            return None
        ln1 = _U64.unpack_from(buf, pos)[0]
        if ln1 > end - pos - 8:
            return None
        heads.append(np.array([pos], dtype=np.int64))
        lens.append(np.array([ln1], dtype=np.int64))
        count += 1
        pos += 8 + ln1
    if pos > end:
        return None
    return np.concatenate(heads), np.concatenate(lens)


def _string_array_vectorized(buf: Any, start: int, n: int, end: int) -> tuple[int, list[bytes]] | None:
    """(end position, strings) of a string array, or None to take the per-string path."""
    found = _string_chain(buf, start, n, end)
    if found is None:
        return None
    heads, lens = found
    if int(lens.max()) > GGUF_MAX_STRING_LENGTH:
        return None
    stop = int(heads[-1] + 8 + lens[-1])
    # The array's bytes with each 8-byte prefix replaced by one NUL split into the strings in
    # one C call, unless a string holds a NUL itself.
    A = np.frombuffer(buf, dtype=np.uint8, count=stop - start, offset=start)
    rel = heads - start
    keep = np.ones(A.size, dtype=bool)
    keep[(rel[:, None] + np.arange(1, 8)).ravel()] = False
    joined = A[keep]                                        # a copy
    joined[rel - np.arange(n) * 7] = 0                      # each prefix's first byte
    if np.count_nonzero(joined) == joined.size - n:         # no NUL but the n separators
        return stop, joined.tobytes().split(b"\0")[1:]
    ends = (heads + 8 + lens).tolist()
    return stop, list(map(buf.__getitem__, map(slice, (heads + 8).tolist(), ends)))


def _read_value(r: _Reader, t: int, what: str, label: str) -> Any:
    if t == _GT.STRING:
        return r.string(what, label)
    fmt, size, dtype = _SCALAR[t]
    pos = r.pos
    if r.end - pos < size:
        raise r.fail("eof", f"unexpected end of data reading the value of {what}")
    r.mark(label, pos, size)
    r.pos = pos + size
    if t == _GT.FLOAT32 or t == _GT.FLOAT64:
        return np.frombuffer(r.buf, dtype=dtype, count=1, offset=pos)[0]
    v = struct.unpack_from(fmt, r.buf, pos)[0]
    return v != 0 if t == _GT.BOOL else v


def _read_kv(r: _Reader, i: int, seen: set[bytes]) -> KV:
    # llama.cpp: ggml/src/gguf.cpp gguf_init_from_reader "KV pairs" + gguf_read_emplace_helper
    what = f"key {i}"
    key = r.string(what, f"kv[{i}].key")
    if not key:
        raise r.fail("key-empty", f"key {i} is empty")
    if key in seen:
        raise r.fail("key-duplicate", f"duplicate key {key!r} for KV pair {i}")
    seen.add(key)
    what = f"key {key!r}"
    t = r.fixed(_I32, f"the type of {what}", f"kv[{i}].type")
    is_array, n = False, 1
    if t == _GT.ARRAY:
        is_array = True
        t = r.fixed(_I32, f"the element type of {what}", f"kv[{i}].arr_type")
        n = r.fixed(_U64, f"the element count of {what}", f"kv[{i}].n")
    if t not in _SCALAR and t != _GT.STRING:
        # nested arrays land here too: only one level of ARRAY is allowed
        raise r.fail("kv-type", f"key {key!r} has invalid GGUF type {t}", r.pos - 4)
    vt = GGUFValueType(t)
    if not is_array:
        return KV(key, vt, _read_value(r, t, what, f"kv[{i}].value"))
    at = r.pos - 8
    if t == _GT.STRING:
        r.array_count(n, 8, what, at)
        return KV(key, _GT.ARRAY, r.string_array(n, what, f"kv[{i}].value"), vt)
    r.array_count(n, _SCALAR[t][1], what, at)
    r.mark(f"kv[{i}].value", r.pos, n * _SCALAR[t][1])
    return KV(key, _GT.ARRAY, r.numeric_array(t, n), vt)


def _alignment(r: _Reader, kv: list[KV]) -> int:
    idx = -1
    for i, e in enumerate(kv):
        # gguf_find_key compares with strcmp: a key is what precedes its first NUL
        if e.key.split(b"\0", 1)[0] == GGUF_KEY_GENERAL_ALIGNMENT:
            idx = i
            break
    if idx == -1:
        return GGUF_DEFAULT_ALIGNMENT
    e = kv[idx]
    if e.type != _GT.UINT32:
        raise r.fail("alignment-type", f"key 'general.alignment' must be of type u32 but is "
                     f"{e.type.name}")
    align = int(e.value)
    if align == 0 or align & (align - 1):
        raise r.fail("alignment-value", f"alignment {align} is not a power of 2")
    return align


def ggml_nbytes(ne: list[int], blck: int, tsize: int) -> int:
    """ggml_nbytes with size_t wrap-around (int64 * size_t converts to uint64 in C).

    llama.cpp: ggml/src/ggml.c ggml_nbytes, with nb[] as gguf_init_from_reader sets it."""
    if any(x <= 0 for x in ne):
        return 0
    nb = [tsize, tsize * (ne[0] // blck)]
    nb.append(nb[1] * ne[1] & SIZE_MAX)
    nb.append(nb[2] * ne[2] & SIZE_MAX)
    nb[1] &= SIZE_MAX
    if blck == 1:
        n = tsize
        for i in range(GGML_MAX_DIMS):
            n += (ne[i] - 1) * nb[i]
    else:
        n = ((ne[0] * nb[0]) & SIZE_MAX) // blck
        for i in range(1, GGML_MAX_DIMS):
            n += (ne[i] - 1) * nb[i]
    return n & SIZE_MAX


def _read_tensor_info(r: _Reader, i: int, seen: set[bytes]) -> tuple[bytes, int, list[int], int]:
    # llama.cpp: ggml/src/gguf.cpp gguf_init_from_reader "read the tensor info"
    name = r.string(f"tensor name {i}", f"ti[{i}].name")
    if len(name) >= GGML_MAX_NAME:
        raise r.fail("tensor-name-too-long", f"tensor name {i} is too long: {len(name)} >= "
                     f"{GGML_MAX_NAME}")
    if name in seen:
        raise r.fail("tensor-name-duplicate", f"duplicate tensor name {name!r} for tensor {i}")
    seen.add(name)
    what = f"tensor {name!r}"
    n_dims = r.fixed(_U32, f"the number of dimensions of {what}", f"ti[{i}].n_dims")
    if n_dims > GGML_MAX_DIMS:
        raise r.fail("tensor-n-dims", f"{what} has invalid number of dimensions: {n_dims} > "
                     f"{GGML_MAX_DIMS}", r.pos - 4)
    ne = [1] * GGML_MAX_DIMS
    for j in range(n_dims):
        ne[j] = r.fixed(_I64, f"dimension {j} of {what}", f"ti[{i}].ne[{j}]")
        if ne[j] < 0:
            raise r.fail("tensor-ne-negative", f"{what} dimension {j} has invalid number of "
                         f"elements: {ne[j]} < 0", r.pos - 8)
    # the element count must stay representable; 0 and 1 cannot overflow (and a 0 resets it)
    cur = ne[0]
    for j in range(1, GGML_MAX_DIMS):
        if ne[j] > 1 and INT64_MAX // ne[j] < cur:
            raise r.fail("tensor-ne-overflow", f"{what} has shape {tuple(ne)} whose element "
                         f"count is >= INT64_MAX")
        cur *= ne[j]
    t = r.fixed(_I32, f"the type of {what}", f"ti[{i}].type")
    if t < 0 or t >= GGML_TYPE_COUNT:
        raise r.fail("tensor-type", f"{what} has invalid ggml type {t}, should be in "
                     f"[0, {GGML_TYPE_COUNT})", r.pos - 4)
    blck, tsize = TYPE_TRAITS.get(t, (0, 0))
    if blck == 0 or ne[0] % blck != 0:
        raise r.fail("tensor-block-size", f"{what} of type {t} has {ne[0]} elements per row, "
                     f"not a multiple of block size ({blck})", r.pos - 4)
    if cur // blck > SIZE_MAX // tsize:
        raise r.fail("tensor-nbytes-overflow", f"{what} with shape {tuple(ne)} has a size in "
                     f"bytes > {SIZE_MAX}", r.pos - 4)
    offset = r.fixed(_U64, f"the data offset of {what}", f"ti[{i}].offset")
    return name, t, ne, offset


def new_tensor_aborts(ne: list[int]) -> bool:
    """Whether ggml_new_tensor_impl's element-count GGML_ASSERT fires (llama.cpp:
    ggml/src/ggml.c).  It is stricter than gguf.cpp's own check: it skips dimensions <= 1
    instead of multiplying by them (so a zero dimension does not reset the count) and
    requires INT64_MAX / ne[i] > count (strictly)."""
    cur = ne[0]
    for j in range(1, GGML_MAX_DIMS):
        if ne[j] > 1:
            if not INT64_MAX // ne[j] > cur:
                return True
            cur *= ne[j]
    return False


def _parse(data: Any, with_data: bool, spans: list[Span] | None) -> GGUFFile:
    r = _Reader(data, spans)
    if r.end == 0:
        # gguf_init_from_buffer refuses a NULL or empty buffer before reading
        raise r.fail("eof", "empty buffer")

    # header (llama.cpp: ggml/src/gguf.cpp gguf_init_from_reader "file magic", "header")
    if r.end < 4:
        raise r.fail("eof", "failed to read magic")
    r.mark("magic", 0, 4)
    magic = bytes(data[0:4])
    r.pos = 4
    if magic != GGUF_MAGIC:
        raise r.fail("bad-magic", f"invalid magic {magic!r}, expected {GGUF_MAGIC!r}", 0)
    version = r.fixed(_U32, "the version", "version")
    if version == 0:
        raise r.fail("bad-version", "bad GGUF version: 0", 4)
    if version & 0xFFFF == 0:
        raise r.fail("bad-version", f"GGUF version {version} is extremely large: is the file of "
                     "the other endianness?", 4)
    if version == 1:
        raise r.fail("bad-version", "GGUFv1 is no longer supported", 4)
    if version > GGUF_VERSION:
        raise r.fail("bad-version", f"GGUF version {version} is newer than the supported "
                     f"{GGUF_VERSION}", 4)
    n_tensors = r.fixed(_I64, "the number of tensors", "n_tensors")
    if n_tensors < 0 or n_tensors > SIZE_MAX // SIZEOF_GGUF_TENSOR_INFO:
        raise r.fail("n-tensors", f"number of tensors is {n_tensors} but must be in "
                     f"[0, {SIZE_MAX // SIZEOF_GGUF_TENSOR_INFO}]", 8)
    n_kv = r.fixed(_I64, "the number of key/value pairs", "n_kv")
    if n_kv < 0 or n_kv > SIZE_MAX // SIZEOF_GGUF_KV:
        raise r.fail("n-kv", f"number of key value pairs is {n_kv} but must be in "
                     f"[0, {SIZE_MAX // SIZEOF_GGUF_KV}]", 16)

    # key/value pairs; each takes at least 12 bytes, so a huge n_kv ends at EOF soon enough
    seen: set[bytes] = set()
    kv = [_read_kv(r, i, seen) for i in range(n_kv)]
    alignment = _alignment(r, kv)

    # tensor infos
    seen.clear()
    infos = [_read_tensor_info(r, i, seen) for i in range(n_tensors)]

    # the data section starts aligned, but only when there are tensors
    if n_tensors > 0:
        start = ggml_pad(r.pos, alignment)
        if start > r.end:
            raise r.fail("data-seek", f"the data section would start at {start}, past the end "
                         f"({r.end})")
        r.mark("pad", r.pos, start - r.pos)
        r.pos = start
    data_offset = r.pos

    tensors: list[TensorInfo] = []
    size = 0
    for name, t, ne, offset in infos:
        if offset != size:
            raise r.fail("tensor-offset", f"tensor {name!r} has offset {offset}, expected {size}")
        nbytes = ggml_nbytes(ne, *TYPE_TRAITS[t])
        if nbytes > SIZE_MAX - (alignment - 1):
            raise r.fail("tensor-size-overflow", f"tensor {name!r} size {nbytes} overflows after "
                         f"padding to {alignment}")
        padded = ggml_pad(nbytes, alignment)
        if SIZE_MAX - size < padded:
            raise r.fail("data-size-overflow", f"tensor {name!r}: data section size overflows "
                         f"({size} + {padded})")
        size += padded
        try:
            gt: GGMLQuantizationType | int = GGMLQuantizationType(t)
        except ValueError:
            gt = t
        tensors.append(TensorInfo(name, gt, (ne[0], ne[1], ne[2], ne[3]), offset, nbytes))

    out = GGUFFile(version, alignment, data_offset, kv, tensors, data_size=size)
    if with_data:
        _read_data(r, out, infos)
    elif spans is not None:
        r.mark("data", data_offset, min(size, r.end - data_offset))
    return out


def _read_data(r: _Reader, out: GGUFFile, infos: list[tuple[bytes, int, list[int], int]]) -> None:
    """gguf_init_from_reader with params.ctx set (no_alloc false): the ggml context for the
    tensors and the data blob, then the tensors themselves."""
    n = len(infos)
    if SIZE_MAX // (n + 1) < GGML_TENSOR_OVERHEAD or \
            SIZE_MAX - (n + 1) * GGML_TENSOR_OVERHEAD < out.data_size:
        raise r.fail("data-mem-overflow", "memory size overflow while allocating the ggml context")
    # Quirk: the reference mallocs the whole data section before reading it and aborts
    # (ggml_init GGML_ASSERT) when that fails; pyggml rejects instead.
    if out.data_size > r.end - r.pos:
        raise r.fail("data-eof", f"the data section needs {out.data_size} bytes at "
                     f"{out.data_offset}, {r.end - r.pos} remain")
    r.mark("data", r.pos, out.data_size)
    # Quirk: ggml_new_tensor then asserts (the reference process aborts) on shapes gguf.cpp let
    # through; pyggml raises with reason "abort" (the parity compares it with an abort).
    for name, _, ne, _ in infos:
        if new_tensor_aborts(ne):
            raise r.fail("abort", f"tensor {name!r} with shape {tuple(ne)}: the reference aborts "
                         "in ggml_new_tensor (element count not representable)")
    out.data = memoryview(r.buf)[out.data_offset:out.data_offset + out.data_size]


def parse(data: bytes | memoryview | mmap.mmap, *, with_data: bool = False) -> GGUFFile:
    """Parse a whole GGUF file held in memory (like ``gguf_init_from_buffer``).

    ``with_data``: also take the tensor data section (``GGUFFile.data``, a view of ``data``
    without a copy) and apply the checks the reference makes when it loads it.
    Raises ``GGUFError`` wherever the reference returns NULL.
    """
    if not isinstance(data, bytes | mmap.mmap):
        data = memoryview(data).cast("B")
    return _parse(data, with_data, None)


def parse_file(path: str | os.PathLike[str], *, with_data: bool = False) -> GGUFFile:
    """Parse a GGUF file through mmap (``gguf_init_from_file``'s verdict).

    With ``with_data`` the returned ``data`` view keeps the mapping open.
    """
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return parse(b"", with_data=with_data)
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        return parse(m, with_data=with_data)
    finally:
        if not with_data:
            try:
                m.close()
            except BufferError:  # a view escaped; the mapping closes when it is collected
                pass


def layout(data: bytes) -> list[Span]:
    """Every field of a (valid) GGUF buffer in file order, for the mutation generator.

    Parses like ``parse`` and returns the fields read up to where parsing stopped.
    """
    spans: list[Span] = []
    try:
        _parse(data, False, spans)
    except GGUFError:
        pass
    return spans
