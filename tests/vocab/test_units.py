"""Unit tests of the pieces the tokenizers are built from."""

from __future__ import annotations

import pytest
from vocab_helpers import ours

from pyggml.errors import TokenizerError
from pyggml.vocab import unicode as U
from pyggml.vocab.pretokenize import PRE_TABLE, Splitter, _collapse_regex
from pyggml.vocab.vocab import _clean_spaces


def test_utf8_decoder_matches_the_reference_rules():
    # valid text decodes as usual; each undecodable byte is one U+FFFD
    assert U.cpts_from_utf8("aé🦙".encode()) == [0x61, 0xE9, 0x1F999]
    assert U.cpts_from_utf8(b"\xff\x80a") == [0xFFFD, 0xFFFD, 0x61]
    # overlong forms and surrogates pass (only lead/continuation bits are checked)
    assert U.cpts_from_utf8(b"\xc0\x80") == [0]
    assert U.cpts_from_utf8(b"\xed\xa0\x80") == [0xD800]
    # a truncated sequence: the lead byte becomes U+FFFD, the rest is re-read
    assert U.cpts_from_utf8(b"\xe2\x96") == [0xFFFD, 0xFFFD]


def test_unicode_tables_come_from_the_reference_data():
    fl = U.flags_table()
    assert fl.shape == (U.MAX_CODEPOINTS,)
    assert fl[ord("A")] & U.LETTER and fl[ord("A")] & U.UPPERCASE
    assert fl[ord("7")] & U.NUMBER
    assert fl[0x3000] & U.WHITESPACE
    assert U.tolower(ord("Ä")) == ord("ä")


def test_collapse_regex_rewrites_categories_inside_and_outside_brackets():
    assert _collapse_regex(r"\p{N}+") == "[\xd10-9]+"
    assert _collapse_regex(r"[^\s\p{L}]") == "[^\\s\xd2A-Za-z]"


def test_every_pre_tokenizer_regex_compiles():
    for name, pre in PRE_TABLE.items():
        if pre.pre_type == "KIMI_K2":
            continue
        Splitter(list(pre.regexes), pre.byte_encode)  # raises on a regex Python cannot compile
        assert pre.regexes, name


def test_clean_spaces_passes():
    assert _clean_spaces(b"a , b . c ' d 's e 're f 't") == b"a, b. c'd's e're f 't"
    assert _clean_spaces(b"") == b""


def test_invalid_token_ids_raise():
    v = ours("llama-spm")
    with pytest.raises(TokenizerError):
        v.token_to_piece(v.n_tokens)
    with pytest.raises(TokenizerError):
        v.detokenize([0, -1])


def test_public_api_round_trip():
    v = ours("llama-spm")
    ids = v.tokenize("Hello world", add_special=True)
    assert ids[0] == v.special["bos"]
    assert v.detokenize(ids[1:]) == "Hello world"  # add_space_prefix: the first space goes
    assert isinstance(v.token_to_piece(ids[1]), bytes)
