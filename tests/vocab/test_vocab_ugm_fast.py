"""The UGM fast path (charsmap as a dict, per-segment cached Viterbi) against the running
reference and against our literal byte-walk path, on the shipped UGM vocabularies and on
variants with other whitespace flags and user-defined tokens."""

from __future__ import annotations

import functools
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vocab_variants import boolean, variant

from pyggml.parity import corpus
from pyggml.parity.vocab import BUILTIN, EXTRA_TEXTS, long_text, random_texts
from pyggml.parity.vocab_convert import unigram_gguf
from pyggml.vocab import Vocab, ugm
from pyggml.vocab.gguf_meta import ARRAY, INT32, Value, parse_metadata


def _user_defined(src: Path) -> Path:
    """``src`` with a few tokens re-typed USER_DEFINED (ASCII and non-ASCII ones)."""
    meta = parse_metadata(src.read_bytes())
    texts = meta["tokenizer.ggml.tokens"].value
    tt = meta["tokenizer.ggml.token_type"].value.copy()
    picks = [i for i, t in enumerate(texts) if tt[i] == 1 and len(t) >= 2][:: max(1, len(texts) // 40)][:30]
    for i in picks:
        tt[i] = 4
    return variant(src, {"tokenizer.ggml.token_type": Value(ARRAY, tt, INT32)})


_VARIANTS = {
    "nomic": lambda: corpus.reference_tree() / "models" / "ggml-vocab-nomic-bert-moe.gguf",
    "botchan": lambda: unigram_gguf("botchan-unigram"),
    "kyoto": lambda: unigram_gguf("kyoto-unigram"),
    "botchan-keep-ws": lambda: variant(unigram_gguf("botchan-unigram"),
                                       {"tokenizer.ggml.remove_extra_whitespaces": boolean(False)}),
    "botchan-no-prefix": lambda: variant(unigram_gguf("botchan-unigram"), {
        "tokenizer.ggml.remove_extra_whitespaces": boolean(False),
        "tokenizer.ggml.add_space_prefix": boolean(False)}),
    "botchan-prefix-only": lambda: variant(unigram_gguf("botchan-unigram"), {
        "tokenizer.ggml.remove_extra_whitespaces": boolean(False),
        "tokenizer.ggml.add_space_prefix": boolean(True)}),
    "kyoto-user-defined": lambda: _user_defined(unigram_gguf("kyoto-unigram")),
}


@functools.cache
def ours(name: str) -> Vocab:
    return Vocab.from_gguf(_VARIANTS[name]())


@functools.cache
def reference(name: str):
    from pyggml.reference.vocab import RefVocab

    return RefVocab(_VARIANTS[name]())


def _texts(seed: int, n_random: int) -> list[bytes]:
    rng = random.Random(seed)
    texts = [t.encode() for t in BUILTIN] + EXTRA_TEXTS + random_texts(rng, n_random, [])
    texts += ["\u2581a\u2581 \u2581b  \u2581\u2581c".encode(), b"  x  y ", "\u2581".encode() * 4,
              "ｶﾀｶﾅ Ａｂｃ ① ² ½ a\u0301 e\u0300\u0301".encode()]
    return texts


@pytest.mark.parametrize("name", list(_VARIANTS))
def test_ugm_fast_matches_reference(name):
    v, r = ours(name), reference(name)
    for t in _texts(2, 25):
        for add in (False, True):
            assert v.tokenize(t, add, False) == r.tokenize(t, add, False), (name, t, add)


@pytest.mark.parametrize("name", ["nomic", "botchan-keep-ws", "kyoto-user-defined"])
def test_ugm_fast_long_texts_cold_and_warm(name):
    v, r = ours(name), reference(name)
    t = long_text(random.Random(4), 40000)
    want = r.tokenize(t, True, False)
    v._word_cache.clear()
    assert v.tokenize(t, True, False) == want  # cold
    assert v.tokenize(t, True, False) == want  # every segment from the cache


@pytest.mark.parametrize("name", ["nomic", "kyoto", "kyoto-user-defined"])
def test_ugm_charsmap_dict_equals_byte_walk(name):
    m = ours(name)._ugm
    fast = m.fast_normalizer()
    for t in _texts(3, 40):
        s = t.decode("utf-8", "replace")
        slow_parts, off, data = [], 0, s.encode()
        while off < len(data):
            chunk, used = m.normalize_prefix(data, off)
            slow_parts.append(chunk)
            off += used
        if fast is not None:
            assert fast(s).encode() == b"".join(slow_parts), (name, s)


def test_ugm_segmented_viterbi_equals_whole_viterbi():
    v = ours("kyoto")
    m = v._ugm
    unk = v.special["unk"]
    for t in _texts(5, 40):
        norm = ugm.normalize(v, m, t)
        if not norm:
            continue
        whole = ugm._viterbi(m, norm, unk)
        out: list[int] = []
        v._word_cache.clear()
        ugm.tokenize(v, t, out)
        assert out == whole, t


_ALPHABET = st.characters(exclude_categories=("Cs",))
_SAFE_BYTES = st.binary(max_size=16).map(lambda b: bytes(x for x in b if not 0xF4 <= x <= 0xF7))


@pytest.mark.parametrize("name", ["nomic", "botchan-keep-ws", "kyoto-user-defined"])
@settings(derandomize=True, max_examples=25, deadline=None)
@given(text=st.text(_ALPHABET, max_size=40), raw=_SAFE_BYTES, spaces=st.integers(0, 4))
def test_ugm_hypothesis_differential(name, text, raw, spaces):
    data = text.encode() + b" " * spaces + raw + " \u2581 ".encode() + text[::-1].encode()
    v, r = ours(name), reference(name)
    assert v.tokenize(data, True, False) == r.tokenize(data, True, False), (name, data)
