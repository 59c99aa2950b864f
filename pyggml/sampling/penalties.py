"""Samplers that rewrite logits from history or configuration: penalties, DRY, logit bias.

llama.cpp: src/llama-sampler.cpp llama_sampler_{penalties,dry,logit_bias}_*.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from . import _fmath as fm
from .base import BaseSampler
from .candidates import Candidates

f32 = np.float32


def _positions(cur: Candidates, keys: np.ndarray, values: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Every position whose id is one of ``keys`` (distinct) and the value of its key,
    without a Python loop over the candidates."""
    if cur.identity_ids:  # ids[i] == i: a key k sits at position k or nowhere
        inside = (keys >= 0) & (keys < cur.size)
        return keys[inside].astype(np.int64), values[inside]
    ids = cur.ids
    found = np.flatnonzero(np.isin(ids, keys))
    order = np.argsort(keys, kind="stable")
    return found, values[order][np.searchsorted(keys[order], ids[found])]


class Penalties(BaseSampler):
    """Repeat / frequency / presence penalties over the last ``penalty_last_n`` accepted tokens:
    ``l <= 0 ? l * repeat : l / repeat``, then ``l -= count * freq + (count > 0) * present``."""

    name = "penalties"

    def __init__(self, n_vocab: int, last_n: int, repeat: float, freq: float,
                 present: float) -> None:
        self.n_vocab = int(n_vocab)
        self.last_n = max(int(last_n), 0)
        self.repeat, self.freq, self.present = f32(repeat), f32(freq), f32(present)
        self.prev: deque[int] = deque(maxlen=self.last_n or None)
        self.counts: Counter[int] = Counter()

    @staticmethod
    def disabled(last_n: int, repeat: float, freq: float, present: float) -> bool:
        return last_n == 0 or (f32(repeat) == 1 and f32(freq) == 0 and f32(present) == 0)

    def accept(self, token: int) -> None:
        if self.last_n == 0:
            return
        self.counts[token] += 1
        if len(self.prev) >= self.last_n:
            old = self.prev[0]
            self.counts[old] -= 1
            if self.counts[old] == 0:
                del self.counts[old]
        self.prev.append(token)

    def apply(self, cur: Candidates) -> None:
        if self.disabled(self.last_n, self.repeat, self.freq, self.present):
            return
        if self.counts:
            keys = np.fromiter(self.counts.keys(), dtype=np.int64, count=len(self.counts))
            vals = np.fromiter(self.counts.values(), dtype=np.int64, count=len(self.counts))
            pos, cnt = _positions(cur, keys, vals)
            if pos.size:
                lg = cur.logits.copy()
                h = lg[pos]
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    h = np.where(h <= 0, h * self.repeat, h / self.repeat).astype(np.float32)
                    c = cnt.astype(np.float32)
                    h = h - (c * self.freq + f32(1.0) * self.present)
                lg[pos] = h
                cur.logits = lg
        cur.sorted = False

    def reset(self) -> None:
        self.prev.clear()
        self.counts.clear()


class BreakerVocab(Protocol):
    """What DRY needs from a vocabulary to turn breaker strings into token sequences."""

    def n_tokens(self) -> int: ...
    def token_text(self, token: int) -> bytes: ...        # detokenize([token], special=True)
    def tokenize(self, text: bytes) -> list[int]: ...     # add_special=False, parse_special=False


def breaker_sequences(vocab: BreakerVocab, breakers: Sequence[str | bytes],
                      max_chars: int = 40, max_tail: int = 20) -> list[tuple[int, tuple[int, ...]]]:
    """llama.cpp: src/llama-sampler.cpp get_overlapping_token_sequences (per breaker, after
    truncation to 40 bytes): every token whose text contains the breaker is a head with an
    empty tail; a token whose text ends with a proper prefix of the breaker is a head whose
    tail is the tokenization of the rest (clamped to 20 tokens), without duplicates."""
    out: list[tuple[int, tuple[int, ...]]] = []
    texts = [vocab.token_text(t) for t in range(vocab.n_tokens())]
    for br in breakers:
        s = br.encode() if isinstance(br, str) else bytes(br)
        if not s:
            continue
        s = s[:max_chars]
        for tok, word in enumerate(texts):
            if s in word:
                out.append((tok, ()))
                continue
            pos = word.find(s[:1])
            while pos >= 0:
                i = 1
                match = True
                while i < len(s) and i + pos < len(word):
                    if word[pos + i] != s[i]:
                        match = False
                        break
                    i += 1
                if match:
                    tail = tuple(vocab.tokenize(s[i:])[:max_tail])
                    if (tok, tail) not in out:
                        out.append((tok, tail))
                pos = word.find(s[:1], pos + 1)
    return out


