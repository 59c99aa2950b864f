"""Unigram: precompiled-charsmap normalizer + Viterbi (llama.cpp: src/llama-vocab.cpp
llm_tokenizer_ugm / llm_tokenizer_ugm_session).

Two paths give the same ids:

- the literal one walks the XCDA byte by byte and runs one Viterbi over the whole normalized
  text, as the reference does;
- the fast one (taken whenever it is provably equal) reads the charsmap as a dict built once
  from the XCDA, maps only the characters that start a charsmap key, and runs the Viterbi per
  segment between escaped spaces, caching each segment's ids.

Why segmenting is exact: when no matchable token holds the space marker past its first byte,
every path through the lattice has a token boundary at each marker, so the best path is the
concatenation of each segment's best path.  The reference compares double sums that start at
the segment's prefix score ``B``; ``B + a > B + b`` equals ``a > b`` as long as no sum rounds,
which holds when every score is a multiple of ``2**q`` and every partial sum stays below
``2**(q + 53)`` (checked per call).  Ties then go the same way too (first found wins, in the
same order).  Unknown tokens that meet across a segment boundary are merged like the
reference's backtrack merges them.
"""

from __future__ import annotations

import re
import struct
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TokenizerError
from . import unicode as U
from .wordcache import CACHE_LIMIT

if TYPE_CHECKING:
    from .vocab import Vocab

_HEAD = 3
ESCAPED_SPACE = "\u2581".encode()
_FFFD = "\ufffd".encode()
_MAX_XCDA_DEPTH = 256  # a sane charsmap key is a few characters; deeper means a cycle


class _FastNormalizer:
    """The charsmap as ``{key: replacement}`` over str, plus a regex of key first characters."""

    def __init__(self, keys: dict[str, str], user: set[str]) -> None:
        self.keys = keys
        self.user = user  # every prefix of every (ASCII) user-defined token
        lengths: dict[str, set[int]] = {}
        for k in keys:
            lengths.setdefault(k[0], set()).add(len(k))
        self.lengths = {c: sorted(v, reverse=True) for c, v in lengths.items()}
        # where a key can start: a character that is a key by itself (or starts a user token),
        # or one that only starts longer keys, followed by a possible second character.  The
        # regex is built per call from the characters the text holds (small classes scan fast).
        self.alone = frozenset({k for k in keys if len(k) == 1} | {u[0] for u in user})
        self.lead = frozenset({k[0] for k in keys if len(k) > 1}) - self.alone
        self.second = frozenset({k[1] for k in keys if len(k) > 1 and k[0] in self.lead})
        self._triggers: dict[tuple[frozenset[str], ...], re.Pattern[str]] = {}

    def _trigger(self, s: str) -> re.Pattern[str] | None:
        chars = set(s)
        alone = self.alone.intersection(chars)
        second = self.second.intersection(chars)
        lead = self.lead.intersection(chars) if second else frozenset()
        if not alone and not lead:
            return None
        key = (frozenset(alone), frozenset(lead), frozenset(second))
        pat = self._triggers.get(key)
        if pat is None:
            alts = []
            if alone:
                alts.append(_char_class(alone))
            if lead:
                alts.append(_char_class(lead) + "(?=" + _char_class(second) + ")")
            pat = re.compile("|".join(alts))
            if len(self._triggers) > 256:
                self._triggers.clear()
            self._triggers[key] = pat
        return pat

    def __call__(self, s: str) -> str:
        trig = self._trigger(s)
        if trig is None:
            return s
        keys = self.keys
        lengths = self.lengths
        user = self.user
        parts: list[str] = []
        pos = 0
        search = trig.search
        while True:
            m = search(s, pos)
            if m is None:
                break
            p = m.start()
            if p > pos:
                parts.append(s[pos:p])
            # llama.cpp: normalize_prefix: the deepest walk into the user-defined trie wins first
            if user:
                k = 0
                while p + k < len(s) and s[p : p + k + 1] in user:
                    k += 1
                if k:
                    parts.append(s[p : p + k])
                    pos = p + k
                    continue
            for n in lengths.get(s[p], ()):
                rep = keys.get(s[p : p + n])
                if rep is not None:
                    parts.append(rep)
                    pos = p + n
                    break
            else:
                parts.append(s[p])
                pos = p + 1
        parts.append(s[pos:])
        return "".join(parts)


