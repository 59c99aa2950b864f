"""Canonical values shared by the probe's JSON and pyggml's side.

Floats are compared by bit pattern (``"f32:%08x"``/``"f64:%016x"``) and strings as hex of
their bytes (``"s:<hex>"``), so NaN, -0.0 and invalid UTF-8 diff exactly.  The probe reads
strings through the C API, which stops at the first NUL byte: ``canon_str`` does the same.
"""

from __future__ import annotations

import struct


def f32(v: float) -> str:
    return f"f32:{struct.unpack('<I', struct.pack('<f', v))[0]:08x}"


def canon_str(b: bytes | str) -> str:
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    nul = b.find(b"\0")
    if nul >= 0:
        b = b[:nul]
    return "s:" + b.hex()


def uncanon_str(s: str) -> bytes:
    assert s.startswith("s:"), s
    return bytes.fromhex(s[2:])
