"""ggml/src/gguf.cpp's verdict and summary for a buffer or a file."""

from __future__ import annotations

import os
from typing import Any

from .._native import ffi, probe
from ._probe import take_json, take_log


def parse_buffer(data: bytes, *, with_data: bool = False) -> dict[str, Any] | None:
    """Summary of ``gguf_init_from_buffer`` (``None`` when it returns NULL).

    ``with_data``: also read the tensor data section (``params.ctx`` set), as loaders do.
    """
    out = ffi.new("char **")
    ok = probe().ps_gguf_parse_buffer(data, len(data), int(with_data), out)
    take_log()
    return take_json(out) if ok else None


def parse_file(path: str | os.PathLike[str], *, no_alloc: bool = True) -> dict[str, Any] | None:
    out = ffi.new("char **")
    ok = probe().ps_gguf_parse_file(os.fsencode(path), int(no_alloc), out)
    take_log()
    return take_json(out) if ok else None


def parse_file_only(path: bytes) -> bool:
    """Parse without building a summary (the bench's reference side)."""
    return bool(probe().ps_gguf_parse_file(path, 1, ffi.NULL))
