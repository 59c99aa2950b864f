"""``Model.vocab``: the tokenizer attached to a loaded model, diffed against the reference."""

from __future__ import annotations

import pyggml
from pyggml.parity import corpus
from pyggml.reference.vocab import RefVocab

TEXTS = ["Hello world", "  leading spaces\nand <|im_start|>user tokens", "émoji 🦙 and 数字 123"]


def test_model_vocab_matches_reference():
    path = corpus.smollm2()
    model = pyggml.Model.load(path, vocab_only=True)
    assert model.vocab is model.vocab  # built once
    with RefVocab(path) as ref:
        for text in TEXTS:
            for add, parse in [(False, False), (True, True)]:
                ids = model.vocab.tokenize(text, add_special=add, parse_special=parse)
                assert ids == ref.tokenize(text.encode(), add, parse)
                assert model.vocab.detokenize(ids).encode() == ref.detokenize(ids)
