"""WordPiece (llama.cpp: src/llama-vocab.cpp llm_tokenizer_wpm_session)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import unicode as U
from .wordcache import extend_cached

if TYPE_CHECKING:
    from .vocab import Vocab

_PHANTOM_SPACE = "\u2581".encode()


def _is_chinese(c: int) -> bool:
    # llama.cpp: llm_tokenizer_wpm_session::is_chinese_char (0x2B920 lower bound kept as is)
    return (
        0x4E00 <= c <= 0x9FFF
        or 0x3400 <= c <= 0x4DBF
        or 0x20000 <= c <= 0x2A6DF
        or 0x2A700 <= c <= 0x2B73F
        or 0x2B740 <= c <= 0x2B81F
        or 0x2B920 <= c <= 0x2CEAF
        or 0xF900 <= c <= 0xFAFF
        or 0x2F800 <= c <= 0x2FA1F
    )


def preprocess(text: bytes, lowercase: bool, strip_accents: bool) -> list[bytes]:
    cpts = U.cpts_from_utf8(text)
    if strip_accents:
        cpts = U.normalize_nfd(cpts)
    words: list[bytes] = [b""]
    for cpt in cpts:
        fl = U.cpt_flags(cpt)
        if fl & U.WHITESPACE:
            if words[-1]:
                words.append(b"")
            continue
        if cpt == 0 or cpt == U.REPLACEMENT or fl & U.CONTROL:
            continue
        if strip_accents and fl & U.ACCENT_MARK:
            continue
        s = U.cpts_to_utf8([U.tolower(cpt) if lowercase else cpt])
        if fl & U.PUNCTUATION or (cpt < 0x7F and fl & U.SYMBOL) or _is_chinese(cpt):
            if words[-1]:
                words.append(b"")
            words[-1] = s
            words.append(b"")
        else:
            words[-1] += s
    if not words[-1]:
        words.pop()
    return words


def tokenize(vocab: Vocab, text: bytes, out: list[int]) -> None:
    # a space byte is always a codepoint of its own and ends a word: chunks between spaces
    # tokenize independently, so their results are cached
    extend_cached(vocab._word_cache, text.split(b" "), lambda chunk: _collect(vocab, chunk), out)


def _collect(vocab: Vocab, chunk: bytes) -> list[int]:
    ids: list[int] = []
    _tokenize(vocab, chunk, ids)
    return ids


def _tokenize(vocab: Vocab, text: bytes, out: list[int]) -> None:
    t2id = vocab.token_to_id
    maxlen = vocab.max_token_len
    for word in preprocess(text, vocab.normalizer_lowercase, vocab.normalizer_strip_accents):
        if not word:
            continue
        w = _PHANTOM_SPACE + word
        n = len(w)
        mark = len(out)
        i = 0
        while i < n:
            for j in range(min(n, i + maxlen + 1), i, -1):
                tok = t2id.get(w[i:j])
                if tok is not None:
                    out.append(tok)
                    i = j
                    break
            else:
                del out[mark:]
                break
        if len(out) == mark:
            out.append(vocab.special["unk"])
