"""Copies of vocab-only GGUFs with some metadata changed (a pre-tokenizer type, a flag, token
types), written with the ``gguf`` package into the pyggml cache, to exercise reference code
paths that no shipped vocabulary reaches."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pyggml.parity import corpus
from pyggml.parity.vocab_convert import write_vocab_copy
from pyggml.vocab.gguf_meta import Value


def variant(src: Path, overrides: dict[str, Value | None]) -> Path:
    """``src`` with each key of ``overrides`` set (or removed where the value is None)."""

    h = hashlib.sha256(str(src).encode())
    for key in sorted(overrides):
        v = overrides[key]
        h.update(key.encode())
        if v is not None:  # arrays by content (their repr is abridged)
            h.update(repr((v.type, v.arr_type)).encode())
            h.update(v.value.tobytes() if hasattr(v.value, "tobytes") else repr(v.value).encode())
    tag = h.hexdigest()[:16]
    out = corpus.cache_dir() / "vocabs" / "variants" / f"{src.stem}-{tag}.gguf"
    if out.exists():
        return out

    def edit(meta: dict[str, Any]) -> None:
        for k, v in overrides.items():
            if v is None:
                meta.pop(k, None)
            else:
                meta[k] = v

    return write_vocab_copy(src, out, edit, keep_name=True)


def string(s: str) -> Value:
    from pyggml.vocab.gguf_meta import STRING

    return Value(STRING, s.encode())


def boolean(b: bool) -> Value:
    from pyggml.vocab.gguf_meta import BOOL

    return Value(BOOL, b)
