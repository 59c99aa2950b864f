"""Tokenizers: llama.cpp's vocabularies in Python (SPM, BPE with every pre-tokenizer the
reference knows, WPM, UGM), id-for-id identical to the reference.

``Vocab.from_gguf(path_or_gguffile)``, then ``tokenize`` / ``detokenize`` / ``token_to_piece``.
"""

from __future__ import annotations

from ..model import register_vocab_builder
from .vocab import Vocab

register_vocab_builder(Vocab.from_gguf)

__all__ = ["Vocab"]