def _char_class(chars: set[str]) -> str:
    """A regex class of ``chars`` as ranges (sre scans a long list of single items slowly)."""
    cps = sorted(map(ord, chars))
    items: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = re.escape(chr(cps[i])), re.escape(chr(cps[j]))
        items.append(lo if i == j else f"{lo}-{hi}")
        i = j + 1
    return "[" + "".join(items) + "]"


def _xcda_keys(xcda: np.ndarray, replacements: bytes) -> dict[bytes, bytes] | None:
    """Every (key, replacement) the XCDA walk can find; None if some walk over it could hit
    one of the reference's bounds errors (then only the literal path reproduces them).

    The walk goes from state ``B`` with byte ``c`` to entry ``k = B ^ c`` when the entry's
    LCHECK is ``c``; so each entry ``k`` with LCHECK ``c`` is the ``c`` child of state
    ``k ^ c``.  Grouping entries by that parent state lists every child without trying all
    255 bytes at every state."""
    size = len(xcda)
    if size == 0:
        return {}
    x = xcda.astype(np.int64)

    def base(v: np.ndarray) -> np.ndarray:
        return ((v >> 10) << ((v & 0x200) >> 6)) & 0xFFFFFFFF

    idx = np.arange(size, dtype=np.int64)
    lc = x & 0xFF
    ok = ((x & 0x80000000) == 0) & (lc != 0)  # the walk stops at byte 0
    parent = (idx ^ lc)[ok]
    order = np.argsort(parent, kind="stable")
    parent, kids, kid_c = parent[order], idx[ok][order], lc[ok][order]
    states = base(x[:1])
    prefixes: list[bytes] = [b""]
    out: dict[bytes, bytes] = {}
    for _ in range(_MAX_XCDA_DEPTH):
        low = states & 0xFF
        if (((states & ~0xFF) | np.where(low == 0xFF, 0xFE, 0xFF)) >= size).any():
            return None  # some byte read at this state indexes past the array: the reference throws
        lo = np.searchsorted(parent, states, "left")
        hi = np.searchsorted(parent, states, "right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return out
        rows = np.repeat(np.arange(len(states)), counts)
        pos = lo[rows] + np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        ks, cs = kids[pos], kid_c[pos]
        hv = x[ks]
        nxt = ks ^ base(hv)
        leaf = ((hv >> 8) & 1).astype(bool)
        if (nxt[leaf] >= size).any():
            return None
        offs = x[nxt[leaf]] & 0x7FFFFFFF
        new_prefixes = [prefixes[r] + bytes((c,)) for r, c in zip(rows.tolist(), cs.tolist(), strict=True)]
        leaf_keys = [new_prefixes[i] for i in np.flatnonzero(leaf).tolist()]
        for key, off in zip(leaf_keys, offs.tolist(), strict=True):
            if off >= len(replacements):
                return None
            end = replacements.find(b"\0", off)
            if end == -1:
                return None
            out[key] = replacements[off:end]
        states = nxt
        prefixes = new_prefixes
    return None


class UGMModel:
    """Per-vocabulary tables (built once at load; the fast-path tables on first use)."""

    def __init__(self, vocab: Vocab) -> None:
        cm = vocab.precompiled_charsmap
        self.xcda: list[int] = []
        self._xcda_np = np.zeros(0, dtype="<u4")
        self.replacements = b""
        if cm:
            (blob,) = struct.unpack_from("<I", cm, 0)
            self._xcda_np = np.frombuffer(cm[4 : 4 + blob], dtype="<u4")
            self.xcda = self._xcda_np.tolist()
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
        self.user_tokens = [texts[i] for i in user]
        self.user_prefixes: set[bytes] = {texts[i][:k] for i in user for k in range(1, len(texts[i]) + 1)}
        normal = attrs & vocab.ATTR_NORMAL != 0
        scores = np.asarray(vocab.scores, dtype=np.float32)
        min_score = scores[normal].min() if normal.any() else np.float32(np.finfo(np.float32).max)
        # float arithmetic, as the reference computes it
        self.unknown_score = float(np.float32(min_score) - np.float32(10.0))
        self.max_len = max((len(t) for t in self.tokens), default=0)
        # token id -> the score the Viterbi adds (user-defined tokens count 0)
        ts = np.asarray(vocab.scores, dtype=np.float64)
        ts[attrs & vocab.ATTR_USER_DEFINED != 0] = 0.0
        self.token_score: list[float] = ts.tolist()
        # exactness of double sums: every summand is a multiple of 2**q, |summand| <= max_abs
        used = np.append(ts[np.fromiter(self.tokens.values(), dtype=np.int64, count=len(self.tokens))],
                         self.unknown_score).astype(np.float32)
        self.max_abs = float(np.abs(used).max()) if len(used) else 0.0
        self.q = _dyadic_exponent(used)
        self._fast: _FastNormalizer | None | bool = False  # False = not built yet
        self._seg_ok: dict[bytes, bool] = {}
        self.cache_unk = -1  # the unknown id the cached segment ids were made with

    def head_prefixes(self, head: bytes) -> set[bytes]:
        """Every prefix longer than _HEAD of the tokens starting with ``head``."""
        hp = self._head_prefixes.get(head)
        if hp is None:
            hp = {t[:k] for t in self.by_head.get(head, ()) for k in range(_HEAD + 1, len(t) + 1)}
            self._head_prefixes[head] = hp
        return hp

    def fast_normalizer(self) -> _FastNormalizer | None:
        """The dict form of the charsmap, or None where only the byte walk is exact (a key or a
        replacement that is not UTF-8, a walk that would throw, non-ASCII user tokens whose
        prefixes can end inside a character)."""
        if self._fast is False:
            self._fast = None
            if all(t.isascii() for t in self.user_tokens):
                keys = _xcda_keys(self._xcda_np, self.replacements)
                if keys is not None:
                    try:
                        smap = {k.decode(): v.decode() for k, v in keys.items()}
                    except UnicodeDecodeError:
                        smap = None
                    if smap is not None:
                        user = {p.decode() for p in self.user_prefixes}
                        self._fast = _FastNormalizer(smap, user)
        return self._fast  # type: ignore[return-value]

    def segmentable(self, sep: bytes) -> bool:
        """No matchable token holds ``sep`` past its first byte (so every path cuts there)."""
        ok = self._seg_ok.get(sep)
        if ok is None:
            ok = not any(sep in t[1:] for t in self.tokens)
            self._seg_ok[sep] = ok
        return ok

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


def _dyadic_exponent(values: np.ndarray) -> int:
    """The largest q such that every float32 in ``values`` is a multiple of 2**q."""
    u = values.astype(np.float32).view(np.uint32).astype(np.int64)
    ex = (u >> 23) & 0xFF
    mant = (u & 0x7FFFFF) | np.where(ex > 0, 0x800000, 0)
    nz = mant != 0
    if not nz.any():
        return 0
    low = np.log2((mant & -mant)[nz]).astype(np.int64)
    return int((np.maximum(ex[nz], 1) - 150 + low).min())


def _map_chars(model: UGMModel, text: bytes) -> bytes:
    """The concatenated normalize_prefix outputs over ``text``."""
    # short texts (the load's newline lookup among them) walk the bytes: the dict form of
    # the charsmap is built on the first longer text
    fast = model.fast_normalizer() if len(text) > 32 or model._fast is not False else None
    if fast is not None:
        try:
            s = text.decode("utf-8")
        except UnicodeDecodeError:
            pass  # invalid input: only the byte walk reproduces the reference's U+FFFD rules
        else:
            return fast(s).encode("utf-8", "surrogatepass")
    parts: list[bytes] = []
    off = 0
    n = len(text)
    while off < n:
        chunk, used = model.normalize_prefix(text, off)
        parts.append(chunk)
        off += used
    return b"".join(parts)


def normalize(vocab: Vocab, model: UGMModel, text: bytes) -> bytes:
    """llama.cpp: llm_tokenizer_ugm_session::normalize (treat_whitespace_as_suffix is never
    set by the reference, so nothing is appended)."""
    space = ESCAPED_SPACE if vocab.escape_whitespaces else b" "
    raw = _map_chars(model, text)
    if vocab.remove_extra_whitespaces:
        # every run of non-space bytes gets one space in front; spaces themselves vanish
        words = [w for w in raw.split(b" ") if w]
        return space + space.join(words) if words else b""
    if not vocab.add_space_prefix:
        return raw.replace(b" ", space)
    stripped = raw.lstrip(b" ")
    if not stripped:
        return raw.replace(b" ", space)
    lead = len(raw) - len(stripped)
    return space * lead + space + stripped.replace(b" ", space)


def _viterbi(model: UGMModel, norm: bytes, unk: int) -> list[int]:
    """One Viterbi pass over ``norm`` (non-empty), backtracked, unknown runs merged."""
    n = len(norm)
    ids = [unk] * (n + 1)
    froms = [0] * (n + 1)
    best = [-float("inf")] * (n + 1)  # -DBL_MAX in the reference: below every real sum
    best[0] = 0.0
    tokens_get = model.tokens.get
    prefixes = model.prefixes
    token_score = model.token_score
    unknown_score = model.unknown_score
    len_utf8 = U.len_utf8
    off = 0
    while off < n:
        nu = len_utf8(norm[off])
        if nu > n - off:
            nu = n - off
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
            tok = tokens_get(piece)
            if tok is not None:
                if k == nu:
                    single = True
                sc = cur + token_score[tok]
                end = off + k
                if sc > best[end]:
                    best[end] = sc
                    ids[end] = tok
                    froms[end] = off
            k += 1
        if not single:
            sc = cur + unknown_score
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
    return res


def tokenize(vocab: Vocab, text: bytes, out: list[int]) -> None:
    """llama.cpp: llm_tokenizer_ugm_session::tokenize."""
    model: UGMModel = vocab._ugm
    norm = normalize(vocab, model, text)
    n = len(norm)
    if n == 0:
        return
    unk = vocab.special["unk"]
    sep = ESCAPED_SPACE if vocab.escape_whitespaces else b" "
    if not (
        sep in norm
        and model.segmentable(sep)
        and n * model.max_abs < 2.0 ** (model.q + 53)  # n bytes bound the number of tokens
        and _valid_utf8(norm)  # segment starts then lie on the reference's codepoint grid
    ):
        out.extend(_viterbi(model, norm, unk))
        return
    cache = vocab._word_cache
    if model.cache_unk != unk:  # load tokenizes "\n" before the unknown id is final
        cache.clear()
        model.cache_unk = unk
    parts = norm.split(sep)
    segs = [sep + p for p in parts[1:]]
    if parts[0]:
        segs.insert(0, parts[0])
    prev_unk = False
    for seg in segs:
        ids = cache.get(seg)
        if ids is None:
            ids = _viterbi(model, seg, unk)
            if len(cache) > CACHE_LIMIT:
                cache.clear()
            cache[seg] = ids
        if prev_unk and ids[0] == unk:
            out.extend(ids[1:])  # the reference's backtrack merges consecutive unknowns
        else:
            out.extend(ids)
        prev_unk = ids[-1] == unk


def _valid_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
