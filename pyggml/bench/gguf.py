"""Bench of the GGUF parser: SmolLM2's header and metadata (its 49k-token vocabulary arrays).

Both sides parse the file from disk: pyggml through mmap, the reference with
``gguf_init_from_file`` (no_alloc, no tensor data).
"""

from __future__ import annotations

import os

from ..model import gguf
from ..parity import corpus
from . import Pair


def _parse_smollm2() -> Pair:
    from ..reference import gguf as ref

    path = corpus.smollm2()
    raw = os.fsencode(path)

    def reference() -> object:
        if not ref.parse_file_only(raw):
            raise RuntimeError(f"the reference rejected {path}")
        return None

    return Pair(ours=lambda: gguf.parse_file(path), reference=reference,
                note="gguf_init_from_file(no_alloc) vs pyggml.model.gguf.parse_file (mmap)")


CASES = {
    "gguf-parse-smollm2": _parse_smollm2,
}
