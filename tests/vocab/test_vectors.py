"""llama.cpp's own tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out), as
test-tokenizer-0 runs them: add_special=false, parse_special=false."""

from __future__ import annotations

import pytest
from vocab_helpers import ours

from pyggml.parity import corpus

WITH_VECTORS = sorted(
    p.name.removeprefix("ggml-vocab-").removesuffix(".gguf")
    for p in corpus.vocab_ggufs()
    if p.with_name(p.name + ".inp").exists()
)


def test_every_reference_vector_file_is_found():
    assert len(WITH_VECTORS) >= 15, WITH_VECTORS


@pytest.mark.parametrize("name", WITH_VECTORS)
def test_inp_out(name):
    path = corpus.reference_tree() / "models" / f"ggml-vocab-{name}.gguf"
    texts = path.with_name(path.name + ".inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    expected = path.with_name(path.name + ".out").read_text(encoding="utf-8").split("\n")
    v = ours(name)
    for text, line in zip(texts, expected, strict=False):
        assert v.tokenize(text, add_special=False, parse_special=False) == [int(x) for x in line.split()], (
            text
        )
