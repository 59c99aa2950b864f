"""``Vocab.bos`` / ``eos`` / ``eot``: the reference's llama_vocab_bos/eos/eot (-1 for none) on
every reference vocabulary and SmolLM2."""

from __future__ import annotations

import pytest
import vocab_helpers as vh

from pyggml.parity import corpus


def _names() -> list[str]:
    return [p.name[len("ggml-vocab-"):-len(".gguf")] for p in corpus.vocab_ggufs()]


@pytest.mark.parametrize("name", _names())
def test_special_ids_match_the_reference(name):
    ours, ref = vh.ours(name), vh.reference(name)
    lib, v = ref.lib, ref.vocab
    assert (ours.bos, ours.eos, ours.eot) == (
        lib.llama_vocab_bos(v), lib.llama_vocab_eos(v), lib.llama_vocab_eot(v)), name


def test_smollm2_special_ids(smollm2_path):
    import pyggml
    from pyggml.reference.vocab import RefVocab

    vocab = pyggml.Model.load(smollm2_path, vocab_only=True).vocab
    with RefVocab(smollm2_path) as ref:
        expected = tuple(int(f(ref.vocab)) for f in (ref.lib.llama_vocab_bos, ref.lib.llama_vocab_eos,
                                                     ref.lib.llama_vocab_eot))
    assert (vocab.bos, vocab.eos, vocab.eot) == expected
