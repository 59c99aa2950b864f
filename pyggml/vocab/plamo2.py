"""PLaMo-2: a unigram-style DP over codepoints with byte fallback (llama.cpp:
src/llama-vocab.cpp llm_tokenizer_plamo2 build/encode, llm_tokenizer_plamo2_session).

The reference packs every token suffix into a table walked right to left; at each position
the rows it visits are exactly the tokens that are prefixes of the remaining text, longest
first, then an "unknown" row (one codepoint, byte fallback).  We keep the same candidates
in the same order, found through a dict of every prefix of every token string:

- a token's score is ``int32(round(score * 1e4))``; scores that are not finite or not above
  -20000000 (``INVALID_SCORE``) never match;
- the DP minimises ``scores[i + len] - score``; the first strictly better candidate wins
  (so on a tie the longer piece wins, and the unknown row loses to any piece);
- a piece whose integer score equals -10000000 (``UNKNOWN_SCORE``, e.g. the converter's
  ``[PADn]`` tokens at -1000.0) ends the candidate list like the unknown row does: shorter
  pieces and the unknown row are not tried (a quirk of the reference's row walk);
- a leading U+FEFF is dropped; invalid UTF-8 decodes to U+FFFD per byte, whose byte
  fallback is EF BF BD.

Speed: the text is cut where no usable token can span the cut (between a non-space and a
space whose pair never occurs inside a token); each piece's DP then stands alone (integer
scores, so the shift by the right part's score changes no comparison) and is cached.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TokenizerError
from . import unicode as U
from .wordcache import CACHE_LIMIT

if TYPE_CHECKING:
    from .vocab import Vocab

INVALID_SCORE = -20000000
UNKNOWN_SCORE = -10000000
_INF = 1 << 60
_CUT = re.compile(r"(?<=\S)(?=\s)")
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _int_score(score: float) -> int:
    """``std::isfinite(score) ? (int32_t) std::round(score * 1e4) : INVALID_SCORE``."""
    if not math.isfinite(score):
        return INVALID_SCORE
    x = score * 1e4  # float promoted to double, as in the reference
    r = math.floor(abs(x) + 0.5)  # std::round: halves away from zero
    r = -r if x < 0 else r
    if not -(2**31) <= r < 2**31:
        return -(2**31)  # x86 cvttsd2si answers INT32_MIN out of range
    return int(r)


def byte_value(text: bytes) -> int | None:
    """The byte of a ``<0xXX>`` token text (``std::stoi`` of two hex digits), else None."""
    if len(text) == 6 and text[:3] == b"<0x" and text[5:] == b">" and text[3] in _HEX and text[4] in _HEX:
        return int(text[3:5], 16)
    return None


def _as_str(text: bytes) -> str | None:
    """The token's codepoints as a str, None when the reference would throw re-encoding it
    (a codepoint above U+10FFFF)."""
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        cps = U.cpts_from_utf8(text)
        if any(c > 0x10FFFF for c in cps):
            return None
        return "".join(map(chr, cps))


class PLaMo2Model:
    """Per-vocabulary tables (llama.cpp: llm_tokenizer_plamo2::build)."""

    def __init__(self, vocab: Vocab) -> None:
        from .vocab import ATTR_BYTE

        texts = vocab.texts
        attrs = vocab.attrs
        scores = np.asarray(vocab.scores, dtype=np.float32).tolist()
        byte_ids = [0] * 256
        pieces: dict[str, tuple[int, int]] = {}
        all_strs: list[str] = []
        for tid, (text, a) in enumerate(zip(texts, attrs, strict=True)):
            if a & ATTR_BYTE:
                b = byte_value(text)
                if b is not None:
                    byte_ids[b] = tid
                continue
            s = _as_str(text)
            if s is None:
                raise TokenizerError(
                    f"token {tid} holds a codepoint above U+10FFFF: the reference throws "
                    "(unicode_cpt_to_utf8) while building the PLaMo-2 tables"
                )
            if len(s) > 0 and s.encode("utf-8", "surrogatepass") != text:
                continue  # not UTF-8: the reference's re-encoded lookups never find it (gap)
            all_strs.append(s)
            sc = _int_score(scores[tid])
            if sc > INVALID_SCORE:
                pieces[s] = (tid, sc)
        for i, tid in enumerate(byte_ids):
            if tid == 0:  # id 0 counts as unset, as in the reference
                raise TokenizerError(f"Byte token for <0x{i}> is not set (the reference throws)")
        self.byte_ids = byte_ids
        self.pieces = pieces
        # every prefix of a usable piece -> (id, integer score) if it is one, else None
        self.walk: dict[str, tuple[int, int] | None] = dict.fromkeys(
            {s[:k] for s in pieces for k in range(1, len(s))})
        self.walk.update(pieces)
        # (non-space, space) pairs inside usable tokens: a cut there could split a token
        inner: set[str] = set()
        for s in pieces:
            for m in _CUT.finditer(s):  # the same classification as the cuts themselves
                k = m.start()
                inner.add(s[k - 1 : k + 1])
        self.inner_cuts = inner
        # cuts in front of whitespace, except after a char some token has there
        before = sorted({p[0] for p in inner})
        self.cut = re.compile("(?<=[^\\s" + "".join(re.escape(c) for c in before) + "])(?=\\s)")
        self.cache: dict[str, list[int]] = {}
        # pieces scored exactly UNKNOWN_SCORE stop the reference's row walks (see _encode_exact)
        self.stoppers = [p for p, (_, sc) in pieces.items() if sc == UNKNOWN_SCORE]
        self._all_strs = all_strs
        self._suffixes: set[str] | None = None

    def _fallback(self, c: int, out: list[int]) -> None:
        """The byte tokens of codepoint ``c`` (llama.cpp: encode's byte fallback)."""
        b = self.byte_ids
        if c < 0x80:
            out.append(b[c])
            return
        s = 2 + (c >= 0x800) + (c >= 0x10000)
        out.append(b[((0xF00 >> s) & 0xFF) | ((c >> (6 * (s - 1))) & 0x3F)])
        for i in range(1, s):
            out.append(b[0x80 | ((c >> (6 * (s - 1 - i))) & 0x3F)])

    def _emit(self, w: str, cps: list[int] | None, plen: list[int], ptok: list[int]) -> list[int]:
        """Walk the DP's best path from the start: a piece's id, or byte tokens of the unknown
        row's codepoint (llama.cpp: llm_tokenizer_plamo2::encode, the final reconstruction)."""
        out: list[int] = []
        pos = 0
        n = len(w)
        while pos < n:
            t = ptok[pos]
            if t >= 0:
                out.append(t)
            else:
                self._fallback(cps[pos] if cps is not None else ord(w[pos]), out)
            pos += plen[pos]
        return out

    def encode_str(self, w: str, cps: list[int] | None = None) -> list[int]:
        """The DP over ``w`` (``cps``: the original codepoints where ``w`` had to replace one)."""
        # The reference tries the pieces longest first, then the unknown row, keeping the first
        # strictly better one.  Here the unknown row goes first and the pieces follow shortest
        # first, each kept when not worse: the same winner, ties included.  (No piece scored
        # UNKNOWN_SCORE occurs here: encode sends such texts to _encode_exact.)
        n = len(w)
        walk_get = self.walk.get
        scores = [_INF] * (n + 1)
        scores[n] = 0
        plen = [1] * (n + 1)
        ptok = [-1] * (n + 1)
        unk = -UNKNOWN_SCORE
        for i in range(n - 1, -1, -1):
            best = scores[i + 1] + unk
            bl = 1
            bt = -1
            k = i + 1
            while k <= n:
                e = walk_get(w[i:k], 0)
                if e == 0:
                    break
                if e is not None:
                    s = scores[k] - e[1]
                    if s <= best:
                        best, bl, bt = s, k - i, e[0]
                k += 1
            scores[i] = best
            plen[i] = bl
            ptok[i] = bt
        return self._emit(w, cps, plen, ptok)

    def encode(self, text: bytes) -> list[int]:
        """llama.cpp: llm_tokenizer_plamo2::encode."""
        try:
            w = text.decode("utf-8")
            cps: list[int] | None = None
        except UnicodeDecodeError:
            cps = U.cpts_from_utf8(text)
            w = "".join(chr(c) if c <= 0x10FFFF else "\x00" for c in cps)
            if any(c > 0x10FFFF for c in cps):
                # such a codepoint is in no token (the reference cannot load one): match on a
                # stand-in the no-cut DP never joins to a token, fall back on the real value
                if w[:1] == "\ufeff" and cps[0] == 0xFEFF:
                    w, cps = w[1:], cps[1:]
                return self._encode_odd(w, cps)
        if w[:1] == "\ufeff":
            w = w[1:]
        if not w:
            return []
        if self.stoppers and any(p in w for p in self.stoppers):
            return self._encode_exact(w, cps)
        out: list[int] = []
        cache = self.cache
        for chunk in self.cut.split(w):
            ids = cache.get(chunk)
            if ids is None:
                ids = self.encode_str(chunk)
                if len(cache) > CACHE_LIMIT:
                    cache.clear()
                cache[chunk] = ids
            out.extend(ids)
        return out

    def _encode_exact(self, w: str, cps: list[int] | None) -> list[int]:
        """The reference's suffix-state walk, literally (llama.cpp: llm_tokenizer_plamo2::encode).

        Used when the text holds a piece scored UNKNOWN_SCORE: the walk that finds the next
        suffix state stops at such a row, so the state can collapse to the empty suffix and
        hide every piece at that position (only the unknown row is left)."""
        if self._suffixes is None:
            self._suffixes = {t[k:] for t in self._all_strs for k in range(len(t))}
        suffixes = self._suffixes
        pieces = self.pieces
        n = len(w)
        scores = [_INF] * (n + 1)
        scores[n] = 0
        plen = [1] * (n + 1)
        ptok = [-1] * (n + 1)
        state = ""
        for i in range(n - 1, -1, -1):
            c = w[i]
            nxt = ""
            for k in range(len(state), -1, -1):  # the rows of the current state, longest first
                row = state[:k]
                if k and row not in suffixes:
                    continue
                if c + row in suffixes:
                    nxt = c + row
                    break
                if not k or pieces.get(row, (0, 0))[1] == UNKNOWN_SCORE:
                    break
            state = nxt
            best = _INF
            for k in range(len(state), -1, -1):
                row = state[:k]
                if k and row not in suffixes:
                    continue
                if k:
                    e = pieces.get(row)
                    if e is None:
                        continue  # a suffix that is no token (INVALID_SCORE row)
                    tid, sc = e
                else:
                    tid, sc = -1, UNKNOWN_SCORE
                    k = 1
                s = scores[i + k] - sc
                if s < best:
                    best, plen[i], ptok[i] = s, k, tid
                if sc == UNKNOWN_SCORE:
                    break
            scores[i] = best
        return self._emit(w, cps, plen, ptok)

    def _encode_odd(self, w: str, cps: list[int]) -> list[int]:
        # "\x00" stands in for the out-of-range codepoints; a token holding "\x00" could match
        # it, so positions with a stand-in are forced to the unknown row by a private DP copy
        saved = self.walk
        try:
            self.walk = {k: v for k, v in saved.items() if "\x00" not in k} if "\x00" in w else saved
            return self.encode_str(w, cps)
        finally:
            self.walk = saved


def tokenize(vocab: Vocab, text: bytes, out: list[int]) -> None:
    """llama.cpp: llm_tokenizer_plamo2_session::tokenize."""
    out.extend(vocab._plamo2.encode(text))
