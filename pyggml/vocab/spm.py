"""SentencePiece-style BPE by score (llama.cpp: src/llama-vocab.cpp llm_tokenizer_spm_session)."""

from __future__ import annotations

import heapq
import re
from typing import TYPE_CHECKING

from .unicode import len_utf8
from .wordcache import extend_cached

if TYPE_CHECKING:
    from .vocab import Vocab


_SPACE = "\u2581".encode()


def splittable(texts: list[bytes]) -> bool:
    """True when no token holds a non-space char directly followed by U+2581: then no merge can
    span the boundary in front of a space run, and the text splits into independent chunks
    there.  (The reference's rev_merge fallback is never taken: every merged symbol is a
    token, so chunks need no shared state.)"""
    for t in texts:
        i = t.find(_SPACE, 1)
        while i != -1:
            if t[max(0, i - 3) : i] != _SPACE:
                return False
            i = t.find(_SPACE, i + 1)
    return True


_CHUNK = re.compile(rb"(?<!\xe2\x96\x81)(?=\xe2\x96\x81)")


def tokenize(vocab: Vocab, text: bytes, out: list[int]) -> None:
    if vocab._spm_splittable:
        try:
            text.decode("utf-8")  # symbol boundaries line up with chars only on valid UTF-8
        except UnicodeDecodeError:
            _tokenize(vocab, text, out)
            return
        extend_cached(vocab._word_cache, _CHUNK.split(text), lambda chunk: _collect(vocab, chunk), out)
        return
    _tokenize(vocab, text, out)


def _collect(vocab: Vocab, chunk: bytes) -> list[int]:
    ids: list[int] = []
    _tokenize(vocab, chunk, ids)
    return ids


def _tokenize(vocab: Vocab, text: bytes, out: list[int]) -> None:
    n = len(text)
    starts: list[int] = []
    lens: list[int] = []
    off = 0
    while off < n:
        k = min(len_utf8(text[off]), n - off)
        starts.append(off)
        lens.append(k)
        off += k
    m = len(starts)
    if m == 0:
        return
    prev = list(range(-1, m - 1))
    nxt = list(range(1, m + 1))
    nxt[-1] = -1
    t2id = vocab.token_to_id
    scores = vocab.scores
    heap: list[tuple[float, int, int, int]] = []
    rev_merge: dict[bytes, tuple[int, int]] = {}

    def try_add(left: int, right: int) -> None:
        if left == -1 or right == -1:
            return
        s = starts[left]
        piece = text[s : s + lens[left] + lens[right]]
        tok = t2id.get(piece)
        if tok is None:
            return
        # top of the reference's queue: highest score, then lowest left index
        heapq.heappush(heap, (-scores[tok], left, right, len(piece)))
        rev_merge[piece] = (left, right)

    for i in range(1, m):
        try_add(i - 1, i)
    while heap:
        _, left, right, size = heapq.heappop(heap)
        if lens[left] == 0 or lens[right] == 0 or lens[left] + lens[right] != size:
            continue
        lens[left] += lens[right]
        lens[right] = 0
        nxt[left] = nxt[right]
        if nxt[right] >= 0:
            prev[nxt[right]] = left
        try_add(prev[left], left)
        try_add(left, nxt[left])

    def resegment(i: int) -> None:
        piece = text[starts[i] : starts[i] + lens[i]]
        tok = t2id.get(piece)
        if tok is not None:
            out.append(tok)
            return
        p = rev_merge.get(piece)
        if p is None:
            for b in piece:
                out.append(vocab.byte_to_token(b))
            return
        resegment(p[0])
        resegment(p[1])

    i = 0
    while i != -1:
        resegment(i)
        i = nxt[i]
