"""Calling the probe: JSON results, captured reference logs."""

from __future__ import annotations

import json
from typing import Any

from .._native import ffi, probe


def take_json(out_ptr) -> Any:
    """Decode and free a ``char **`` JSON result of the probe."""
    raw = out_ptr[0]
    if raw == ffi.NULL:
        return None
    try:
        return json.loads(ffi.string(raw))
    finally:
        probe().ps_free(raw)


def take_log() -> str:
    """Everything the reference logged since the last call (and clear it)."""
    lib = probe()
    n = lib.ps_log_take(ffi.NULL, 0)
    buf = ffi.new("char[]", n + 1)
    lib.ps_log_take(buf, n + 1)
    return ffi.string(buf).decode("utf-8", "replace")
