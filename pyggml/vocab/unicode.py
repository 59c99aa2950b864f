"""Unicode helpers of the reference tokenizers (llama.cpp: src/unicode.cpp).

The category flags, whitespace set, lowercase map and NFD ranges are the reference's own
(src/unicode-data.cpp, generated from a newer Unicode than this Python's ``unicodedata``).
The build converts that file into ``pyggml/data/unicode-tables.npz`` (``_unicode_gen``), which
is loaded here and expanded into numpy tables; a source checkout without a build converts the
reference tree's file into the user cache instead (``$PYGGML_CACHE`` or ``~/.cache/pyggml``).
Nothing is copied into our sources; the file is data.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np

from . import _unicode_gen

MAX_CODEPOINTS = 0x110000

# llama.cpp: src/unicode.h unicode_cpt_flags
UNDEFINED = 0x0001
NUMBER = 0x0002
LETTER = 0x0004
SEPARATOR = 0x0008
ACCENT_MARK = 0x0010
PUNCTUATION = 0x0020
SYMBOL = 0x0040
CONTROL = 0x0080
MASK_CATEGORIES = 0x00FF
WHITESPACE = 0x0100
LOWERCASE = 0x0200
UPPERCASE = 0x0400
NFD = 0x0800

REPLACEMENT = 0xFFFD


class UnicodeDataError(RuntimeError):
    pass


TABLES_FILE = "unicode-tables.npz"


def built_tables_file() -> Path | None:
    """The tables the build converted from the reference's src/unicode-data.cpp (installed into
    ``pyggml/data`` by CMakeLists.txt; for editable installs that folder is in site-packages)."""
    here = Path(__file__).resolve().parents[1] / "data" / TABLES_FILE
    if here.is_file():
        return here
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        located = Path(str(distribution("pyggml").locate_file(f"pyggml/data/{TABLES_FILE}")))
    except PackageNotFoundError:
        return None
    return located if located.is_file() else None


def _reference_data_file() -> Path:
    candidates = []
    if os.environ.get("PYGGML_LLAMA_CPP_DIR"):
        candidates.append(Path(os.environ["PYGGML_LLAMA_CPP_DIR"]))
    here = Path(__file__).resolve()
    candidates.append(here.parents[2] / "vendor" / "llama.cpp")
    for c in candidates:
        f = c / "src" / "unicode-data.cpp"
        if f.is_file():
            return f
    raise UnicodeDataError(
        f"pyggml/data/{TABLES_FILE} is missing (built by `pip install .`), and no reference tree "
        "holds src/unicode-data.cpp to build it from (run `python vendor/fetch_reference.py` "
        "or set PYGGML_LLAMA_CPP_DIR)"
    )


def _cache_dir() -> Path:
    path = Path(os.environ.get("PYGGML_CACHE", Path.home() / ".cache" / "pyggml"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tables_file() -> Path:
    """The built tables, else tables converted from a reference tree into the user cache
    (``$PYGGML_CACHE``, keyed by the source's sha256) with the build's own converter."""
    built = built_tables_file()
    if built is not None:
        return built
    raw = _reference_data_file().read_bytes()
    cached = _cache_dir() / f"unicode-tables-{hashlib.sha256(raw).hexdigest()[:16]}.npz"
    if not cached.is_file():
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        _unicode_gen.write_npz(str(tmp), _unicode_gen.parse(raw))
        os.replace(tmp, cached)
    return cached


def _expand(sections: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """llama.cpp: src/unicode.cpp unicode_cpt_flags_array, from the sections of unicode-data.cpp."""
    ranges = sections["ranges_flags"].astype(np.int64)
    flags = np.full(MAX_CODEPOINTS, UNDEFINED, dtype=np.uint16)
    # each start runs to the next start
    for (ini, f), (end, _) in zip(ranges[:-1].tolist(), ranges[1:].tolist(), strict=True):
        flags[ini:end] = f
    flags[sections["set_whitespace"]] |= WHITESPACE
    lower = sections["map_lowercase"].astype(np.int64)
    flags[lower[:, 1]] |= LOWERCASE
    flags[sections["map_uppercase"][:, 1]] |= UPPERCASE
    nfd = sections["ranges_nfd"].astype(np.int64)
    flags[nfd[:, 2]] |= NFD
    return {"flags": flags, "lower": lower, "nfd": nfd}


@functools.cache
def tables() -> dict[str, np.ndarray]:
    """``flags`` (uint16 per codepoint), ``lower`` (pairs) and ``nfd`` (first, last, nfd rows)."""
    path = _tables_file()
    try:
        with np.load(path, allow_pickle=False) as z:
            sections = {name: z[name] for name in _unicode_gen.SECTIONS}
    except (OSError, KeyError, ValueError) as exc:
        raise UnicodeDataError(f"unreadable unicode tables {path}: {exc}") from exc
    return _expand(sections)


@functools.cache
def flags_table() -> np.ndarray:
    """uint16 flags per codepoint (shape (0x110000,))."""
    return tables()["flags"]


@functools.cache
def _flags_list() -> list[int]:
    return flags_table().tolist()


def cpt_flags(cpt: int) -> int:
    """llama.cpp: unicode_cpt_flags_from_cpt (UNDEFINED beyond the table)."""
    return _flags_list()[cpt] if cpt < MAX_CODEPOINTS else UNDEFINED


@functools.cache
def _lower_map() -> dict[int, int]:
    lower = tables()["lower"]
    out: dict[int, int] = {}
    # llama.cpp: unicode_tolower takes the first pair of a binary search (lower_bound)
    for a, b in lower.tolist():
        out.setdefault(a, b)
    return out


def tolower(cpt: int) -> int:
    return _lower_map().get(cpt, cpt)


@functools.cache
def _nfd_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nfd = tables()["nfd"]
    return nfd[:, 0].copy(), nfd[:, 1].copy(), nfd[:, 2].copy()


def normalize_nfd(cpts: list[int]) -> list[int]:
    """llama.cpp: unicode_cpts_normalize_nfd (one codepoint in, one out)."""
    if not cpts:
        return []
    first, last, target = _nfd_arrays()
    a = np.asarray(cpts, dtype=np.int64)
    idx = np.searchsorted(first, a, side="right") - 1
    idx_c = np.clip(idx, 0, None)
    hit = (idx >= 0) & (first[idx_c] <= a) & (a <= last[idx_c])
    return np.where(hit, target[idx_c], a).tolist()


# --- UTF-8 ------------------------------------------------------------------------------

_LEN_UTF8 = bytes([1] * 12 + [2, 2, 3, 4])


def len_utf8(byte: int) -> int:
    """llama.cpp: unicode_len_utf8 (by the high nibble of the lead byte)."""
    return _LEN_UTF8[byte >> 4]


def cpt_from_utf8(data: bytes, offset: int) -> tuple[int, int] | None:
    """llama.cpp: unicode_cpt_from_utf8: (codepoint, new offset), None where it throws.

    It checks lead and continuation bits only: overlong forms, surrogates and values up to
    0x1FFFFF are accepted as codepoints."""
    n = len(data)
    c0 = data[offset]
    if not c0 & 0x80:
        return c0, offset + 1
    if not c0 & 0x40:
        return None
    if not c0 & 0x20:
        if offset + 1 >= n or (data[offset + 1] & 0xC0) != 0x80:
            return None
        return ((c0 & 0x1F) << 6) | (data[offset + 1] & 0x3F), offset + 2
    if not c0 & 0x10:
        if offset + 2 >= n or (data[offset + 1] & 0xC0) != 0x80 or (data[offset + 2] & 0xC0) != 0x80:
            return None
        return (
            ((c0 & 0x0F) << 12) | ((data[offset + 1] & 0x3F) << 6) | (data[offset + 2] & 0x3F),
            offset + 3,
        )
    if not c0 & 0x08:
        if (
            offset + 3 >= n
            or (data[offset + 1] & 0xC0) != 0x80
            or (data[offset + 2] & 0xC0) != 0x80
            or (data[offset + 3] & 0xC0) != 0x80
        ):
            return None
        return (
            ((c0 & 0x07) << 18)
            | ((data[offset + 1] & 0x3F) << 12)
            | ((data[offset + 2] & 0x3F) << 6)
            | (data[offset + 3] & 0x3F),
            offset + 4,
        )
    return None


def cpts_from_utf8(data: bytes) -> list[int]:
    """llama.cpp: unicode_cpts_from_utf8 (an undecodable byte becomes U+FFFD, one per byte)."""
    try:
        # strict UTF-8 decodes exactly the way the reference does on valid input
        return list(map(ord, data.decode("utf-8")))
    except UnicodeDecodeError:
        pass
    out: list[int] = []
    off = 0
    n = len(data)
    while off < n:
        r = cpt_from_utf8(data, off)
        if r is None:
            out.append(REPLACEMENT)
            off += 1
        else:
            out.append(r[0])
            off = r[1]
    return out


class InvalidCodepoint(ValueError):
    """The reference's unicode_cpt_to_utf8 throws std::invalid_argument (> U+10FFFF)."""


def cpts_to_utf8(cpts: list[int]) -> bytes:
    """llama.cpp: unicode_cpt_to_utf8 over a list (surrogates are encoded like any value)."""
    if cpts and max(cpts) > 0x10FFFF:
        raise InvalidCodepoint(
            "codepoint above U+10FFFF: the reference throws "
            "std::invalid_argument('invalid codepoint') out of llama_tokenize"
        )
    return "".join(map(chr, cpts)).encode("utf-8", "surrogatepass")


# --- GPT-2 byte <-> unicode map (llama.cpp: unicode_byte_to_utf8_map) -------------------


@functools.cache
def byte_to_unicode() -> list[str]:
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    out = [""] * 256
    for b in keep:
        out[b] = chr(b)
    n = 0
    for b in range(256):
        if not out[b]:
            out[b] = chr(256 + n)
            n += 1
    return out


@functools.cache
def byte_encode_table() -> dict[int, str]:
    """str.translate table: latin-1 char of a byte -> its GPT-2 stand-in."""
    return {b: s for b, s in enumerate(byte_to_unicode())}


@functools.cache
def unicode_to_byte() -> dict[str, int]:
    return {s: b for b, s in enumerate(byte_to_unicode())}


def byte_encode(data: bytes) -> bytes:
    """llama.cpp: unicode_byte_encoding_process for one word (already valid UTF-8)."""
    return data.decode("latin-1").translate(byte_encode_table()).encode("utf-8")
