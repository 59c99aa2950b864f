"""Tokenizers: llama.cpp's vocabularies in Python (SPM, BPE with every pre-tokenizer the
reference knows, WPM, UGM), id-for-id identical to the reference.

``Vocab.from_gguf(path_or_gguffile)``, then ``tokenize`` / ``detokenize`` / ``token_to_piece``.
"""

from __future__ import annotations

from .vocab import Vocab

__all__ = ["Vocab"]
