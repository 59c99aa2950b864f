"""Vocabularies loaded once per session on both sides (shared by the tests of this folder)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from pyggml.parity import corpus

# name -> fixture, for vocabularies outside the reference tree (test modules add theirs)
FIXTURES: dict[str, Callable[[], Path]] = {}


def register(fixtures: dict[str, Callable[[], Path]]) -> None:
    FIXTURES.update(fixtures)


def path(name: str) -> Path:
    if name == "rwkv-world":  # converted from the rwkv wheel (no RWKV vocab in the reference tree)
        from pyggml.parity.vocab import rwkv_world_gguf

        return rwkv_world_gguf()
    if name in FIXTURES:
        return FIXTURES[name]()
    return corpus.reference_tree() / "models" / f"ggml-vocab-{name}.gguf"


@functools.cache
def ours(name: str):
    from pyggml.vocab import Vocab

    return Vocab.from_gguf(path(name))


@functools.cache
def reference(name: str):
    from pyggml.reference.vocab import RefVocab

    return RefVocab(path(name))
