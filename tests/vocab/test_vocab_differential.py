"""pyggml.vocab against the running reference (llama_tokenize / llama_detokenize /
llama_token_to_piece) on random text, one vocabulary per vocab type and splitter family."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vocab_helpers import ours, reference

from pyggml.parity.vocab import BUILTIN, random_texts

VOCABS = ["llama-spm", "gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "bert-bge", "nomic-bert-moe", "gemma-4",
          "rwkv-world"]

_ALPHABET = st.characters(exclude_categories=("Cs",))
# bytes that can decode above U+10FFFF make the reference throw out of llama_tokenize
_SAFE_BYTES = st.binary(max_size=24).map(lambda b: bytes(x for x in b if not 0xF4 <= x <= 0xF7))


def _specials(name: str) -> list[bytes]:
    v = ours(name)
    return [v.texts[i] for i in v.special_tokens_cache[:20]]


def _check(name: str, data: bytes) -> None:
    v, r = ours(name), reference(name)
    for add in (False, True):
        for parse in (False, True):
            ids = v.tokenize(data, add_special=add, parse_special=parse)
            assert ids == r.tokenize(data, add, parse), (name, data, add, parse)
            for rm in (False, True):
                assert v.detokenize_bytes(ids, rm, parse) == r.detokenize(ids, rm, parse), (name, data, ids)


@pytest.mark.parametrize("name", VOCABS)
@settings(derandomize=True, max_examples=20, deadline=None)
@given(text=st.text(_ALPHABET, max_size=40), raw=_SAFE_BYTES, pick=st.integers(0, 1 << 30))
def test_random_text(name, text, raw, pick):
    specials = _specials(name)
    rng = random.Random(pick)
    parts = [text.encode(), raw]
    if specials:
        parts.insert(rng.randrange(3), rng.choice(specials))
    _check(name, b"".join(parts))


@pytest.mark.parametrize("name", VOCABS)
def test_builtin_and_seeded_corpus(name):
    rng = random.Random(7)
    for text in [t.encode() for t in BUILTIN] + random_texts(rng, 15, _specials(name)):
        _check(name, text)


@pytest.mark.parametrize("name", VOCABS)
def test_load_state_and_pieces(name):
    from pyggml.parity.vocab import _ours_info

    v, r = ours(name), reference(name)
    assert _ours_info(v) == r.info()
    rng = random.Random(3)
    for i in rng.sample(range(v.n_tokens), 200) + v.special_tokens_cache[:30]:
        for lstrip in (0, 1):
            for special in (False, True):
                assert v.token_to_piece(i, lstrip, special) == r.token_to_piece(i, lstrip, special), i
