"""Unigram: precompiled-charsmap normalizer + Viterbi (llama.cpp: src/llama-vocab.cpp
llm_tokenizer_ugm / llm_tokenizer_ugm_session)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TokenizerError
from . import unicode as U

if TYPE_CHECKING:
    from .vocab import Vocab

_HEAD = 3
ESCAPED_SPACE = "\u2581".encode()
_FFFD = "\ufffd".encode()


class UGMModel:
    """Per-vocabulary tables (built once at load)."""

    def __init__(self, vocab: Vocab) -> None:
        cm = vocab.precompiled_charsmap
        self.xcda: list[int] = []
        self.replacements = b""
        if cm:
            (blob,) = struct.unpack_from("<I", cm, 0)
            self.xcda = np.frombuffer(cm[4 : 4 + blob], dtype="<u4").tolist()
            self.replacements = cm[4 + blob :]
        # naive_trie of NORMAL | USER_DEFINED | UNUSED tokens: later ids overwrite earlier ones.
        # The trie becomes a dict plus prefix sets (to stop a walk where the trie has no node).
        attrs = np.asarray(vocab.attrs, dtype=np.int64)
        texts = vocab.texts
        matchable = np.flatnonzero(attrs & (vocab.ATTR_NORMAL | vocab.ATTR_USER_DEFINED | vocab.ATTR_UNUSED))
        self.tokens: dict[bytes, int] = {texts[i]: i for i in matchable.tolist()}
        self.prefixes: set[bytes] = {t[:k] for t in self.tokens for k in range(1, min(len(t), _HEAD) + 1)}
        # tokens longer than _HEAD grouped by head; each group's prefix set is built on first use
        self.by_head: dict[bytes, list[bytes]] = {}
        for t in self.tokens:
            if len(t) > _HEAD:
                self.by_head.setdefault(t[:_HEAD], []).append(t)
        self._head_prefixes: dict[bytes, set[bytes]] = {}
        user = np.flatnonzero(attrs & vocab.ATTR_USER_DEFINED).tolist()
        self.user_prefixes: set[bytes] = {texts[i][:k] for i in user for k in range(1, len(texts[i]) + 1)}
        normal = attrs & vocab.ATTR_NORMAL != 0
        scores = np.asarray(vocab.scores, dtype=np.float32)
        min_score = scores[normal].min() if normal.any() else np.float32(np.finfo(np.float32).max)
        # float arithmetic, as the reference computes it
        self.unknown_score = float(np.float32(min_score) - np.float32(10.0))
        self.max_len = max((len(t) for t in self.tokens), default=0)

    def head_prefixes(self, head: bytes) -> set[bytes]:
        """Every prefix longer than _HEAD of the tokens starting with ``head``."""
        hp = self._head_prefixes.get(head)
        if hp is None:
            hp = {t[:k] for t in self.by_head.get(head, ()) for k in range(_HEAD + 1, len(t) + 1)}
            self._head_prefixes[head] = hp
        return hp

    def _node(self, i: int) -> int:
        if i >= len(self.xcda):
            raise TokenizerError("Index out of array bounds in XCDA array! (the reference throws)")
        return self.xcda[i]

    def _base(self, i: int) -> int:
        v = self._node(i)
        return ((v >> 10) << ((v & (1 << 9)) >> 6)) & 0xFFFFFFFF

    def normalize_prefix(self, data: bytes, off: int) -> tuple[bytes, int]:
        # deepest walk into the user-defined trie (a path, not necessarily a whole token)
        n = len(data)
        if self.user_prefixes and data[off : off + 1] in self.user_prefixes:
            k = 1
            while off + k < n and data[off : off + k + 1] in self.user_prefixes:
                k += 1
            return data[off : off + k], k
        best_len = 0
        best_off = 0
        xcda = self.xcda
        if xcda:
            size = len(xcda)
            node = self._base(0)
            for p in range(off, n):
                c = data[p]
                if c == 0:
                    break
                node ^= c
                if node >= size:
                    self._node(node)  # raises like the reference's bounds check
                v = xcda[node]
                if (v & 0x800000FF) != c:  # LCHECK
                    break
                node ^= ((v >> 10) << ((v & 0x200) >> 6)) & 0xFFFFFFFF  # BASE
                if (v >> 8) & 1:  # LEAF: BASE points at the replacement's index
                    if node >= size:
                        self._node(node)
                    best_len = p - off + 1
                    best_off = xcda[node] & 0x7FFFFFFF
        if best_len > 0:
            rep = self.replacements
            if best_off >= len(rep):
                raise TokenizerError(
                    "Index out of array bounds in precompiled charsmap! (the reference throws)"
                )
            end = rep.find(b"\0", best_off)
            if end == -1:
                raise TokenizerError("Unterminated string in precompiled charsmap! (the reference throws)")
            return rep[best_off:end], best_len
        r = U.cpt_from_utf8(data, off)
        if r is None:
            return _FFFD, 1
        return data[off : r[1]], r[1] - off


def normalize(vocab: Vocab, model: UGMModel, text: bytes) -> bytes:
    space = ESCAPED_SPACE if vocab.escape_whitespaces else b" "
    prepend = vocab.add_space_prefix  # treat_whitespace_as_suffix is never set by the reference
    merge = vocab.remove_extra_whitespaces
    out = bytearray()
    prepended = False
    non_ws = False
    off = 0
    n = len(text)
    while off < n:
        chunk, used = model.normalize_prefix(text, off)
        for c in chunk:
            if c != 0x20:
                if not non_ws:
                    non_ws = True
                    if (prepend and not prepended) or merge:
                        out += space
                        prepended = True
                out.append(c)
            else:
                non_ws = False
                if not merge:
                    out += space
        off += used
    return bytes(out)


def tokenize(vocab: Vocab, text: bytes, out: list[int]) -> None:
    model: UGMModel = vocab._ugm
    norm = normalize(vocab, model, text)
    n = len(norm)
    if n == 0:
        return
    unk = vocab.special["unk"]
    ids = [unk] * (n + 1)
    froms = [0] * (n + 1)
    best = [-float("inf")] * (n + 1)  # -DBL_MAX in the reference: below every real sum
    best[0] = 0.0
    tokens = model.tokens
    prefixes = model.prefixes
    user = vocab.ATTR_USER_DEFINED
    attrs = vocab.attrs
    scores = vocab.scores
    off = 0
    while off < n:
        nu = min(U.len_utf8(norm[off]), n - off)
        cur = best[off]
        single = False
        k = 1
        hp: set[bytes] | None = None
        while off + k <= n:
            piece = norm[off : off + k]
            if k <= _HEAD:
                if piece not in prefixes:
                    break
            else:
                if hp is None:
                    hp = model.head_prefixes(norm[off : off + _HEAD])
                if piece not in hp:
                    break
            tok = tokens.get(piece)
            if tok is not None:
                if k == nu:
                    single = True
                sc = cur + (0.0 if attrs[tok] & user else scores[tok])
                end = off + k
                if sc > best[end]:
                    best[end] = sc
                    ids[end] = tok
                    froms[end] = off
            k += 1
        if not single:
            sc = cur + model.unknown_score
            end = off + nu
            if sc > best[end]:
                best[end] = sc
                ids[end] = unk
                froms[end] = off
        off += nu
    res: list[int] = []
    prev_unk = False
    pos = n
    while True:
        tok = ids[pos]
        is_unk = tok == unk
        if not (prev_unk and is_unk):
            res.append(tok)
        if froms[pos] == 0:
            break
        prev_unk = is_unk
        pos = froms[pos]
    res.reverse()
    out.extend(res)
