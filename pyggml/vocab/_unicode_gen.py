"""Build-time converter: the reference's ``src/unicode-data.cpp`` -> ``unicode-tables.npz``.

CMake runs this file as a script (``python _unicode_gen.py SRC OUT``) while building, and the
table file is installed into the package (``pyggml/data``), so an installed pyggml never needs
the reference tree.  ``pyggml.vocab.unicode`` loads the file and expands it into per-codepoint
tables; it falls back to this parser (over a reference tree, cached) only where no built file
exists.

Standard library only: the build environment has no numpy.  The output is a plain ``.npz``
(a zip of ``.npy`` files, written by hand, deterministic) holding the five sections as they are
in the source, as int32 arrays, plus the source's sha256:

    ranges_flags (N, 2)   start, flags (each start runs to the next start)
    set_whitespace (N,)
    map_lowercase (N, 2)  upper, lower pairs in the source's order
    map_uppercase (N, 2)
    ranges_nfd (N, 3)     first, last, nfd
    sha256 (32,) uint8
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import sys
import zipfile

SECTIONS = {  # name -> values per row
    "ranges_flags": 2,
    "set_whitespace": 1,
    "map_lowercase": 2,
    "map_uppercase": 2,
    "ranges_nfd": 3,
}

_SECTION = re.compile(r"unicode_(" + "|".join(SECTIONS) + r")\s*=\s*\{(.*?)\n\};", re.S)
_COMMENT = re.compile(r"//[^\n]*")
_HEX = re.compile(r"0x([0-9A-Fa-f]+)")


class FormatError(ValueError):
    pass


def parse(raw: bytes) -> dict[str, list[int]]:
    """The sections of unicode-data.cpp as flat lists of ints (row-major), and its sha256."""
    text = raw.decode("utf-8")
    found = {m.group(1): _COMMENT.sub("", m.group(2)) for m in _SECTION.finditer(text)}
    if set(found) != set(SECTIONS):
        raise FormatError(f"unexpected unicode-data.cpp layout (sections {sorted(found)})")
    out: dict[str, list[int]] = {}
    for name, width in SECTIONS.items():
        vals = [int(h, 16) for h in _HEX.findall(found[name])]
        if not vals or len(vals) % width:
            raise FormatError(f"section {name}: {len(vals)} values, not rows of {width}")
        out[name] = vals
    out["sha256"] = list(hashlib.sha256(raw).digest())
    return out


def _npy(values: list[int], shape: tuple[int, ...], descr: str, fmt: str) -> bytes:
    """One ``.npy`` file (format 1.0)."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"  # 64-byte aligned, as numpy writes
    return (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1")
            + struct.pack(f"<{len(values)}{fmt}", *values))


def write_npz(path: str, tables: dict[str, list[int]]) -> None:
    """Write ``tables`` (from ``parse``) as a deterministic, compressed ``.npz``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, width in [*SECTIONS.items(), ("sha256", 1)]:
            vals = tables[name]
            shape = (len(vals),) if width == 1 else (len(vals) // width, width)
            data = _npy(vals, shape, "|u1", "B") if name == "sha256" else _npy(vals, shape, "<i4", "i")
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} SRC/unicode-data.cpp OUT.npz", file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        tables = parse(f.read())
    tmp = argv[2] + ".tmp"
    write_npz(tmp, tables)
    os.replace(tmp, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