class Dry(BaseSampler):
    """DRY ("don't repeat yourself", llama_sampler_dry_apply): tokens that would extend a
    repeat of the recent context longer than ``allowed_length`` lose
    ``multiplier * base^(len - allowed_length)``; restart sequences (breakers) cut the scan."""

    name = "dry"

    def __init__(self, multiplier: float, base: float, allowed_length: int, last_n: int,
                 breakers: Sequence[tuple[int, Sequence[int]]] = ()) -> None:
        self.multiplier, self.base = f32(multiplier), f32(base)
        self.allowed = int(allowed_length)
        self.last_n = max(int(last_n), 0)
        self.breakers: dict[int, list[tuple[int, ...]]] = {}
        for head, tail in breakers:
            self.breakers.setdefault(int(head), []).append(tuple(int(t) for t in tail))
        self.last: deque[int] = deque(maxlen=self.last_n or None)

    @classmethod
    def from_token_breakers(cls, multiplier: float, base: float, allowed_length: int,
                            last_n: int, breakers: Sequence[Sequence[int]]) -> Dry:
        """llama_sampler_init_dry_testing: breakers given as token sequences (head + tail)."""
        pairs = [(seq[0], tuple(seq[1:])) for seq in breakers if len(seq)]
        return cls(multiplier, base, allowed_length, last_n, pairs)

    def _off(self) -> bool:
        return self.multiplier == 0 or self.base < 1 or self.last_n == 0

    def accept(self, token: int) -> None:
        if self._off():
            return
        self.last.append(int(token))

    def reset(self) -> None:
        self.last.clear()

    def apply(self, cur: Candidates) -> None:
        if self._off():
            return
        n = min(len(self.last), self.last_n)
        if n <= self.allowed:
            return
        hist = list(self.last)

        def rat(i: int) -> int:  # i-th most recent token
            return hist[len(hist) - 1 - i]

        # step 1: the nearest restart sequence limits the repeat length
        rep_limit = n
        for i in range(n):
            tails = self.breakers.get(rat(i))
            if tails is None:
                continue
            longest = -1
            for tail in tails:
                sl = len(tail)
                if longest < sl <= i and all(tail[o] == rat(i - o - 1) for o in range(sl)):
                    longest = sl
            if longest >= 0:
                rep_limit = i - longest
                break
        if rep_limit < self.allowed:
            return
        # step 2: reverse Z-algorithm over the last n tokens
        count = [0] * n
        last = n - 1
        lt = rt = 0
        for k in range(1, n):
            if k > rt:
                m = 0
                while m + k < n and rat(m) == rat(m + k):
                    m += 1
                count[last - k] = min(m, rep_limit)
                if m > 0:
                    lt, rt = k, k + m - 1
            else:
                p = k - lt
                right = rt - k + 1
                if count[last - p] < right:
                    count[last - k] = min(count[last - p], rep_limit)
                else:
                    i = rt + 1
                    while i < n and rat(i) == rat(i - k):
                        i += 1
                    count[last - k] = min(i - k, rep_limit)
                    lt, rt = k, i - 1
        # step 3: the longest repeat each next token would extend
        best: dict[int, int] = {}
        for i in range(n - 1):
            rl = count[i]
            if rl >= self.allowed:
                tok = rat(n - 2 - i)
                if best.get(tok, -1) < rl:
                    best[tok] = rl
        # step 4: penalties (single-token breakers are exempt)
        max_exp = 0
        if self.base > f32(1.000001):
            max_exp = fm.c_int(f32(f32(88.7228391) / fm.c_logf(self.base)))
        pen_tok, pen_val = [], []
        for tok, rl in best.items():
            if any(len(t) == 0 for t in self.breakers.get(tok, ())):
                continue
            e = rl - self.allowed
            if max_exp > 0 and e > max_exp:
                e = max_exp
            # std::pow(float, int) promotes to double pow; the product is stored as float
            pen_tok.append(tok)
            pen_val.append(f32(float(self.multiplier) * math.pow(float(self.base), e)))
        if pen_tok:
            pos, val = _positions(cur, np.asarray(pen_tok, np.int64),
                                  np.asarray(pen_val, np.float32))
            lg = cur.logits.copy()
            with np.errstate(over="ignore", invalid="ignore"):
                lg[pos] = lg[pos] - val
            cur.logits = lg
        cur.sorted = False

    def clone(self) -> Dry:
        other = Dry(float(self.multiplier), float(self.base), self.allowed, self.last_n)
        other.breakers = {k: list(v) for k, v in self.breakers.items()}
        other.last = deque(self.last, maxlen=self.last.maxlen)
        return other


class LogitBias(BaseSampler):
    """llama_sampler_logit_bias_apply: biases whose token sits at its own index are added
    there (each entry, in order); the rest are searched, the first entry per candidate wins."""

    name = "logit-bias"

    def __init__(self, n_vocab: int, biases: Sequence[tuple[int, float]]) -> None:
        self.n_vocab = int(n_vocab)
        self.biases = [(int(t), f32(b)) for t, b in biases]

    def apply(self, cur: Candidates) -> None:
        if not self.biases:
            return
        lg = cur.logits.copy()
        search: dict[int, np.float32] = {}
        n = cur.size
        with np.errstate(over="ignore", invalid="ignore"):
            for tok, bias in self.biases:
                if 0 <= tok < n and int(cur.ids[tok]) == tok:
                    lg[tok] = f32(lg[tok] + bias)
                elif tok not in search:
                    search[tok] = bias
            if search:
                keys = np.fromiter(search.keys(), dtype=np.int64, count=len(search))
                vals = np.asarray(list(search.values()), dtype=np.float32)
                pos, val = _positions(cur, keys, vals)
                lg[pos] = lg[pos] + val
        cur.logits = lg
