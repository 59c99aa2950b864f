"""Copies of vocab-only GGUFs with some metadata changed (a pre-tokenizer type, a flag, token
types), written with the ``gguf`` package into the pyggml cache, to exercise reference code
paths that no shipped vocabulary reaches."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pyggml.model.gguf_write import write_gguf
from pyggml.parity import corpus
from pyggml.vocab.gguf_meta import ARRAY, Value, parse_metadata


def variant(src: Path, overrides: dict[str, Value | None]) -> Path:
    """``src`` with each key of ``overrides`` set (or removed where the value is None)."""
    import gguf

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
    meta = parse_metadata(src.read_bytes())
    for k, v in overrides.items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    arch = meta.pop("general.architecture").value.decode()

    def fill(w: Any) -> None:
        for key, v in meta.items():
            val: Any = v.value
            if v.type == ARRAY and not isinstance(val, list):
                val = val.tolist()
            sub = gguf.GGUFValueType(v.arr_type) if v.arr_type is not None else None
            w.add_key_value(key, val, gguf.GGUFValueType(v.type), sub)

    return write_gguf(out, arch, fill)


def string(s: str) -> Value:
    from pyggml.vocab.gguf_meta import STRING

    return Value(STRING, s.encode())


def boolean(b: bool) -> Value:
    from pyggml.vocab.gguf_meta import BOOL

    return Value(BOOL, b)
