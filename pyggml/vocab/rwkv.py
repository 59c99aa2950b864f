"""RWKV "world" tokenizer: greedy longest match over unescaped token bytes
(llama.cpp: src/llama-vocab.cpp llama_unescape_rwkv_token, llm_tokenizer_rwkv{,_session})."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .wordcache import extend_cached

if TYPE_CHECKING:
    from .vocab import Vocab

_ESCAPES = {ord("t"): 0x09, ord("n"): 0x0A, ord("r"): 0x0D}


def unescape(text: bytes) -> bytes:
    """llama.cpp: llama_unescape_rwkv_token (``\\t \\n \\r \\xHH``; any other escaped char as is).

    Hex digits are read the reference's way: ``c >= 'a'`` -> ``c - 'a' + 10``, else ``c - '0'``
    (uppercase or non-hex chars give whatever that arithmetic gives, modulo 256)."""
    out = bytearray()
    escaping = False
    hex_left = 0
    acc = 0
    for c in text:
        if hex_left:
            v = c - 0x61 + 10 if c >= 0x61 else c - 0x30
            acc = ((acc << 4) + v) & 0xFF
            hex_left -= 1
            if hex_left == 0:
                out.append(acc)
                acc = 0
            continue
        if escaping:
            if c == ord("x"):
                hex_left = 2
            else:
                out.append(_ESCAPES.get(c, c))
            escaping = False
            continue
        if c == 0x5C:  # backslash
            escaping = True
            continue
        out.append(c)
    return bytes(out)


class RWKVModel:
    """The naive trie of unescaped texts: a dict (later ids overwrite earlier ones) plus the set
    of every prefix, so that a walk stops where the trie has no node.

    Where the two bytes around a position are no pair of adjacent bytes inside a token, no trie
    walk crosses that position, so the greedy match lands on it from any start: the text
    splits there (in front of spaces) into chunks that tokenize alone (cached)."""

    def __init__(self, vocab: Vocab) -> None:
        self.tokens: dict[bytes, int] = {}
        for i, t in enumerate(vocab.texts):
            self.tokens[unescape(t)] = i
        self.prefixes: set[bytes] = {t[:k] for t in self.tokens for k in range(1, len(t) + 1)}
        # every trie node: its token id, or None where the path holds no token
        self.walk: dict[bytes, int | None] = dict.fromkeys(self.prefixes)
        self.walk.update(self.tokens)
        inner = {t[k - 1 : k + 1] for t in self.tokens for k in range(1, len(t))}
        # the cut regex leaves out every byte that some token has right before a space, so
        # each of its cuts is one no walk crosses
        before_space = sorted({p[0] for p in inner if p[1:] == b" "} | {0x20})
        # matched from the space itself (a literal the engine scans for quickly), then the byte
        # before it checked; split() drops that space, chunks() puts it back
        self._cut = re.compile(b" (?<=[^" + b"".join(re.escape(bytes([c])) for c in before_space) + b"] )")

    def chunks(self, text: bytes) -> list[bytes]:
        """``text`` cut in front of every space whose previous byte is outside ``before_space``."""
        parts = self._cut.split(text)
        return [parts[0], *[b" " + p for p in parts[1:]]]


def tokenize(vocab: Vocab, text: bytes, out: list[int]) -> None:
    """llama.cpp: llm_tokenizer_rwkv_session::tokenize, chunk by chunk."""
    model: RWKVModel = vocab._rwkv
    extend_cached(vocab._word_cache, model.chunks(text), lambda chunk: _greedy(vocab, model, chunk), out)


def _greedy(vocab: Vocab, model: RWKVModel, text: bytes) -> list[int]:
    whole = model.tokens.get(text)
    if whole is not None:
        # every prefix of a token is a trie node, so the walk reaches its end: one token
        return [whole]
    out: list[int] = []
    walk_get = model.walk.get
    n = len(text)
    pos = 0
    unk = vocab.special["unk"]
    while pos < n:
        tok = walk_get(text[pos : pos + 1], -1)
        if tok == -1:
            out.append(unk)
            pos += 1
            continue
        best_id = 0
        best_end = 0  # the reference's quirk: no value on the path restarts at 0
        k = pos + 1
        while tok != -1:
            if tok is not None:
                best_id, best_end = tok, k
            k += 1
            if k > n:
                break
            tok = walk_get(text[pos:k], -1)
        if best_end <= pos:
            raise RuntimeError("RWKV walk without a token on its path: the reference loops forever")
        out.append(best_id)
        pos = best_end
    return out
