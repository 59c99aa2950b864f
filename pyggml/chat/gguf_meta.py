"""Chat templates stored in a GGUF file's metadata (``tokenizer.chat_template`` and the named
variants ``tokenizer.chat_template.<name>``), read from the key/value section only.

llama.cpp: src/llama-model.cpp llama_model_chat_template reads the same keys.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from ..errors import GGUFError

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
           12: "<d"}
_STRING, _ARRAY = 8, 9
KEY = "tokenizer.chat_template"


def _read(f: BinaryIO, fmt: str) -> int | float | bool:
    n = struct.calcsize(fmt)
    b = f.read(n)
    if len(b) != n:
        raise GGUFError("unexpected end of file in metadata", reason="truncated", offset=f.tell())
    return struct.unpack(fmt, b)[0]


def _read_str(f: BinaryIO) -> bytes:
    n = int(_read(f, "<Q"))
    b = f.read(n)
    if len(b) != n:
        raise GGUFError("unexpected end of file in a string", reason="truncated", offset=f.tell())
    return b


def _skip_value(f: BinaryIO, t: int) -> None:
    if t in _SCALAR:
        f.seek(struct.calcsize(_SCALAR[t]), os.SEEK_CUR)
    elif t == _STRING:
        f.seek(int(_read(f, "<Q")), os.SEEK_CUR)
    elif t == _ARRAY:
        at = int(_read(f, "<I"))
        n = int(_read(f, "<Q"))
        if at in _SCALAR:
            f.seek(n * struct.calcsize(_SCALAR[at]), os.SEEK_CUR)
        else:
            for _ in range(n):
                _skip_value(f, at)
    else:
        raise GGUFError(f"unknown metadata value type {t}", reason="bad_type", offset=f.tell())


def chat_templates(path: str | os.PathLike[str]) -> dict[str, str]:
    """Every chat template of the file: ``{"": default, "tool_use": ..., ...}`` (empty when
    the file has none)."""
    out: dict[str, str] = {}
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise GGUFError("not a GGUF file", reason="magic", offset=0)
        _read(f, "<I")  # version
        _read(f, "<Q")  # n_tensors
        n_kv = int(_read(f, "<Q"))
        for _ in range(n_kv):
            key = _read_str(f).decode("utf-8", "replace")
            t = int(_read(f, "<I"))
            if t == _STRING and (key == KEY or key.startswith(KEY + ".")):
                out[key[len(KEY) + 1:]] = _read_str(f).decode("utf-8", "surrogateescape")
            else:
                _skip_value(f, t)
    return out
