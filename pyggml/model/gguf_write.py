"""Writing GGUF files with the ``gguf`` package (test data: converted vocabs, synthetic and
edited copies).  Lives in ``model`` so that every later stage, and the parity/test tools, can
share it without importing each other."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_gguf(out: Path, arch: str, fill: Callable[[Any], None], name: str | None = None) -> Path:
    """Write a tensor-less GGUF to ``out``: ``general.architecture`` = ``arch``, then
    ``general.name`` = ``name`` when given, then whatever ``fill(writer)`` adds (keys keep that
    order in the file).  The file is written under a per-process ``.part`` name and renamed,
    so a reader never sees half a file and concurrent writers of the same ``out`` do not
    collide."""
    import gguf

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.part")
    w = gguf.GGUFWriter(str(tmp), arch)
    if name is not None:
        w.add_name(name)
    fill(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    tmp.replace(out)
    return out
