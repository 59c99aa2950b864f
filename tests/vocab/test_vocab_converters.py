"""The vocab-only GGUF converters (pyggml.parity.vocab_convert) and their fixtures."""

from __future__ import annotations

import struct

import pytest

from pyggml.parity import corpus
from pyggml.parity import vocab_convert as vc


def _key(num: int, wt: int) -> bytes:
    return _varint(num << 3 | wt)


def _ld(num: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return _key(num, 2) + bytes([len(payload)]) + payload


def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def test_protobuf_reader_on_a_hand_written_model():
    piece = _ld(1, b"<pad>") + _key(2, 5) + struct.pack("<f", -1.5) + _key(3, 0) + b"\x03"
    plain = _ld(1, b"\xe2\x96\x81a")  # score and type left to the proto defaults
    trainer = _key(3, 0) + b"\x02" + _key(40, 0) + _varint(-1)  # model_type BPE, unk_id (40) = -1
    normalizer = _ld(2, b"MAP") + _key(3, 0) + b"\x00"  # add_dummy_prefix false
    data = _ld(1, piece) + _ld(1, plain) + _ld(2, trainer) + _ld(3, normalizer) + _ld(99, b"skipped")
    m = vc.parse_sentencepiece(data)
    assert m.pieces == [(b"<pad>", -1.5, vc.CONTROL), ("\u2581a".encode(), 0.0, vc.NORMAL)]
    assert (m.model_type, m.unk_id, m.bos_id, m.eos_id, m.pad_id) == (2, -1, 1, 2, -1)
    assert (m.add_dummy_prefix, m.remove_extra_whitespaces, m.precompiled_charsmap) == (False, True, b"MAP")


@pytest.mark.parametrize("data", [b"", b"\x0a\x05ab", b"\x0b", b"\x08\xff"])
def test_protobuf_reader_rejects_bad_input(data):
    with pytest.raises(ValueError):
        vc.parse_sentencepiece(data)


def test_sentencepiece_test_models_parse():
    bpe = vc.parse_sentencepiece(corpus.sdist_member(vc.SENTENCEPIECE_SDIST, vc.SPM_BPE_MODEL).read_bytes())
    uni = vc.parse_sentencepiece(
        corpus.sdist_member(vc.SENTENCEPIECE_SDIST, vc.UGM_MODELS["botchan-unigram"]).read_bytes())
    for m, model_type in ((bpe, 2), (uni, 1)):
        assert m.model_type == model_type
        assert len(m.pieces) == 1000
        assert [t for _, _, t in m.pieces[:3]] == [vc.UNKNOWN, vc.CONTROL, vc.CONTROL]
        assert m.precompiled_charsmap  # the default nmt_nfkc normalizer
    # BPE scores are minus the merge order
    assert [s for _, s, _ in bpe.pieces[3:6]] == [-0.0, -1.0, -2.0]


def _tokenizer_fields(path) -> dict:
    from pyggml.vocab.gguf_meta import read_metadata

    return {k: v.value.tolist() if hasattr(v.value, "tolist") else v.value
            for k, v in read_metadata(path).items() if k.startswith("tokenizer.")}


def test_gpt2_conversion_is_the_reference_gpt2_vocab():
    # the reference's ggml-vocab-gpt-2.gguf was converted from the same tokenizer by
    # convert_hf_to_gguf: every tokenizer key must come out the same
    ours = _tokenizer_fields(vc.gpt2_gguf())
    ref = _tokenizer_fields(corpus.reference_tree() / "models" / "ggml-vocab-gpt-2.gguf")
    assert ours == ref


def test_minilm_conversion_follows_the_bert_converter():
    f = _tokenizer_fields(vc.minilm_gguf())
    assert f["tokenizer.ggml.model"] == b"bert"
    toks, types = f["tokenizer.ggml.tokens"], f["tokenizer.ggml.token_type"]
    assert [toks[i] for i in (0, 100, 101, 102, 103)] == [b"[PAD]", b"[UNK]", b"[CLS]", b"[SEP]", b"[MASK]"]
    assert all(types[i] == vc.CONTROL for i in (0, 100, 101, 102, 103))
    assert toks[1996] == "\u2581the".encode()  # phantom space
    assert b"##ing" not in toks and b"ing" in toks  # "##x" pieces lose the "##"
    assert (f["tokenizer.ggml.unknown_token_id"], f["tokenizer.ggml.seperator_token_id"]) == (100, 102)


@pytest.mark.parametrize(
    ("fixture", "model", "vocab_type"),
    [
        (vc.botchan_bpe_gguf, "llama", 1),
        (vc.gpt2_gguf, "gpt2", 2),
        (vc.minilm_gguf, "bert", 3),
        (lambda: vc.unigram_gguf("botchan-unigram"), "t5", 4),
        (vc.rwkv_world_gguf, "rwkv", 5),
        (vc.none_gguf, "none", 0),
    ],
)
def test_converted_vocabs_load_on_both_sides(fixture, model, vocab_type):
    from pyggml.reference.vocab import RefVocab
    from pyggml.vocab import Vocab

    path = fixture()
    assert _tokenizer_fields(path)["tokenizer.ggml.model"] == model.encode()
    if vocab_type != 4:  # pyggml's UGM load is covered by the corpus tests (it is the slow one)
        assert Vocab.from_gguf(path).type == vocab_type
    with RefVocab(path) as ref:
        assert ref.info()["type"] == vocab_type


def test_ugm_conversion_keeps_the_normalizer_spec():
    f = _tokenizer_fields(vc.unigram_gguf("botchan-unigram"))
    m = vc.parse_sentencepiece(
        corpus.sdist_member(vc.SENTENCEPIECE_SDIST, vc.UGM_MODELS["botchan-unigram"]).read_bytes())
    assert bytes(f["tokenizer.ggml.precompiled_charsmap"]) == m.precompiled_charsmap
    assert f["tokenizer.ggml.add_space_prefix"] is True
    assert f["tokenizer.ggml.remove_extra_whitespaces"] is True


def test_gemma3_is_assembled_and_checked():
    path = corpus.gemma3()
    f = _tokenizer_fields(path)
    assert f["tokenizer.ggml.model"] == b"llama"
    assert len(f["tokenizer.ggml.tokens"]) == 262144


def test_a_missing_fixture_is_a_clear_error(tmp_path, monkeypatch):
    corpus.sdist_member(vc.SENTENCEPIECE_SDIST, vc.SPM_BPE_MODEL)  # the real sdist is cached
    (sdist,) = (corpus.cache_dir() / "sdist").glob("sentencepiece-0.2.3.tar.gz")
    monkeypatch.setenv("PYGGML_CACHE", str(tmp_path))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no network round trip: the package is not found
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(corpus.FixtureError, match="sentencepiece==0.2.3"):
        corpus.sdist_member(vc.SENTENCEPIECE_SDIST, vc.SPM_BPE_MODEL)
    (tmp_path / "sdist").mkdir(exist_ok=True)
    (tmp_path / "sdist" / sdist.name).symlink_to(sdist)
    with pytest.raises(corpus.FixtureError, match="has no test/no-such-member"):
        corpus.sdist_member(vc.SENTENCEPIECE_SDIST, "test/no-such-member")
    with pytest.raises(corpus.FixtureError, match="could not convert the botchan-bpe vocab"):
        vc._cached("botchan-bpe", lambda o: vc.convert_sentencepiece_spm(tmp_path / "missing.model", o))
