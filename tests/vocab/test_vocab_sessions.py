"""The BPE sessions ``hybriddna`` and ``whitespace`` and the TEST vocab type against the
running reference (pyggml.reference.vocab); fixtures from pyggml.parity.vocab_convert."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vocab_helpers import ours, path, reference, register

from pyggml.errors import TokenizerError
from pyggml.parity import vocab_convert as vc

FIXTURES = {
    "hybriddna": vc.hybriddna_gguf,
    "hybriddna-no-dna": lambda: vc.hybriddna_gguf(False),  # no <dna>/</dna>/<oov>: plain BPE
    "whitespace": vc.whitespace_gguf,
    "whitespace-lower": lambda: vc.whitespace_gguf(True),
    "whitespace-cased": lambda: vc.whitespace_gguf(False),
    "test": vc.type_test_gguf,
}

TEXTS = [
    "",
    "plain text, no tags",
    "<dna>ACGTACGTACGT</dna>",
    "before <dna>acgtAC</dna> after",
    "<dna>AcGtNnACGTAC</dna>",  # mixed case, non-ACGT letters -> <oov>
    "<dna>ACG</dna>",  # partial k-mer, padded with A
    "<dna>ACGTACGTA",  # unclosed tag
    "<dna></dna><dna>T</dna>",
    "</dna> stray close <dna>GATTACA",
    "<dna>AC GT\nAC</dna>x<dna>éACGTA🦙</dna>",
    "<dna><dna>ACGTAC</dna></dna>",
    "<dna>CCCCCCCCCCCC</dna> CCCCCC",
    "words   with\t\truns\n\n of  whitespace ",
    "\u00a0nbsp\u2003em\u3000ideographic\u2028line\u0085nel",
    "MiXeD CaSe ÄÖÜ ΣΊΣΥΦΟΣ İstanbul",
    "<s>hello</s> <|user|> <mask>",
]
BYTES = [b"\xff\xfe invalid \xc3\x28 <dna>AC\xe2\x82GT</dna>", b"\xf4\x90\x80\x80 above max"]


register(FIXTURES)
_path, _ours, _ref = path, ours, reference


def _tok(name: str, text: bytes, add: bool, parse: bool):
    from pyggml.reference import vocab_guarded

    try:
        got = _ours(name).tokenize(text, add_special=add, parse_special=parse)
    except TokenizerError:
        return "aborted", vocab_guarded.tokenize(_path(name), text, add, parse)
    return got, _ref(name).tokenize(text, add, parse)


def _check(name: str, text: bytes) -> None:
    ours, ref = _ours(name), _ref(name)
    for add, parse in itertools.product((False, True), repeat=2):
        got, exp = _tok(name, text, add, parse)
        assert got == exp, (name, text, add, parse)
        if isinstance(got, list):
            for rm, un in itertools.product((False, True), repeat=2):
                assert ours.detokenize_bytes(got, rm, un) == ref.detokenize(got, rm, un), (text, rm, un)


@pytest.mark.parametrize("name", list(FIXTURES))
def test_sessions_load_and_corpus(name: str) -> None:
    from pyggml.parity.vocab import _ours_info

    assert _ours_info(_ours(name)) == _ref(name).info()
    for text in [t.encode() for t in TEXTS] + BYTES:
        _check(name, text)


@pytest.mark.parametrize("name", ["hybriddna", "test"])
def test_sessions_pieces(name: str) -> None:
    ours, ref = _ours(name), _ref(name)
    n = ours.n_tokens
    # around <oov> and the k-mer block (hybriddna: the marker is stripped from these texts)
    ids = sorted({0, 1, 2, 3, 4, 5, 220, n - 1, *range(max(0, n - 4100), max(0, n - 4090))})
    for i in ids:
        for ls, sp in itertools.product((0, 1), (False, True)):
            assert ours.token_to_piece(i, ls, sp) == ref.token_to_piece(i, ls, sp), (i, ls, sp)


def test_hybriddna_kmer_texts() -> None:
    v = _ours("hybriddna")
    oov = v.token_to_id[b"<oov>"]
    assert v.texts[oov + 1] == b"AAAAAA"  # marker gone from the text, kept in token_to_id
    assert v.token_to_id[b"AAAAAA\xee\x80\x80"] == oov + 1


_DNA = st.text(alphabet="ACGTacgtNn <>/dna\u3000\t\n é", max_size=40)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.lists(st.one_of(_DNA, st.sampled_from(["<dna>", "</dna>", "<oov>", "<s>", "  "])), max_size=6),
       st.sampled_from(list(FIXTURES)))
def test_sessions_differential(parts: list[str], name: str) -> None:
    _check(name, "".join(parts).encode())
