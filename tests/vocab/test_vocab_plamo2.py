"""PLaMo-2 (pyggml.vocab.plamo2) on the synthetic PLaMo-2 vocabulary, against the running
reference.  No real PLaMo-2 vocab is available from the package registries: the fixture is
synthesized (pyggml.parity.vocab_plamo2, tools/synth_plamo2_vocab.py)."""

from __future__ import annotations

import functools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vocab_variants import variant

from pyggml.errors import TokenizerError
from pyggml.parity.vocab import BUILTIN, EXTRA_TEXTS, _ours_info, long_text, random_texts
from pyggml.parity.vocab_plamo2 import plamo2_gguf, synth_plamo2_tokens
from pyggml.vocab import Vocab
from pyggml.vocab.gguf_meta import ARRAY, INT32, Value, parse_metadata
from pyggml.vocab.vocab import TYPE_PLAMO2

_SPECIALS = [b"<|plamo:bos|>", b"<|plamo:eos|>", b"<|plamo:op|>", b"<|plamo:unk|>", b"[PAD1]", b"[PAD3]"]


@functools.cache
def ours() -> Vocab:
    return Vocab.from_gguf(plamo2_gguf())


@functools.cache
def reference():
    from pyggml.reference.vocab import RefVocab

    return RefVocab(plamo2_gguf())


def _check(data: bytes, detok: bool = True) -> None:
    v, r = ours(), reference()
    for add in (False, True):
        for parse in (False, True):
            ids = v.tokenize(data, add_special=add, parse_special=parse)
            assert ids == r.tokenize(data, add, parse), (data, add, parse)
            if detok:
                for rm in (False, True):
                    assert v.detokenize_bytes(ids, rm, parse) == r.detokenize(ids, rm, parse), (data, ids)


def test_plamo2_load_state_matches_reference():
    v = ours()
    assert v.type == TYPE_PLAMO2
    assert (v.special["bos"], v.special["eos"], v.special["unk"], v.special["pad"], v.special["eot"]) == (
        1, 2, 0, 3, 4)
    assert _ours_info(v) == reference().info()
    assert v.texts == reference().texts()


def test_plamo2_synth_is_seeded_and_realistic():
    a = synth_plamo2_tokens(0)
    assert a == synth_plamo2_tokens(0)
    texts, scores, types = a
    assert texts[8 : 8 + 256] == [f"<0x{b:02X}>" for b in range(256)]
    assert texts[-1] == "[PAD4]" and scores[-1] == -1000.0
    assert any("\u3042" in t for t in texts) and any(t.startswith(" ") for t in texts)


def test_plamo2_pieces_of_every_token():
    v, r = ours(), reference()
    for i in range(v.n_tokens):
        for lstrip, special in ((0, False), (0, True), (1, False), (1, True)):
            assert v.token_to_piece(i, lstrip, special) == r.token_to_piece(i, lstrip, special), i


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\ufeff",
        "\ufeffhello world",
        "\ufeff\ufeffx",  # only the first BOM goes
        "ℵ∀ unknown chars fall back to bytes",
        "日本語のテキストです。東京は今日",
        "[PAD1] [PAD2]x [PAD3][PAD4]",  # pieces scored -1000: the reference's walk stops there
        "a [PAD1]b of the  in the それ は",
        "   \n\n\t\t  \r\n ",
        "<|plamo:bos|>hi<|plamo:op|> <|plamo:unk|>",
    ],
)
def test_plamo2_edge_texts(text):
    _check(text.encode())


def test_plamo2_invalid_utf8():
    for raw in (b"\xff\xfe abc", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80x", b"\xc0\x80",
                b"\xef\xbb\xbf\xff"):
        _check(raw)


def test_plamo2_corpus_and_long_texts():
    rng = random.Random(11)
    texts = [t.encode() for t in BUILTIN] + EXTRA_TEXTS + random_texts(rng, 80, _SPECIALS)
    for t in texts:
        _check(t)
    for n in (5000, 30000):
        t = long_text(rng, n)
        assert ours().tokenize(t, False, False) == reference().tokenize(t, False, False)


def test_plamo2_exact_walk_equals_fast_path():
    """Where no -1000 piece occurs, the literal suffix-state walk and the chunked DP agree."""
    m = ours()._plamo2
    rng = random.Random(5)
    for t in [x.decode("utf-8", "replace") for x in random_texts(rng, 60, [])] + [s for s in BUILTIN if s]:
        t = t.lstrip("\ufeff")
        if not t or any(p in t for p in m.stoppers):
            continue
        assert m._encode_exact(t, None) == m.encode(t.encode()), t


def test_plamo2_missing_byte_token_fails_to_load_like_the_reference():
    from pyggml.reference.vocab import RefVocab

    meta = parse_metadata(plamo2_gguf().read_bytes())
    tt = meta["tokenizer.ggml.token_type"].value.copy()
    tt[8 + 0x41] = 1  # <0x41> becomes NORMAL: no byte token for 'A'
    path = variant(plamo2_gguf(), {"tokenizer.ggml.token_type": Value(ARRAY, tt, INT32)})
    with pytest.raises(TokenizerError, match="Byte token"):
        Vocab.from_gguf(path)
    with pytest.raises(RuntimeError):
        RefVocab(path)


_ALPHABET = st.characters(exclude_categories=("Cs",))
_SAFE_BYTES = st.binary(max_size=16).map(lambda b: bytes(x for x in b if not 0xF4 <= x <= 0xF7))


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    text=st.text(_ALPHABET, max_size=30),
    raw=_SAFE_BYTES,
    picks=st.lists(st.integers(0, 1 << 30), max_size=6),
)
def test_plamo2_hypothesis_differential(text, raw, picks):
    v = ours()
    parts: list[bytes] = [text.encode(), raw]
    for p in picks:  # vocabulary pieces and special-token texts glued at random places
        rng = random.Random(p)
        pool = _SPECIALS if p % 4 == 0 else v.texts
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(pool))
    _check(b"".join(parts), detok=False)
