"""Vocabularies loaded once per session on both sides (shared by the tests of this folder)."""

from __future__ import annotations

import functools

from pyggml.parity import corpus


@functools.cache
def ours(name: str):
    from pyggml.vocab.vocab import Vocab

    return Vocab.from_gguf(corpus.reference_tree() / "models" / f"ggml-vocab-{name}.gguf")


@functools.cache
def reference(name: str):
    from pyggml.reference.vocab import RefVocab

    return RefVocab(corpus.reference_tree() / "models" / f"ggml-vocab-{name}.gguf")
