"""Byte-pair merges by rank (llama.cpp: src/llama-vocab.cpp llm_tokenizer_bpe_session)."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from ..errors import TokenizerError
from .unicode import len_utf8
from .wordcache import extend_cached

if TYPE_CHECKING:
    from .vocab import Vocab

_HEX = "0123456789ABCDEF"
_NEWLINES_ONLY = frozenset(b"\n")


def merge_word(vocab: Vocab, word: bytes) -> list[bytes]:
    """The symbols one pre-tokenized word ends as, in order."""
    t2id = vocab.token_to_id
    if vocab.ignore_merges and word in t2id:
        return [word]
    if vocab.pre.pre_type == "GEMMA4" and set(word) <= _NEWLINES_ONLY and word in t2id:
        return [word]
    n = len(word)
    syms: list[bytes] = []
    off = 0
    while off < n:
        k = min(n - off, len_utf8(word[off]))
        syms.append(word[off : off + k])
        off += k
    m = len(syms)
    if m < 2:
        return syms
    prev = list(range(-1, m - 1))
    nxt = list(range(1, m + 1))
    nxt[-1] = -1
    ranks = vocab.bpe_ranks
    heap: list[tuple[int, int, int, bytes]] = []

    def add(left: int, right: int) -> None:
        if left == -1 or right == -1:
            return
        a, b = syms[left], syms[right]
        if b" " in a or b" " in b:
            # llama.cpp: llama_vocab::find_bpe_rank GGML_ASSERTs (the process aborts)
            raise TokenizerError(
                "BPE merge lookup of a symbol containing a space: the reference aborts "
                "(GGML_ASSERT in llama_vocab::find_bpe_rank)"
            )
        r = ranks.get((a, b))
        if r is None:
            return
        # top of the reference's queue: lowest rank, then lowest left index
        heapq.heappush(heap, (r, left, right, a + b))

    for i in range(1, m):
        add(i - 1, i)
    while heap:
        _, left, right, text = heapq.heappop(heap)
        a, b = syms[left], syms[right]
        if not a or not b or a + b != text:
            continue
        syms[left] = text
        syms[right] = b""
        nxt[left] = nxt[right]
        if nxt[right] >= 0:
            prev[nxt[right]] = left
        add(prev[left], left)
        add(left, nxt[left])
    return [s for s in syms if s]


def word_tokens(vocab: Vocab, word: bytes, byte_encode: bool) -> list[int]:
    t2id = vocab.token_to_id
    out: list[int] = []
    for sym in merge_word(vocab, word):
        tok = t2id.get(sym)
        if tok is not None:
            out.append(tok)
            continue
        # unknown symbol: its bytes one by one; bytes without a token are dropped silently
        for ch in sym:
            key = bytes([ch]) if byte_encode else f"<0x{_HEX[ch >> 4]}{_HEX[ch & 15]}>".encode()
            t = t2id.get(key)
            if t is not None:
                out.append(t)
    return out


def tokenize(vocab: Vocab, text: bytes, out: list[int]) -> None:
    splitter = vocab.splitter
    be = splitter.byte_encode
    extend_cached(vocab._word_cache, splitter.split(text), lambda word: word_tokens(vocab, word, be), out)
