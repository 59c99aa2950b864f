"""Vocabularies loaded once per session on both sides (shared by the tests of this folder)."""

from __future__ import annotations

import functools

from pyggml.parity import corpus


def path(name: str):
    if name == "rwkv-world":  # converted from the rwkv wheel (no RWKV vocab in the reference tree)
        from pyggml.parity.vocab import rwkv_world_gguf

        return rwkv_world_gguf()
    return corpus.reference_tree() / "models" / f"ggml-vocab-{name}.gguf"


@functools.cache
def ours(name: str):
    from pyggml.vocab import Vocab

    return Vocab.from_gguf(path(name))


@functools.cache
def reference(name: str):
    from pyggml.reference.vocab import RefVocab

    return RefVocab(path(name))
