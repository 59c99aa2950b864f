"""The ``whitespace`` BPE session (jina-embeddings-v2-base-zh): whitespace codepoints split the
text and are dropped, each segment optionally lowercased, then plain BPE per segment.

llama.cpp: src/llama-vocab.cpp llm_tokenizer_whitespace_session::tokenize.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from . import bpe
from . import unicode as U

if TYPE_CHECKING:
    from .vocab import Vocab


@functools.cache
def _whitespace() -> frozenset[int]:
    # unicode_cpt_flags_from_cpt(cpt).is_whitespace; beyond the table: UNDEFINED, not whitespace
    return frozenset(np.flatnonzero(U.flags_table() & U.WHITESPACE).tolist())


def tokenize(vocab: Vocab, text: bytes, out: list[int]) -> None:
    """One raw-text fragment; invalid UTF-8 bytes become U+FFFD (unicode_cpts_from_utf8) and a
    codepoint above U+10FFFF raises InvalidCodepoint (the reference throws)."""
    ws = _whitespace()
    lower = U.tolower if vocab.normalizer_lowercase else None
    seg: list[int] = []
    for cpt in U.cpts_from_utf8(text):
        if cpt in ws:
            if seg:
                bpe.tokenize(vocab, U.cpts_to_utf8(seg), out)
                seg = []
        else:
            seg.append(lower(cpt) if lower is not None else cpt)
    if seg:
        bpe.tokenize(vocab, U.cpts_to_utf8(seg), out)
